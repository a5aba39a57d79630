"""Request ids, one JSON log line per request, and Prometheus metrics from real traffic."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import logging
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.asgi import lifespan_app, sim_client
from tsgate.app import create_app
from tsgate.ops.logs import JsonFormatter, RequestIdFilter
from tsgate.ops.looplag import GcPauses
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": "Bearer secret-token-123"}


async def cached_answer(request: Request) -> Response:
    # stands in for the chart API, which marks responses with its cache layer
    layer = request.query_params.get("layer", "MEMORY")
    if "warn" in request.query_params:
        logging.getLogger("tsgate.test").warning("something to tell about this request")
    status = "MISS" if layer == "ORIGIN" else "HIT"
    headers = {"X-Cache-Status": status, "X-Cache-Source": layer, "X-Data-Samples": "250"}
    return Response(b"x" * 100, headers=headers)


def with_cached_route(app: Starlette) -> Starlette:
    app.router.routes.insert(0, Route("/api/test-cached", cached_answer))
    return app


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = with_cached_route(create_app(settings, upstream=sim_client(create_simulator(seed=1))))
    async with lifespan_app(app) as asgi:
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://tsgate") as client:
            yield client


def samples_of(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


async def test_request_id_is_assigned_or_kept(api: httpx.AsyncClient) -> None:
    fresh = await api.get("/api/health")
    assert len(fresh.headers["X-Request-ID"]) == 32
    kept = await api.get("/api/health", headers={"X-Request-ID": "abc-123.x"})
    assert kept.headers["X-Request-ID"] == "abc-123.x"
    insane = await api.get("/api/health", headers={"X-Request-ID": "a b\tc" + "x" * 200})
    assert insane.headers["X-Request-ID"] != "a b\tc" + "x" * 200
    problem = await api.get("/api/sites/demo_campus/timeseries/paginated?page_size=7")
    assert problem.status_code == 400 and problem.headers["X-Request-ID"]
    fresh_ids = {(await api.get("/api/health")).headers["X-Request-ID"] for _ in range(50)}
    assert len(fresh_ids) == 50 and all(int(i, 16) >= 0 and len(i) == 32 for i in fresh_ids)


async def test_one_json_line_per_request_without_tokens(
    api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="tsgate.access"):
        answer = await api.get("/api/sites?per_page=2&token=secret-token-123", headers=AUTH)
        await api.get("/api/test-cached")
    as_json = JsonFormatter()
    lines = [json.loads(as_json.format(r)) for r in caplog.records if r.name == "tsgate.access"]
    assert len(lines) == 2
    first, second = lines
    assert first["request_id"] == answer.headers["X-Request-ID"]
    assert first["method"] == "GET" and first["path"] == "/api/sites" and first["status"] == 200
    assert first["duration_ms"] > 0 and first["bytes"] == len(answer.content)
    assert second["cache"] == "HIT" and second["source"] == "MEMORY"
    assert "secret-token-123" not in caplog.text


async def test_every_line_logged_while_serving_carries_the_request_id(
    api: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.handler.addFilter(RequestIdFilter())  # as logs.configure() does on its handler
    with caplog.at_level(logging.INFO):
        answer = await api.get("/api/test-cached?warn=1", headers={"X-Request-ID": "req-42"})
    as_json = JsonFormatter()
    lines = {r.name: json.loads(as_json.format(r)) for r in caplog.records}
    warned, access = lines["tsgate.test"], lines["tsgate.access"]
    assert answer.headers["X-Request-ID"] == "req-42"
    assert warned["request_id"] == access["request_id"] == "req-42"
    assert (
        warned["level"] == "warning" and warned["message"] == "something to tell about this request"
    )
    assert access["message"] == "GET /api/test-cached 200" and access["cache"] == "HIT"
    assert warned["time"].endswith("Z")
    # after the request, background lines carry no request id
    record = logging.LogRecord("tsgate.maintenance", logging.INFO, __file__, 1, "swept", None, None)
    assert "request_id" not in json.loads(as_json.format(record))


async def test_metrics_count_real_requests(api: httpx.AsyncClient) -> None:
    for _ in range(3):
        assert (await api.get("/api/sites", headers=AUTH)).status_code == 200
    await api.get("/api/test-cached")
    await api.get("/api/test-cached")
    await api.get("/api/test-cached?layer=ORIGIN")
    await api.get("/nowhere")
    scrape = await api.get("/metrics")
    assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
    assert "RateLimit-Limit" not in scrape.headers
    found = samples_of(scrape.text)
    get_sites = (("method", "GET"), ("route", "/api/sites"), ("status", "200"))
    assert found[("tsgate_http_requests_total", get_sites)] == 3
    unmatched = (("method", "GET"), ("route", "unmatched"), ("status", "404"))
    assert found[("tsgate_http_requests_total", unmatched)] == 1
    assert found[("tsgate_http_request_duration_seconds_count", (("route", "/api/sites"),))] == 3
    sites_buckets = [
        value
        for (name, labels), value in found.items()
        if name == "tsgate_http_request_duration_seconds_bucket"
        and ("route", "/api/sites") in labels
    ]
    assert len(sites_buckets) == 14 and sorted(sites_buckets) == sites_buckets  # cumulative
    every = (("le", "+Inf"), ("route", "/api/sites"))
    assert found[("tsgate_http_request_duration_seconds_bucket", every)] == 3
    within_a_minute = (("le", "60.0"), ("route", "/api/sites"))
    assert found[("tsgate_http_request_duration_seconds_bucket", within_a_minute)] == 3
    assert 0 < found[("tsgate_http_request_duration_seconds_sum", (("route", "/api/sites"),))] < 60
    assert found[("tsgate_http_response_bytes_total", (("route", "/api/test-cached"),))] == 300
    hit = (("source", "MEMORY"), ("status", "HIT"))
    assert found[("tsgate_cache_responses_total", hit)] == 2
    assert found[("tsgate_cache_responses_total", (("source", "ORIGIN"), ("status", "MISS")))] == 1
    assert found[("tsgate_samples_served_total", ())] == 750
    assert found[("tsgate_upstream_requests_total", ())] == 3
    assert found[("tsgate_store_chunks", ())] == 0
    assert found[("tsgate_store_database_bytes", ())] > 0


async def test_each_app_has_its_own_registry(settings: Settings) -> None:
    one = create_app(settings, upstream=sim_client(create_simulator(seed=1)))
    two = create_app(settings, upstream=sim_client(create_simulator(seed=1)))
    async with (
        lifespan_app(one) as asgi_one,
        lifespan_app(two) as asgi_two,
        httpx.AsyncClient(transport=httpx.ASGITransport(asgi_one), base_url="http://a") as a,
        httpx.AsyncClient(transport=httpx.ASGITransport(asgi_two), base_url="http://b") as b,
    ):
        await a.get("/api/health")
        await a.get("/api/health")
        text = (await b.get("/metrics")).text
    health = (("method", "GET"), ("route", "/api/health"), ("status", "200"))
    assert ("tsgate_http_requests_total", health) not in samples_of(text)


async def test_metrics_show_how_long_work_held_the_event_loop(settings: Settings) -> None:
    conf = dataclasses.replace(settings, loop_lag_interval_s=0.01)
    app = with_cached_route(create_app(conf, upstream=sim_client(create_simulator(seed=1))))
    async with (
        lifespan_app(app) as asgi,
        httpx.AsyncClient(transport=httpx.ASGITransport(asgi), base_url="http://t") as api,
    ):
        await asyncio.sleep(0.1)  # the probe runs freely: its lags stay small
        before = samples_of((await api.get("/metrics")).text)
        time.sleep(0.3)  # noqa: ASYNC251 - work holding the loop, as a large encode would
        await asyncio.sleep(0.05)
        after = samples_of((await api.get("/metrics")).text)
    name = "tsgate_event_loop_lag_seconds"
    assert before[(name + "_count", ())] >= 1
    assert after[(name + "_count", ())] > before[(name + "_count", ())]
    # the stall is one probe waking at least 0.25 s late: past the 0.25 s bound, once
    late = after[(name + "_count", ())] - after[(name + "_bucket", (("le", "0.25"),))]
    assert (
        late - (before[(name + "_count", ())] - before[(name + "_bucket", (("le", "0.25"),))]) == 1
    )
    assert after[(name + "_sum", ())] - before[(name + "_sum", ())] >= 0.25
    assert after[("tsgate_event_loop_lag_max_seconds", ())] >= 0.25
    buckets = [v for (n, _), v in after.items() if n == name + "_bucket"]
    assert sorted(buckets) == buckets  # cumulative


async def test_no_loop_lag_probe_when_its_interval_is_zero(settings: Settings) -> None:
    conf = dataclasses.replace(settings, loop_lag_interval_s=0)
    app = create_app(conf, upstream=sim_client(create_simulator(seed=1)))
    async with (
        lifespan_app(app) as asgi,
        httpx.AsyncClient(transport=httpx.ASGITransport(asgi), base_url="http://t") as api,
    ):
        await asyncio.sleep(0.05)
        found = samples_of((await api.get("/metrics")).text)
    assert found[("tsgate_event_loop_lag_seconds_count", ())] == 0


async def test_metrics_show_the_garbage_collectors_pauses(settings: Settings) -> None:
    app = create_app(settings, upstream=sim_client(create_simulator(seed=1)))
    async with (
        lifespan_app(app) as asgi,
        httpx.AsyncClient(transport=httpx.ASGITransport(asgi), base_url="http://t") as api,
    ):
        before = samples_of((await api.get("/metrics")).text)
        for _ in range(3):
            gc.collect()
        after = samples_of((await api.get("/metrics")).text)
    name = "tsgate_gc_pause_seconds"
    assert after[(name + "_count", ())] - before[(name + "_count", ())] >= 3
    assert after[(name + "_sum", ())] > before[(name + "_sum", ())]
    # an app made here is not its process's server: it freezes nothing
    assert after[("tsgate_gc_frozen_objects", ())] == gc.get_freeze_count() == 0
    # and once the app stopped, its hook is gone from the collector
    assert not any(isinstance(getattr(cb, "__self__", None), GcPauses) for cb in gc.callbacks)
