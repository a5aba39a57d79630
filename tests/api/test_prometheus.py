"""The Prometheus query API against the simulator read directly, with Prometheus semantics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests import simtruth
from tests.asgi import api_client
from tests.clock import NOW, OCT1, Clock
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": "Bearer t"}
API = "/prometheus/api/v1"
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
AHU_TEMPS = 'ace{site="elm_school",tags=~".*,ahu,.*",tags=~".*,temp,.*"}'


@pytest.fixture
def sim() -> Simulator:
    return create_simulator(seed=5, now_ms=lambda: NOW)


@pytest.fixture
async def api(sim: Simulator, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings, sim, clock_ms=Clock(NOW)) as client:
        yield client


def ahu_temps(sim: Simulator) -> list[str]:
    site = sim.site_by_name["elm_school"]
    return sorted(
        p.name
        for p in site.collecting
        if p.device.startswith("Ahu") and p.kind in ("supply_temp", "return_temp")
    )


async def prom(api: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    r = await api.get(f"{API}/{path}", params=params, headers=AUTH)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["status"] == "success"
    return body


async def error(api: httpx.AsyncClient, path: str, status: int, **params: Any) -> dict[str, Any]:
    r = await api.get(f"{API}/{path}", params=params, headers=AUTH)
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["status"] == "error" and body["errorType"] and body["error"]
    return body


async def test_grafana_save_and_test_query_answers_two(api: httpx.AsyncClient) -> None:
    # Grafana's health check POSTs the form query=1+1 (instant) to the data source
    r = await api.post(
        f"{API}/query",
        content=f"query=1%2B1&time={NOW / 1000}",
        headers={**AUTH, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {
        "status": "success",
        "data": {"resultType": "scalar", "result": [NOW / 1000, "2"]},
    }


@pytest.mark.parametrize("func", ["avg", "min", "max", "sum", "count", "last", "stddev"])
@pytest.mark.parametrize(
    ("step_ms", "range_ms", "offset_ms"),
    [
        (HOUR_MS, HOUR_MS, 0),  # whole hours: hourly rollups answer
        (HOUR_MS, 3 * HOUR_MS, 0),
        (DAY_MS, DAY_MS, 0),  # whole days: daily rollups
        (7 * 60_000, 20 * 60_000, 13_000),  # unaligned: raw samples
    ],
    ids=["1h", "3h", "1d", "raw"],
)
async def test_over_time_matches_prometheus_semantics(
    api: httpx.AsyncClient, sim: Simulator, func: str, step_ms: int, range_ms: int, offset_ms: int
) -> None:
    start = OCT1 + 2 * DAY_MS + offset_ms
    end = start + (3 * DAY_MS if step_ms == DAY_MS else 12 * HOUR_MS)
    query = f"{func}_over_time({AHU_TEMPS}[{range_ms // 1000}s])"
    body = await prom(
        api, "query_range", query=query, start=start / 1000, end=end / 1000, step=step_ms / 1000
    )
    result = body["data"]["result"]
    assert body["data"]["resultType"] == "matrix"
    names = ahu_temps(sim)
    assert sorted(s["metric"]["point"] for s in result) == names
    for s in result:
        assert "__name__" not in s["metric"] or func == "last"
        rows = await simtruth.samples(sim, s["metric"]["point"], start - range_ms, end + 1)
        got = simtruth.as_map(s["values"])
        expected = {
            t: v
            for t in simtruth.steps(start, end, step_ms)
            if (v := simtruth.over_time(func, simtruth.window(rows, t, range_ms))) is not None
        }
        assert got.keys() == expected.keys()
        bad = {
            t: (got[t], expected[t]) for t in expected if not simtruth.close(got[t], expected[t])
        }
        assert not bad


@pytest.mark.parametrize("step_ms", [HOUR_MS, 60_000], ids=["rollup", "raw"])
async def test_bare_selector_looks_back_twice_the_collect_interval(
    api: httpx.AsyncClient, sim: Simulator, step_ms: int
) -> None:
    start, end = OCT1 + DAY_MS, OCT1 + DAY_MS + 6 * HOUR_MS
    body = await prom(
        api, "query_range", query=AHU_TEMPS, start=start / 1000, end=end / 1000, step=step_ms / 1000
    )
    result = body["data"]["result"]
    assert len(result) == len(ahu_temps(sim))
    lookback = 2 * 300_000  # the simulator's points collect every 300 s
    for s in result:
        assert s["metric"]["__name__"] == "ace" and s["metric"]["site"] == "elm_school"
        assert s["metric"]["unit"] == "°F" and ",temp," in s["metric"]["tags"]
        rows = await simtruth.samples(sim, s["metric"]["point"], start - lookback, end + 1)
        expected = {
            t: w[-1]
            for t in simtruth.steps(start, end, step_ms)
            if (w := simtruth.window(rows, t, lookback))
        }
        got = simtruth.as_map(s["values"])
        # 5-minute reporting: every step has a sample within the 10-minute lookback
        assert len(expected) == len(simtruth.steps(start, end, step_ms))
        assert got == pytest.approx(expected)


async def test_offset_one_week_is_the_same_query_a_week_earlier(api: httpx.AsyncClient) -> None:
    start, end = OCT1 + 8 * DAY_MS, OCT1 + 9 * DAY_MS
    week = 7 * DAY_MS
    shifted = await prom(
        api,
        "query_range",
        query=f"avg_over_time({AHU_TEMPS}[1h] offset 1w)",
        start=start / 1000,
        end=end / 1000,
        step=3600,
    )
    direct = await prom(
        api,
        "query_range",
        query=f"avg_over_time({AHU_TEMPS}[1h])",
        start=(start - week) / 1000,
        end=(end - week) / 1000,
        step=3600,
    )
    a = {s["metric"]["point"]: simtruth.as_map(s["values"]) for s in shifted["data"]["result"]}
    b = {s["metric"]["point"]: simtruth.as_map(s["values"]) for s in direct["data"]["result"]}
    assert a.keys() == b.keys() and a
    for point, values in a.items():
        assert {t - week: v for t, v in values.items()} == b[point]


async def test_at_modifier_pins_the_evaluation_time(api: httpx.AsyncClient, sim: Simulator) -> None:
    pinned = OCT1 + 3 * DAY_MS
    body = await prom(
        api,
        "query_range",
        query=f"last_over_time({AHU_TEMPS}[10m] @ {pinned / 1000})",
        start=(OCT1 + 5 * DAY_MS) / 1000,
        end=(OCT1 + 5 * DAY_MS + HOUR_MS) / 1000,
        step=600,
    )
    for s in body["data"]["result"]:
        values = {v for _, v in s["values"]}
        rows = await simtruth.samples(sim, s["metric"]["point"], pinned - 600_000, pinned + 1)
        assert len(values) == 1
        assert float(values.pop()) == pytest.approx(rows[-1][1])


async def test_aggregation_by_label_matches_the_sum_of_the_points(
    api: httpx.AsyncClient, sim: Simulator
) -> None:
    t = OCT1 + 4 * DAY_MS
    per_point = await prom(api, "query", query=f"avg_over_time({AHU_TEMPS}[1h])", time=t / 1000)
    for op, combine in (("sum", sum), ("max", max), ("min", min)):
        body = await prom(
            api, "query", query=f"{op} by (site) (avg_over_time({AHU_TEMPS}[1h]))", time=t / 1000
        )
        (only,) = body["data"]["result"]
        assert only["metric"] == {"site": "elm_school"}
        values = [float(s["value"][1]) for s in per_point["data"]["result"]]
        assert float(only["value"][1]) == pytest.approx(combine(values))
    avg = await prom(
        api, "query", query=f"avg(avg_over_time({AHU_TEMPS}[1h])) * 2 - 1", time=t / 1000
    )
    (row,) = avg["data"]["result"]
    assert row["metric"] == {}
    assert float(row["value"][1]) == pytest.approx(2 * sum(values) / len(values) - 1)


async def test_second_range_query_is_served_from_the_cache(
    api: httpx.AsyncClient, sim: Simulator
) -> None:
    params = {
        "query": f"max_over_time({AHU_TEMPS}[1h])",
        "start": (OCT1) / 1000,
        "end": (OCT1 + 16 * DAY_MS) / 1000,
        "step": 3600,
    }
    first = await api.get(f"{API}/query_range", params=params, headers=AUTH)
    assert first.status_code == 200 and first.headers["X-Cache-Status"] == "MISS"
    calls = sim.stats.requests
    again = await api.get(f"{API}/query_range", params=params, headers=AUTH)
    assert again.json() == first.json() and again.headers["X-Cache-Status"] == "HIT"
    assert sim.stats.requests == calls  # no upstream call at all
    # the same data under another expression: from the rollups, still no upstream call
    other = await api.get(
        f"{API}/query_range",
        params={**params, "query": f"min_over_time({AHU_TEMPS}[1h])"},
        headers=AUTH,
    )
    assert other.status_code == 200 and other.headers["X-Cache-Source"] == "ROLLUP"
    assert sim.stats.requests == calls


async def test_catalog_endpoints(api: httpx.AsyncClient, sim: Simulator) -> None:
    names = await prom(api, "labels")
    assert names["data"] == ["__name__", "kind", "point", "site", "tags", "unit"]
    assert (await prom(api, "label/__name__/values"))["data"] == ["ace"]
    sites = await prom(api, "label/site/values")
    assert sites["data"] == sorted(s.name for s in sim.sites)
    points = await prom(api, "label/point/values", **{"match[]": '{site="elm_school"}'})
    assert points["data"] == sorted(p.name for p in sim.site_by_name["elm_school"].collecting)
    series = await prom(api, "series", **{"match[]": AHU_TEMPS})
    assert [s["point"] for s in series["data"]] == ahu_temps(sim)
    meta = await prom(api, "metadata")
    assert meta["data"]["ace"][0]["type"] == "gauge"
    build = await prom(api, "status/buildinfo")
    assert build["data"]["version"].count(".") == 2


@pytest.mark.parametrize(
    ("path", "params", "status", "needle"),
    [
        ("query", {"query": "ace{"}, 400, "cannot parse"),
        ("query", {"query": ""}, 400, "required"),
        ("query", {"query": "rate(ace[5m])"}, 400, "rate() is not supported"),
        ("query", {"query": "topk(3, ace)"}, 400, "topk is not supported"),
        ("query", {"query": "max_over_time(ace[1h:5m])"}, 400, "subquery is not supported"),
        ("query", {"query": "ace and ace"}, 400, "operator and is not supported"),
        ("query", {"query": "ace * on (site) group_left ace"}, 400, "group_left"),
        ("query", {"query": "ace", "time": "yesterday"}, 400, 'parameter "time"'),
        ("query_range", {"query": "ace", "start": "1", "end": "2"}, 400, '"step"'),
        (
            "query_range",
            {"query": "ace", "start": "1", "end": "2", "step": "0"},
            400,
            "zero or negative",
        ),
        ("query_range", {"query": "ace", "start": "1", "end": "2", "step": "-1s"}, 400, "step"),
        (
            "query_range",
            {"query": "ace", "start": "5", "end": "2", "step": "1"},
            400,
            "before start",
        ),
        ("query_range", {"query": "ace", "start": "0", "end": "11000", "step": "1"}, 400, "11,000"),
        (
            "query_range",
            {"query": "ace[5m]", "start": "0", "end": "60", "step": "15"},
            400,
            "range vector",
        ),
        (
            "query_range",
            {"query": "ace", "start": "nan", "end": "60", "step": "15"},
            400,
            '"start"',
        ),
        ("query", {"query": "ace"}, 422, "at most"),
        ("query", {"query": 'ace{site="elm_school"}', "time": "1e30"}, 400, '"time"'),
        ("series", {}, 400, "match[]"),
        ("series", {"match[]": "sum(ace)"}, 400, "not a series selector"),
        ("label/bad-name/values", {}, 400, "invalid label name"),
        ("labels", {"start": "tomorrow"}, 400, '"start"'),
        ("nothing/here", {}, 404, "no Prometheus API path"),
    ],
)
async def test_bad_requests_get_prometheus_errors(
    api: httpx.AsyncClient, path: str, params: dict[str, str], status: int, needle: str
) -> None:
    body = await error(api, path, status, **params)
    assert needle in body["error"]
    assert body["errorType"] == {400: "bad_data", 422: "execution", 404: "not_found"}[status]


async def test_raw_reads_beyond_the_inline_limit_are_refused(
    sim: Simulator, settings: Settings
) -> None:
    import dataclasses

    small = dataclasses.replace(settings, max_inline_samples=1000)
    async with api_client(small, sim, clock_ms=Clock(NOW)) as api:
        body = await error(
            api,
            "query_range",
            422,
            query=AHU_TEMPS,
            start=OCT1 / 1000 + 7,
            end=(OCT1 + 3 * DAY_MS) / 1000,
            step=60,
        )
        assert "hourly rollups" in body["error"]


async def test_a_token_sees_only_its_sites(settings: Settings) -> None:
    sim = create_simulator(seed=5, tokens={"elm": ["elm_school"]}, now_ms=lambda: NOW)
    async with api_client(settings, sim, clock_ms=Clock(NOW)) as api:
        headers = {"Authorization": "Bearer elm"}
        r = await api.get(f"{API}/label/site/values", headers=headers)
        assert r.json()["data"] == ["elm_school"]
        r = await api.get(
            f"{API}/query", params={"query": 'count(ace{site="demo_campus"})'}, headers=headers
        )
        assert r.status_code == 200 and r.json()["data"]["result"] == []
        r = await api.get(
            f"{API}/query", params={"query": "1"}, headers={"Authorization": "Bearer nope"}
        )
        assert r.status_code == 200  # a constant reads nothing
        r = await api.get(f"{API}/labels", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401 and r.json()["status"] == "error"
        r = await api.get(f"{API}/labels")
        assert r.status_code == 401 and "token" in r.json()["error"]
        basic = {
            "Authorization": "Basic " + __import__("base64").b64encode(b"grafana:elm").decode()
        }
        r = await api.get(f"{API}/label/site/values", headers=basic)
        assert r.json()["data"] == ["elm_school"]


async def test_a_post_body_must_be_a_form(api: httpx.AsyncClient) -> None:
    r = await api.post(
        f"{API}/query",
        content=b'{"query": "1"}',
        headers={**AUTH, "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["errorType"] == "bad_data"
    assert "x-www-form-urlencoded" in r.json()["error"]


async def test_large_answers_compress_for_grafana(api: httpx.AsyncClient) -> None:
    params = {
        "query": 'avg_over_time(ace{site="elm_school"}[1h])',
        "start": OCT1 / 1000 + 3600,
        "end": (OCT1 + 16 * DAY_MS) / 1000,
        "step": 3600,
    }
    plain = await api.get(
        f"{API}/query_range", params=params, headers={**AUTH, "Accept-Encoding": "identity"}
    )
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    assert len(plain.content) > 1 << 20  # large enough for the fast gzip path
    packed = await api.get(
        f"{API}/query_range", params=params, headers={**AUTH, "Accept-Encoding": "gzip"}
    )
    assert packed.headers["content-encoding"] == "gzip"
    assert int(packed.headers["content-length"]) < len(plain.content) / 3
    assert packed.json() == plain.json()  # httpx undoes the gzip


async def test_a_cold_range_too_large_to_fetch_inline_is_fetched_by_a_job(
    sim: Simulator, settings: Settings
) -> None:
    import asyncio
    import dataclasses

    small = dataclasses.replace(settings, inline_fetch_samples=100)
    query = {
        "query": f"avg_over_time({AHU_TEMPS}[1h])",
        "start": OCT1 / 1000 + 3600,
        "end": (OCT1 + 3 * DAY_MS) / 1000,
        "step": 3600,
    }
    async with api_client(small, sim, clock_ms=Clock(NOW)) as api:
        body = await error(api, "query_range", 503, **query)
        assert body["errorType"] == "unavailable" and "/api/jobs/" in body["error"]
        job_url = "/api/jobs/" + body["error"].split("/api/jobs/")[1].split(")")[0]
        for _ in range(200):  # the inline worker runs the job
            job = (await api.get(job_url, headers=AUTH)).json()
            if job["status"] == "completed":
                break
            await asyncio.sleep(0.05)
        assert job["status"] == "completed"
        answer = await prom(api, "query_range", **query)
        assert len(answer["data"]["result"]) == len(ahu_temps(sim))


@pytest.mark.parametrize("func", ["avg", "min", "max", "sum", "count", "last", "stddev"])
@pytest.mark.parametrize("range_s", [3 * 3600, 86_400 + 17 * 60, 20 * 86_400])
async def test_instant_windows_at_any_time_read_rollups_and_edges(
    sim: Simulator, settings: Settings, func: str, range_s: int
) -> None:
    import dataclasses

    # too small a raw budget for the whole window: only whole buckets plus edges fit
    small = dataclasses.replace(settings, max_inline_samples=400)
    t = OCT1 + 25 * DAY_MS + 37 * 60_000 + 12_345  # on no hour or minute
    async with api_client(small, sim, clock_ms=Clock(NOW)) as api:
        body = await prom(
            api, "query", query=f"{func}_over_time({AHU_TEMPS}[{range_s}s])", time=t / 1000
        )
    result = body["data"]["result"]
    assert sorted(s["metric"]["point"] for s in result) == ahu_temps(sim)
    for s in result:
        rows = await simtruth.samples(sim, s["metric"]["point"], t - range_s * 1000, t + 1)
        expected = simtruth.over_time(func, simtruth.window(rows, t, range_s * 1000))
        assert expected is not None and s["value"][0] == t / 1000
        assert float(s["value"][1]) == pytest.approx(expected, rel=1e-9)


async def test_two_apps_in_one_process_never_see_each_others_catalog(
    settings: Settings, tmp_path: Any
) -> None:
    """Selectors resolve against the app's own catalog: two gateways in one process (a
    test run, an embedding) on sites of the same name but other points, refreshed at the
    same instant, each select their own points (the catalogs were once shared)."""
    import dataclasses

    async def series_names(seed: int, folder: str) -> tuple[set[str], set[str]]:
        sim = create_simulator(seed=seed, now_ms=lambda: NOW)
        own = dataclasses.replace(
            settings,
            database_url=f"sqlite:///{tmp_path}/{folder}.db",
            objects_url=f"file://{tmp_path}/{folder}",
        )
        async with api_client(own, sim, clock_ms=Clock(NOW)) as api:
            body = await prom(api, "series", **{"match[]": 'ace{site="elm_school"}'})
        got = {s["point"] for s in body["data"]}
        return got, {p.name for p in sim.site_by_name["elm_school"].collecting}

    first, first_truth = await series_names(1, "a")
    second, second_truth = await series_names(11, "b")
    assert first_truth != second_truth  # the two sites differ
    assert first == first_truth
    assert second == second_truth
