"""The fast path of cached chart answers: the same bytes and headers as the full path,
never past a data repair, a revoked token or the caller's rate limit."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pytest

from tests.asgi import lifespan_client, sim_client
from tsgate.api.fastpath import FastAnswers
from tsgate.api.responses import CachedResponse
from tsgate.app import create_app
from tsgate.ops.logs import JsonFormatter
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.wiring import Services

pytestmark = pytest.mark.anyio
NOW = 1_763_208_000_000  # 2025-11-15T12:00Z
SITE = "elm_school"
GOOD = {"Authorization": "Bearer good"}
WEEK = {"start": "2025-10-01T00:00:00", "end": "2025-10-08T00:00:00"}
# what one exchange adds: the request id, the timings, the rate limit now
_PER_EXCHANGE = {
    "x-request-id",
    "x-processing-time",
    "server-timing",
    "ratelimit-remaining",
    "ratelimit-reset",
}


@dataclass
class Env:
    api: httpx.AsyncClient
    sim: Simulator
    services: Services
    answers: FastAnswers
    now: list[int]

    def names(self, n: int) -> list[str]:
        return [p.name for p in self.sim.sites[2].collecting[:n]]

    async def chart(
        self, names: list[str], headers: dict[str, str] = GOOD, **params: str
    ) -> httpx.Response:
        query = {"site": SITE, "points": ",".join(names), **WEEK, **params}
        return await self.api.get("/api/timeseries", params=query, headers=headers)


@pytest.fixture
async def env(settings: Settings) -> AsyncIterator[Env]:
    sim = create_simulator(seed=5, tokens={"good": [SITE], "other": [SITE]}, now_ms=lambda: NOW)
    now = [NOW]
    conf = dataclasses.replace(settings, access_ttl_s=300, rate_limit_per_min=600)
    app = create_app(conf, upstream=sim_client(sim), clock_ms=lambda: now[0])
    async with lifespan_client(app) as (api, state):
        yield Env(api, sim, state["services"], state["fast_answers"], now)


def _answer(r: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    headers = {k: v for k, v in r.headers.items() if k not in _PER_EXCHANGE}
    return r.status_code, r.content, headers


VARIANTS: list[tuple[dict[str, str], dict[str, str]]] = [
    ({}, {}),
    ({"Accept": "application/x-msgpack"}, {}),
    ({}, {"format": "msgpack", "layout": "columnar"}),
    ({"Accept-Encoding": "gzip"}, {"interval": "1h"}),
    ({"Accept-Encoding": "br, gzip;q=0.5"}, {"max_points": "200"}),
    ({"X-ACE-Token": "Bearer good"}, {"agg": "max", "interval": "1d"}),
    ({}, {"compare": "-1d", "interval": "1h"}),
    ({}, {"tz": "America/Chicago", "interval": "1d"}),
]


@pytest.mark.parametrize(("extra_headers", "params"), VARIANTS)
async def test_a_fast_answer_is_the_full_paths_answer(
    env: Env, extra_headers: dict[str, str], params: dict[str, str]
) -> None:
    names = env.names(2)
    headers = {**GOOD, **extra_headers}
    if "X-ACE-Token" in headers:
        del headers["Authorization"]
    first = await env.chart(names, headers, **params)
    assert first.status_code == 200 and first.headers["x-cache-status"] != "HIT", first.text
    calls = env.sim.stats.requests
    env.answers.clear()  # the full path answers from the response cache, and keeps it again
    before = env.answers.hits
    full = await env.chart(names, headers, **params)
    assert full.headers["x-cache-status"] == "HIT" and env.answers.hits == before
    fast = await env.chart(names, headers, **params)
    assert env.answers.hits == before + 1 and env.sim.stats.requests == calls
    assert _answer(fast) == _answer(full)
    assert fast.headers["ratelimit-limit"] == full.headers["ratelimit-limit"]
    assert fast.headers["x-request-id"] != full.headers["x-request-id"]
    assert fast.content == first.content  # decoded bytes: the answer as first computed
    assert {k: v for k, v in _answer(first)[2].items() if not k.startswith("x-cache")} == {
        k: v for k, v in _answer(fast)[2].items() if not k.startswith("x-cache")
    }


async def test_a_fast_answer_is_told_as_the_full_path_tells_its_answers(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """Served before the telemetry middleware, a fast answer still keeps a sane request
    id, logs its access line and counts in the metrics and the request statistics, just
    as the same answer served by the full path does."""
    names = env.names(2)
    await env.chart(names)
    env.answers.clear()
    await env.services.recorder.flush()
    stats_before = await env.services.database.stats.summary(0)
    with caplog.at_level(logging.INFO, logger="tsgate.access"):
        full = await env.chart(names, {**GOOD, "X-Request-ID": "full-1"})
        hits = env.answers.hits
        fast = await env.chart(names, {**GOOD, "X-Request-ID": "fast-1"})
        assert env.answers.hits == hits + 1
        fresh = await env.chart(names, {**GOOD, "X-Request-ID": "a b"})  # not sane: replaced
    assert full.headers["x-request-id"] == "full-1" and fast.headers["x-request-id"] == "fast-1"
    assert fresh.headers["x-request-id"] != "a b" and len(fresh.headers["x-request-id"]) == 32
    as_json = JsonFormatter()
    lines = [json.loads(as_json.format(r)) for r in caplog.records if r.name == "tsgate.access"]
    told = [{k: v for k, v in line.items() if k in _TOLD_FIELDS} for line in lines]
    assert told[0] == told[1] == told[2] == {
        "method": "GET", "path": "/api/timeseries", "route": "/api/timeseries", "status": 200,
        "bytes": int(full.headers["content-length"]), "cache": "HIT", "source": "MEMORY",
    }  # fmt: skip
    assert [line["request_id"] for line in lines[:2]] == ["full-1", "fast-1"]
    await env.services.recorder.flush()
    stats = await env.services.database.stats.summary(0)
    samples = int(full.headers["x-data-samples"])
    assert stats["count"] == stats_before["count"] + 3
    assert stats["samples"] == stats_before["samples"] + 3 * samples
    assert stats["bytes_out"] == stats_before["bytes_out"] + 3 * int(full.headers["content-length"])
    hit = stats["by_cache_status"].get("HIT:MEMORY", 0)
    assert hit == stats_before["by_cache_status"].get("HIT:MEMORY", 0) + 3
    metrics = (await env.api.get("/metrics")).text
    assert 'tsgate_http_requests_total{method="GET",route="/api/timeseries",status="200"} 4.0' in (
        metrics
    )


_TOLD_FIELDS = {"method", "path", "route", "status", "bytes", "cache", "source"}


async def test_the_fast_answer_holds_the_samples_upstream_has(env: Env) -> None:
    names = env.names(1)
    await env.chart(names)
    fast = await env.chart(names, {**GOOD, "Accept": "application/json"})
    again = await env.chart(names, {**GOOD, "Accept": "application/json"})
    assert env.answers.hits >= 1 and again.content == fast.content
    got = np.array([v for _, v in again.json()["series"][0]["data"]], dtype=np.float64)
    truth = await _truth(env, names[0])
    assert got.shape == truth.shape and np.allclose(got, truth)


async def _truth(env: Env, name: str) -> np.ndarray:
    transport = httpx.ASGITransport(app=env.sim)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as direct:
        r = await direct.get(
            f"/api/points/{name.replace('/', '%2F')}/timeseries",
            params={"start_time": WEEK["start"], "end_time": WEEK["end"]},
            headers=GOOD,
        )
    assert r.status_code == 200, r.text
    return np.array([float(row["value"]) for row in r.json()["point_samples"]])


async def test_etag_revalidation_is_the_same_on_both_paths(env: Env) -> None:
    names = env.names(1)
    first = await env.chart(names, {**GOOD, "Accept-Encoding": "gzip"}, interval="1h")
    etag = first.headers["etag"]
    ask = {**GOOD, "Accept-Encoding": "gzip", "If-None-Match": etag}
    before = env.answers.hits
    fast = await env.chart(names, ask, interval="1h")
    env.answers.clear()
    full = await env.chart(names, ask, interval="1h")
    assert env.answers.hits == before + 1
    assert fast.status_code == full.status_code == 304 and fast.content == b""
    assert "content-encoding" not in fast.headers and "content-length" not in fast.headers
    assert _answer(fast) == _answer(full)
    stale = await env.chart(names, {**ask, "If-None-Match": '"other"'}, interval="1h")
    assert stale.status_code == 200 and stale.headers["etag"] == etag


async def test_a_repair_moves_the_fast_answer_aside(env: Env) -> None:
    names = env.names(1)
    await env.chart(names)
    await env.chart(names)
    hits = env.answers.hits
    await env.services.reader.generations.bump(SITE)
    after = await env.chart(names)
    # recomputed from the stored samples, not served whole
    assert env.answers.hits == hits and after.headers["server-timing"].startswith("compute;")
    assert (await env.chart(names)).status_code == 200 and env.answers.hits == hits + 1


async def test_a_revoked_token_is_not_served_once_its_grant_runs_out(env: Env) -> None:
    names = env.names(1)
    assert (await env.chart(names)).status_code == 200
    assert env.sim.tokens is not None
    del env.sim.tokens["good"]  # upstream revokes the token
    within = await env.chart(names)  # the grant still holds, as for every cached read
    assert within.status_code == 200
    env.now[0] += 301_000  # TSGATE_ACCESS_TTL_S passes
    hits = env.answers.hits
    refused = await env.chart(names)
    assert refused.status_code == 401, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert env.answers.hits == hits


async def test_a_token_refused_for_another_site_loses_the_fast_path(env: Env) -> None:
    names = env.names(1)
    await env.chart(names)
    assert env.sim.tokens is not None
    del env.sim.tokens["good"]
    elsewhere = await env.api.get(
        "/api/timeseries",
        params={"site": "oak_hospital", "points": "x", **WEEK},
        headers=GOOD,
    )
    assert elsewhere.status_code == 401
    hits = env.answers.hits
    refused = await env.chart(names)
    assert refused.status_code == 401 and env.answers.hits == hits


async def test_hostile_headers_take_the_full_path(env: Env) -> None:
    names = env.names(1)
    await env.chart(names)
    hits = env.answers.hits
    basic = await env.chart(names, {"Authorization": "Basic Z29vZDp4"})
    assert basic.status_code == 401 and basic.headers["content-type"] == "application/problem+json"
    junk = await env.chart(names, {"Authorization": "Bearer junk"})
    assert junk.status_code == 401
    other = await env.chart(names, {"Authorization": "Bearer other"})  # its own scope
    assert other.status_code == 200 and other.headers["server-timing"].startswith("compute;")
    assert env.answers.hits == hits
    head = await env.api.head(
        "/api/timeseries", params={"site": SITE, "points": names[0], **WEEK}, headers=GOOD
    )
    assert head.status_code == 200 and env.answers.hits == hits


async def test_the_rate_limit_holds_on_the_fast_path(env: Env) -> None:
    env.services.settings = dataclasses.replace(
        env.services.settings, rate_limit_per_min=1, rate_limit_burst=2
    )
    names = env.names(1)
    await env.chart(names)  # upstream now knows the token: it is limited by its own bucket
    await env.chart(names, start="2025-09-01T00:00:00")  # this one's upstream work: in debt
    hits = env.answers.hits
    refused = await env.chart(names, start="2025-09-01T00:00:00")
    assert refused.status_code == 429 and "retry-after" in refused.headers
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["ratelimit-remaining"] == "0" and env.answers.hits == hits


async def test_answers_are_bounded_by_bytes() -> None:
    answers = FastAnswers(max_bytes=8 * 1000)
    settings = Settings(upstream_token="server")
    fields = {"settings": settings, "salt": b"s" * 32, "clock_ms": staticmethod(lambda: NOW)}
    services: Any = type("S", (), fields)()
    for i in range(50):
        scope = {"headers": [], "query_string": f"q={i}".encode()}
        hit = CachedResponse(b"x" * 900, "application/json", {}, until_ms=NOW + 60_000)
        answers.keep(scope, services, SITE, "0", hit)
    assert 0 < len(answers) <= 8 and answers._entries.bytes <= 8 * 1000
    expired = CachedResponse(b"y", "application/json", {}, until_ms=NOW)
    answers.keep({"headers": [], "query_string": b"old"}, services, SITE, "0", expired)
    assert len(answers) <= 8 and all(e.until_ms > NOW for e in answers._entries.values())
