"""The chart API: raw, aggregated and downsampled series; layouts; caching headers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import numpy as np
import pytest
from starlette.types import Receive, Scope, Send

from tests.asgi import FAST_POLICY, api_client, lifespan_app, lifespan_client, sim_client
from tsgate.app import create_app
from tsgate.errors import Unauthorized
from tsgate.settings import Settings
from tsgate.upstream.ace import AceClient
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.wire.ace import parse_time

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": "Bearer t"}
WEEK = {"start": "2025-10-01T00:00:00", "end": "2025-10-08T00:00:00"}
YEAR = {"start": "2024-10-01T00:00:00", "end": "2025-10-01T00:00:00"}


@pytest.fixture
def sim() -> Simulator:
    return create_simulator(seed=5)


@pytest.fixture
async def api(sim: Simulator, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings, sim) as client:
        yield client


def points(sim: Simulator, n: int, kind: str | None = None) -> list[str]:
    return [p.name for p in sim.sites[2].collecting if kind is None or p.kind == kind][:n]


async def get(
    api: httpx.AsyncClient, sim: Simulator, names: list[str], **params: str
) -> httpx.Response:
    query = {"site": "elm_school", "points": ",".join(names), **params}
    return await api.get("/api/timeseries", params=query, headers=AUTH)


async def raw_of(
    api: httpx.AsyncClient, sim: Simulator, names: list[str], rng: dict[str, str]
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    body = (await get(api, sim, names, **rng, layout="columnar")).json()
    return {
        s["name"]: (np.array(s["t"], dtype=np.int64), np.array(s["v"], dtype=np.float64))
        for s in body["series"]
    }


async def test_raw_series_and_metadata(api: httpx.AsyncClient, sim: Simulator) -> None:
    names = points(sim, 2)
    r = await get(api, sim, names, **WEEK)
    assert r.status_code == 200, r.text
    body = r.json()
    meta = body["metadata"]
    assert meta["siteId"] == "elm_school" and meta["pointNames"] == names
    assert (
        meta["totalSamples"]
        == meta["returnedPoints"]
        == sum(len(s["data"]) for s in body["series"])
    )
    assert 2 * 7 * 280 < meta["totalSamples"] <= 2 * 7 * 288
    first = body["series"][0]["data"]
    assert isinstance(first[0][0], int) and first == sorted(first)
    for header in (
        "X-Cache-Status",
        "X-Cache-Source",
        "X-Processing-Time",
        "X-Data-Samples",
        "Server-Timing",
        "ETag",
    ):
        assert header in r.headers
    assert r.headers["X-Cache-Status"] == "MISS" and r.headers["X-Cache-Source"] == "ORIGIN"
    again = await get(api, sim, names, **WEEK)
    assert again.headers["X-Cache-Status"] == "HIT" and again.json() == body


async def test_columnar_msgpack_carries_binary_arrays(
    api: httpx.AsyncClient, sim: Simulator
) -> None:
    names = points(sim, 2)
    raw = await raw_of(api, sim, names, WEEK)
    r = await api.get(
        "/api/timeseries",
        params={"site": "elm_school", "points": ",".join(names), **WEEK, "layout": "columnar"},
        headers={**AUTH, "Accept": "application/x-msgpack"},
    )
    assert r.headers["content-type"] == "application/x-msgpack"
    body = msgspec.msgpack.decode(r.content)
    for s in body["series"]:
        t = s["t0"] + np.cumsum(_unplane(s["dtp"], "<i4").astype(np.int64))
        if "vdp" in s:  # exact decimals: int32 deltas of value × vs
            v = np.cumsum(_unplane(s["vdp"], "<i4").astype(np.int64)) / s["vs"]
            assert v.tolist() == raw[s["name"]][1].tolist()
        else:
            v = _unplane(s["vp"], "<f4")
            assert np.allclose(v, raw[s["name"]][1], rtol=1e-6)
        assert s["n"] == len(t) == len(v)
        assert t.tolist() == raw[s["name"]][0].tolist()
    # a binary column costs about 8 bytes a sample before compression, JSON ~30
    assert len(r.content) < 10 * sum(len(x[0]) for x in raw.values())


def _unplane(planes: bytes, dtype: str) -> np.ndarray[Any, Any]:
    """A binary column from its byte planes: byte b of element i at b × n + i (docs/api.md)."""
    size = np.dtype(dtype).itemsize
    return np.frombuffer(planes, dtype=np.uint8).reshape(size, -1).T.copy().view(dtype).ravel()


@pytest.mark.parametrize("agg", ["avg", "min", "max", "sum", "count", "stddev"])
async def test_interval_aggregates_match_numpy(
    api: httpx.AsyncClient, sim: Simulator, agg: str
) -> None:
    names = points(sim, 1, "zone_temp")
    raw = (await raw_of(api, sim, names, WEEK))[names[0]]
    for interval, width in (("1h", 3_600_000), ("15min", 900_000)):
        body = (await get(api, sim, names, **WEEK, interval=interval, agg=agg)).json()
        data = np.array(body["series"][0]["data"], dtype=np.float64)
        t, v = raw
        slots = t // width
        expected_t = np.unique(slots) * width
        reference = {
            "avg": np.mean,
            "min": np.min,
            "max": np.max,
            "sum": np.sum,
            "count": len,
            "stddev": np.std,
        }[agg]
        expected_v = np.array(
            [reference(v[slots == s]) for s in np.unique(slots)], dtype=np.float64
        )
        assert data[:, 0].astype(np.int64).tolist() == expected_t.tolist()
        assert np.allclose(data[:, 1], expected_v, atol=1e-6)
        assert body["metadata"]["aggregation"] == agg and body["metadata"]["interval"] == interval


async def test_a_year_downsampled_keeps_extremes_and_comes_from_rollups(
    api: httpx.AsyncClient, sim: Simulator
) -> None:
    names = points(sim, 2, "airflow")
    cold = await get(api, sim, names, **YEAR, max_points="2000")
    assert cold.status_code == 200 and cold.headers["X-Cache-Status"] == "MISS"
    requests = sim.stats.requests
    warm = await get(api, sim, names, **YEAR, max_points="2000")
    assert sim.stats.requests == requests
    # the same question again: the whole answer comes from the response cache
    assert warm.headers["X-Cache-Status"] == "HIT" and warm.headers["X-Cache-Source"] == "MEMORY"
    body = warm.json()
    assert body == cold.json()
    # another caller (its own response-cache scope) is answered from the rollups
    other = await api.get(
        "/api/timeseries",
        params={"site": "elm_school", "points": ",".join(names), **YEAR, "max_points": "2000"},
        headers={"Authorization": "Bearer another"},
    )
    assert other.headers["X-Cache-Status"] == "HIT" and other.headers["X-Cache-Source"] == "ROLLUP"
    assert other.json() == body
    raw = await raw_of(api, sim, names, YEAR)
    for s in body["series"]:
        values = np.array([p[1] for p in s["data"]])
        assert 1000 < len(values) <= 2000
        assert values.max() == raw[s["name"]][1].max() and values.min() == raw[s["name"]][1].min()
    assert int(warm.headers["X-Data-Samples"]) == sum(len(x[0]) for x in raw.values())


async def test_short_ranges_downsample_raw_with_minmax_lttb(
    api: httpx.AsyncClient, sim: Simulator
) -> None:
    names = points(sim, 1)
    body = (
        await get(
            api,
            sim,
            names,
            start="2025-10-01T00:00:00",
            end="2025-10-01T12:00:00",
            max_points="100",
        )
    ).json()
    # 25 columns of 29 min: narrower than any rollup level, so raw samples are downsampled
    assert len(body["series"][0]["data"]) <= 100
    assert body["metadata"]["aggregation"] == "minmax-lttb"


async def test_etag_and_cache_control(api: httpx.AsyncClient, sim: Simulator) -> None:
    names = points(sim, 1)
    r = await get(api, sim, names, **WEEK)
    assert "immutable" in r.headers["Cache-Control"]
    again = await api.get(
        "/api/timeseries",
        params={"site": "elm_school", "points": names[0], **WEEK},
        headers={**AUTH, "If-None-Match": r.headers["ETag"]},
    )
    assert again.status_code == 304 and again.content == b""


async def test_aggregations_endpoint(api: httpx.AsyncClient, sim: Simulator) -> None:
    names = points(sim, 2)
    r = await api.get(
        "/api/aggregations",
        params={"site": "elm_school", "points": ",".join(names), **WEEK, "interval": "1d"},
        headers=AUTH,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    rows = body["aggregations"]
    assert (
        len(rows) == 14
        and {"name", "timestamp", "avg", "min", "max", "sum", "count", "stddev"} <= rows[0].keys()
    )
    raw = await raw_of(api, sim, names, WEEK)
    day1 = next(row for row in rows if row["name"] == names[0])
    t, v = raw[names[0]]
    first_day = v[t < t[0] - t[0] % 86_400_000 + 86_400_000]
    assert day1["count"] == first_day.size
    assert day1["avg"] == pytest.approx(first_day.mean()) and day1["stddev"] == pytest.approx(
        first_day.std()
    )


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"points": "a", **WEEK}, "site"),
        ({"site": "elm_school", **WEEK}, "points"),
        ({"site": "elm_school", "points": "a", "end": WEEK["end"]}, "start"),
        ({"site": "elm_school", "points": "a", **WEEK, "interval": "2h"}, "interval"),
        ({"site": "elm_school", "points": "a", **WEEK, "agg": "median"}, "agg"),
        ({"site": "elm_school", "points": "a", **WEEK, "layout": "rows"}, "layout"),
        ({"site": "elm_school", "points": "a", **WEEK, "max_points": "many"}, "max_points"),
        ({"site": "elm_school", "points": "a", **WEEK, "max_points": "2"}, "max_points"),
    ],
)
async def test_bad_chart_parameters(
    api: httpx.AsyncClient, params: dict[str, str], param: str
) -> None:
    r = await api.get("/api/timeseries", params=params, headers=AUTH)
    assert r.status_code == 400 and r.json()["param"] == param


async def test_too_many_raw_samples_is_413_with_suggestions(
    api: httpx.AsyncClient, sim: Simulator
) -> None:
    names = [p.name for p in sim.sites[0].collecting[:200]]
    r = await api.get(
        "/api/timeseries",
        params={
            "site": "demo_campus",
            "points": ",".join(names),
            "start": "2023-01-01",
            "end": "2025-01-01",
        },
        headers=AUTH,
    )
    assert r.status_code == 413
    assert r.json()["limit"] == "max_inline_samples" and "max_points" in r.json()["detail"]


async def test_cold_queries_over_the_inline_budget_become_jobs(settings: Settings) -> None:
    import dataclasses

    sim = create_simulator(seed=5)
    small = dataclasses.replace(settings, inline_fetch_samples=1000)
    names = ",".join(p.name for p in sim.sites[2].collecting[:2])
    params = {"site": "elm_school", "points": names, **WEEK, "max_points": "500"}
    async with api_client(small, sim) as api:
        refused = await api.get(
            "/api/timeseries", params={**params, "async": "false"}, headers=AUTH
        )
        assert refused.status_code == 413 and refused.json()["limit"] == "inline_fetch_samples"
        accepted = await api.get("/api/timeseries", params=params, headers=AUTH)
        assert accepted.status_code == 202
        body = accepted.json()
        assert accepted.headers["Location"] == body["statusUrl"] == f"/api/jobs/{body['jobId']}"
        assert 2 * 7 * 280 < body["estimatedSamples"] <= 2 * 7 * 289
        progress: list[int] = []
        for _ in range(200):
            job = (await api.get(body["statusUrl"], headers=AUTH)).json()
            progress.append(job["progress"])
            if job["status"] in {"completed", "failed", "dead"}:
                break
            await asyncio.sleep(0.05)
        assert job["status"] == "completed", job
        assert progress == sorted(progress) and progress[-1] == 100
        result = await api.get(f"{body['statusUrl']}/result", headers=AUTH)
        assert result.status_code == 200
        # the cache is warm now: the same query answers inline, and equals the job's result
        inline = await api.get("/api/timeseries", params=params, headers=AUTH)
        assert inline.status_code == 200 and inline.headers["X-Cache-Status"] == "HIT"
        answered = inline.json()
        # series say their point's kind and mode (from the site's catalog), inline and in
        # the job's result alike
        assert [(s["kind"], s["mode"]) for s in answered["series"]] == [("analog", "sampled")] * 2
        assert result.json() == answered


async def test_response_cache_keeps_encodings_and_etags_apart(
    api: httpx.AsyncClient, sim: Simulator
) -> None:
    names = points(sim, 1)
    first = await get(api, sim, names, **WEEK)
    assert first.headers["X-Cache-Source"] == "ORIGIN"
    again = await get(api, sim, names, **WEEK)
    assert again.headers["X-Cache-Source"] == "MEMORY" and again.json() == first.json()
    assert again.headers["ETag"] == first.headers["ETag"]
    packed = await api.get(
        "/api/timeseries",
        params={"site": "elm_school", "points": names[0], **WEEK},
        headers={**AUTH, "Accept": "application/x-msgpack"},
    )
    assert packed.headers["content-type"] == "application/x-msgpack"
    assert msgspec.msgpack.decode(packed.content) == first.json()
    not_modified = await api.get(
        "/api/timeseries",
        params={"site": "elm_school", "points": names[0], **WEEK},
        headers={**AUTH, "If-None-Match": first.headers["ETag"]},
    )
    assert not_modified.status_code == 304


async def test_a_cold_chart_refreshes_the_catalog_while_its_samples_arrive(
    settings: Settings,
) -> None:
    """The catalog a chart's gaps are judged by is fetched beside the samples, not after
    them (a site's first chart paid both in turn), once, and the answer is still exactly
    upstream's samples."""
    sim = create_simulator(seed=5)
    sim.faults.latency_s = 0.05
    calls: list[tuple[str, float, float]] = []

    async def recorded(scope: Scope, receive: Receive, send: Send) -> None:
        began = time.perf_counter()
        await sim(scope, receive, send)
        if scope["type"] == "http":
            calls.append((scope["path"], began, time.perf_counter()))

    upstream = AceClient(
        "http://simulator/api", FAST_POLICY, transport=httpx.ASGITransport(app=recorded)
    )
    names = points(sim, 12)
    rng = {"start": "2025-08-01T00:00:00", "end": "2025-10-01T00:00:00"}
    async with lifespan_app(create_app(settings, upstream=upstream)) as asgi:
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://tsgate") as api:
            got = await raw_of(api, sim, names, rng)
            again = await raw_of(api, sim, names, rng)
    catalog = [began for path, began, _ in calls if path.endswith("/configured_points")]
    samples = [ended for path, _, ended in calls if "timeseries" in path]
    assert len(catalog) == 1 and len(samples) >= 4
    assert catalog[0] < max(samples)  # asked while samples were still arriving
    start, end = parse_time("start", rng["start"]), parse_time("end", rng["end"])
    for answer in (got, again):
        for name in names:
            t_us, v = sim.truth(name, start, end)
            np.testing.assert_array_equal(answer[name][0], t_us // 1000)
            np.testing.assert_array_equal(answer[name][1], v)


async def test_concurrent_catalog_refreshes_of_a_site_fetch_it_once(settings: Settings) -> None:
    sim = create_simulator(seed=5)
    sim.faults.latency_s = 0.02
    async with lifespan_client(create_app(settings, upstream=sim_client(sim))) as (api, state):
        catalog = state["services"].catalog
        sources = await asyncio.gather(*(catalog.fresh("elm_school", "t") for _ in range(5)))
        listed = await api.get(
            "/api/sites/elm_school/configured_points", params={"per_page": 5000}, headers=AUTH
        )
    assert sorted(sources) == ["ORIGIN"] + ["STORE"] * 4
    assert sim.stats.by_route["configured_points"] == 1  # the listing too is the stored one
    assert listed.status_code == 200
    assert [p["name"] for p in listed.json()["items"]] == [p.name for p in sim.sites[2].points]


async def test_a_refused_catalog_refresh_ahead_stores_nothing_and_the_caller_is_refused(
    settings: Settings,
) -> None:
    sim = create_simulator(seed=5, tokens={"good": ["elm_school"]})
    async with lifespan_client(create_app(settings, upstream=sim_client(sim))) as (_, state):
        services = state["services"]
        ahead = services.catalog.refresh_ahead("elm_school", "revoked")
        await asyncio.wait({ahead})
        assert ahead.exception() is None  # logged, not left for nobody to retrieve
        assert await services.database.points.refreshed_at("elm_school") is None
        with pytest.raises(Unauthorized):
            await services.catalog.fresh("elm_school", "revoked", access_checked=True)
        assert await services.catalog.fresh("elm_school", "good") == "ORIGIN"
