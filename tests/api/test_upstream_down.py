"""While upstream fails: the circuit breaker's 503, stale answers from the cache, health."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from tests.asgi import api_client
from tsgate.settings import Settings
from tsgate.upstream.breaker import CircuitBreaker
from tsgate.upstream.simulator import Simulator, create_simulator

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": "Bearer t"}
DAY1 = {"start": "2025-10-01T00:00:00", "end": "2025-10-02T00:00:00"}
DAYS2 = {"start": "2025-10-01T00:00:00", "end": "2025-10-03T00:00:00"}
OUTAGE = {"500": 10_000}


@dataclass
class Clock:
    s: float = 0.0

    def __call__(self) -> float:
        return self.s


@dataclass
class Env:
    api: httpx.AsyncClient
    sim: Simulator
    clock: Clock

    async def chart(self, rng: dict[str, str], token: str = "t") -> httpx.Response:
        names = [p.name for p in self.sim.sites[2].collecting[:2]]
        query = {"site": "elm_school", "points": ",".join(names), **rng, "layout": "columnar"}
        headers = {"Authorization": f"Bearer {token}"}
        return await self.api.get("/api/timeseries", params=query, headers=headers)


@pytest.fixture
async def env(settings: Settings) -> AsyncIterator[Env]:
    sim, clock = create_simulator(seed=5), Clock()
    async with api_client(settings, sim, breaker=CircuitBreaker(2, 30.0, clock=clock)) as api:
        yield Env(api, sim, clock)


async def test_open_circuit_is_503_with_retry_after_and_no_upstream_request(env: Env) -> None:
    # the site's catalog is fresh before its data reads fail: a cold chart refreshes it
    # beside its fetch, and that answer (upstream alive) would count against the outage
    listed = await env.api.get("/api/sites/elm_school/configured_points", headers=AUTH)
    assert listed.status_code == 200
    env.sim.faults.fail_next = dict(OUTAGE)
    for _ in range(2):
        failed = await env.chart(DAY1)
        assert failed.status_code == 502, failed.text  # nothing cached: the upstream error
    before = env.sim.stats.requests
    refused = await env.chart(DAY1)
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["retry-after"] == "30"
    assert "circuit open" in refused.json()["detail"]
    assert env.sim.stats.requests == before
    health = (await env.api.get("/api/health")).json()
    assert health["status"] == "degraded"
    assert health["checks"]["upstream"]["status"] == "error"
    assert health["checks"]["upstream"]["circuit"] == "open"
    assert env.sim.stats.requests == before  # the health probe did not knock either
    assert "tsgate_upstream_circuit_open 1.0" in (await env.api.get("/metrics")).text
    # after the reset time one trial goes through; upstream is back, so it closes
    env.sim.faults.fail_next = {}
    env.clock.s += 30
    recovered = await env.chart(DAY1)
    assert recovered.status_code == 200 and recovered.headers["x-cache-status"] == "MISS"
    health = (await env.api.get("/api/health")).json()
    assert health["status"] == "healthy" and health["checks"]["upstream"]["circuit"] == "closed"


async def test_cached_part_is_served_stale_while_upstream_fails(env: Env) -> None:
    fresh = await env.chart(DAY1)
    assert fresh.status_code == 200
    env.sim.faults.fail_next = dict(OUTAGE)
    for _ in range(3):  # upstream failing, then the circuit open: the same stale answer
        stale = await env.chart(DAYS2)
        assert stale.status_code == 200, stale.text
        assert stale.headers["x-cache-status"] == "STALE"
        assert stale.headers["cache-control"] == "no-store"  # never kept past the outage
        assert stale.json()["series"] == fresh.json()["series"]  # day 2 is not cached
    assert (await env.api.get("/api/health")).json()["checks"]["upstream"]["circuit"] == "open"
    # a token upstream never vouched for is not served from the cache
    unverified = await env.chart(DAYS2, token="someone-else")
    assert unverified.status_code == 503
    # once upstream is back the range is completed and no longer stale
    env.sim.faults.fail_next = {}
    env.clock.s += 30
    whole = await env.chart(DAYS2)
    assert whole.headers["x-cache-status"] == "PARTIAL"
    assert len(whole.json()["series"][0]["t"]) > len(fresh.json()["series"][0]["t"])


async def test_nothing_cached_is_an_error_not_an_empty_answer(env: Env) -> None:
    env.sim.faults.fail_next = dict(OUTAGE)
    failed = await env.chart(DAY1)
    assert failed.status_code == 502
    assert failed.headers["content-type"] == "application/problem+json"
