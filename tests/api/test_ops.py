"""Health checks every seam and degrades or fails as it should; stats sum real traffic."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from tests.api.test_telemetry import with_cached_route
from tests.asgi import FAST_POLICY, api_client, lifespan_app, sim_client
from tests.clock import NOW, Clock
from tests.conftest import postgres_schema, service_url
from tests.proxy import TcpProxy
from tsgate.app import create_app
from tsgate.settings import Settings
from tsgate.upstream.ace import AceClient
from tsgate.upstream.simulator import Simulator, create_simulator

pytestmark = pytest.mark.anyio


@pytest.fixture
def sim() -> Simulator:
    return create_simulator(seed=1)


@pytest.fixture
async def api(settings: Settings, sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings, sim) as client:
        yield client


async def proxied(url: str) -> TcpProxy:
    parts = urlsplit(url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 0)
    await proxy.restore()
    return proxy


def through(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.replace(f":{parts.port}", f":{proxy.port}")).geturl()


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


async def test_healthy_with_every_check_timed(api: httpx.AsyncClient) -> None:
    answer = await api.get("/api/health")
    body = answer.json()
    assert answer.status_code == 200 and body["status"] == "healthy"
    assert set(body["checks"]) == {"database", "objects", "cache", "upstream"}
    for check in body["checks"].values():
        assert check["status"] == "ok" and check["latency_ms"] >= 0
    assert body["alerts"] == []


async def test_health_needs_no_token_and_is_never_limited(
    settings: Settings, sim: Simulator
) -> None:
    strict = dataclasses.replace(settings, rate_limit_per_min=1, rate_limit_burst=1)
    async with api_client(strict, sim) as api:
        answers = [await api.get("/api/health") for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5


@pytest.mark.redis
async def test_cache_down_degrades_then_recovers(settings: Settings, sim: Simulator) -> None:
    proxy = await proxied(service_url("redis"))
    cache_url = through(service_url("redis"), proxy) + f"?prefix=tsgate-test-{uuid.uuid4().hex}:"
    conf = dataclasses.replace(settings, cache_url=cache_url, health_timeout_s=2.0)
    try:
        async with api_client(conf, sim) as api:
            assert (await api.get("/api/health")).json()["status"] == "healthy"
            await proxy.cut()
            down = await api.get("/api/health")
            assert down.status_code == 200 and down.json()["status"] == "degraded"
            assert down.json()["checks"]["cache"]["status"] == "error"
            assert down.json()["checks"]["database"]["status"] == "ok"
            # the limiter lets requests through while its cache is away
            assert (await api.get("/api/sites", headers={"X-ACE-Token": "t"})).status_code == 200
            await proxy.restore()
            assert (await api.get("/api/health")).json()["status"] == "healthy"
    finally:
        await proxy.cut()


async def test_redis_on_a_closed_port_degrades(settings: Settings, sim: Simulator) -> None:
    conf = dataclasses.replace(settings, cache_url="redis://127.0.0.1:1/0")
    async with api_client(conf, sim) as api:
        answer = await api.get("/api/health")
    assert answer.status_code == 200 and answer.json()["status"] == "degraded"
    assert "redis" in answer.json()["checks"]["cache"]["detail"]


@pytest.mark.postgres
async def test_database_down_is_unhealthy_then_recovers(
    settings: Settings, sim: Simulator, pg_url: str
) -> None:
    proxy = await proxied(pg_url)
    conf = dataclasses.replace(settings, database_url=through(pg_url, proxy), health_timeout_s=2.0)
    try:
        async with api_client(conf, sim) as api:
            assert (await api.get("/api/health")).json()["status"] == "healthy"
            await proxy.cut()
            down = await api.get("/api/health")
            assert down.status_code == 503 and down.json()["status"] == "unhealthy"
            assert down.json()["checks"]["database"]["status"] == "error"
            await proxy.restore()
            back = await api.get("/api/health")
            assert back.status_code == 200 and back.json()["status"] == "healthy"
    finally:
        await proxy.cut()


async def test_upstream_down_degrades(settings: Settings) -> None:
    unreachable = AceClient("http://127.0.0.1:1/api", FAST_POLICY)
    async with lifespan_app(create_app(settings, upstream=unreachable)) as asgi:
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://tsgate") as client:
            answer = await client.get("/api/health")
    assert answer.status_code == 200 and answer.json()["status"] == "degraded"
    assert answer.json()["checks"]["upstream"]["status"] == "error"


async def test_stats_sum_recorded_requests(settings: Settings, sim: Simulator) -> None:
    app = with_cached_route(create_app(settings, upstream=sim_client(sim)))
    async with lifespan_app(app) as asgi:
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://tsgate") as api:
            await api.get("/api/test-cached")
            await api.get("/api/test-cached")
            await api.get("/api/test-cached?layer=ORIGIN")
            await api.get("/api/sites", headers={"X-ACE-Token": "t"})
            await api.get("/metrics")  # not an /api/ request: not in the stats
            body = (await api.get("/api/stats")).json()
            again = (await api.get("/api/stats")).json()
    assert body["requests"] == 4 and again["requests"] == 5
    cache = body["cache"]
    assert cache["by_status"] == {"HIT": 2, "MISS": 1, "NONE": 1}
    assert cache["by_source"] == {"MEMORY": 2, "ORIGIN": 1}
    assert cache["hit_ratio"] == pytest.approx(2 / 3, abs=1e-4)
    assert cache["source_ratio"] == {
        "MEMORY": pytest.approx(0.6667),
        "ORIGIN": pytest.approx(0.3333),
    }
    assert body["samples_served"] == 750
    assert body["bytes_saved"] == 750 * 150 - 300
    assert body["upstream"]["requests"] == 1
    # one data request is too few to measure upstream by: the settings' figures plan
    assert body["upstream"]["request_cost"] == {
        "latency_ms": settings.upstream_latency_ms,
        "sample_us": settings.upstream_sample_us,
        "source": "settings",
    }
    assert body["store"]["chunks"] == 0 and body["store"]["database_bytes"] > 0
    assert body["store"]["job_results"] == 0 and body["store"]["job_result_bytes"] == 0
    assert body["jobs"] == {}  # the jobs table exists and holds no job
    assert body["alerts"] == [] and body["window_days"] == 30


async def test_stats_and_the_requests_they_count_follow_the_injected_clock(
    settings: Settings, sim: Simulator
) -> None:
    clock, day_ms = Clock(NOW), 86_400_000
    app = create_app(settings, upstream=sim_client(sim), clock_ms=clock)
    async with lifespan_app(app) as asgi:
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://tsgate") as api:
            await api.get("/api/sites", headers={"X-ACE-Token": "t"})  # recorded at NOW
            first = (await api.get("/api/stats")).json()
            clock.ms = NOW + 31 * day_ms  # both requests so far fall out of the window
            later = (await api.get("/api/stats")).json()
    assert first["since_ms"] == NOW - 30 * day_ms and first["requests"] == 1
    assert later["since_ms"] == NOW + day_ms and later["requests"] == 0
