"""A long cold chart answered part by part: the query job keeps each finished slice's part
of the answer (newest first), and the parts joined are the job's answer, which is the
chart API's answer, whose M4 points are ``Simulator.truth``'s first, last, min and max per
bucket. Hostile: an outage across a part boundary, upstream failing mid-way, a revoked
token, cancel, junk part numbers."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import tempfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.asgi import api_client
from tsgate.core.model import MS_PER_DAY, MS_PER_MINUTE
from tsgate.jobs import handlers
from tsgate.series.chart import ChartQuery, edge_at_or_after, part_grid
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.upstream.visibility import Outage
from tsgate.wire.ace import format_time, parse_time

pytestmark = pytest.mark.anyio
NOW = parse_time("now", "2025-11-15T12:00:00")
START = NOW - 100 * MS_PER_DAY - 37 * MS_PER_MINUTE  # unaligned: a clipped first bucket
SITE = "elm_school"
AUTH = {"Authorization": "Bearer good"}
# 20-minute outages across the October/November part boundary (10 minutes each side) of
# the charts of 400 points (2 d buckets) and of 4400 (3 h buckets, and 1 d)
MONTH = parse_time("b", "2025-11-01T00:00:00")
BOUNDARIES = {
    "400": edge_at_or_after(
        part_grid(ChartQuery(SITE, (), START, NOW, max_points=400))[1], MONTH, NOW
    ),
    "4400": MONTH,
}
TIMESERIES_ROUTES = ("paginated", "site_timeseries", "get_timeseries", "point_timeseries")
TERMINAL = {"completed", "failed", "dead", "cancelled"}


def simulator() -> Simulator:
    sim = create_simulator(seed=3, tokens={"good": [SITE]}, now_ms=lambda: NOW)
    names = tuple(p.name for p in sim.site_by_name[SITE].collecting[:3])
    sim.faults.outages = [
        Outage(b - 10 * MS_PER_MINUTE, b + 10 * MS_PER_MINUTE, None, site=SITE, points=names)
        for b in BOUNDARIES.values()
    ]
    return sim


def names_of(sim: Simulator, kind: str | None = None) -> list[str]:
    points = sim.site_by_name[SITE].collecting
    if kind is None:
        return [p.name for p in points[:3]]
    return [p.name for p in points if p.kind == kind][:2]


@pytest.fixture
def conf(settings: Settings) -> Settings:
    return dataclasses.replace(settings, job_poll_s=0.02, inline_fetch_samples=1_000)


def params(names: list[str], **extra: str) -> dict[str, str]:
    return {
        "site": SITE,
        "points": ",".join(names),
        "start": format_time(START),
        "end": format_time(NOW),
        "layout": "columnar",
    } | extra


async def follow(api: httpx.AsyncClient, url: str) -> tuple[dict[str, Any], list[int]]:
    """The job's end, and the part counts it showed on the way."""
    counts = []
    for _ in range(3000):
        status: dict[str, Any] = (await api.get(url, headers=AUTH)).json()
        counts.append(status.get("parts", 0))
        if status["status"] in TERMINAL:
            return status, counts
        await asyncio.sleep(0.01)
    raise AssertionError(f"the job did not end: {status}")


async def parts_of(api: httpx.AsyncClient, url: str, count: int) -> list[dict[str, Any]]:
    got = [await api.get(f"{url}/parts/{i}", headers=AUTH) for i in range(count)]
    assert all(r.status_code == 200 for r in got), [r.text for r in got]
    return [r.json() for r in got]


def joined(parts: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, list[list[int]]]]:
    """The parts (newest first) joined in time order: series concatenated, gaps united."""
    oldest_first = parts[::-1]
    series = []
    for i, s in enumerate(oldest_first[0]["series"]):
        pieces = [p["series"][i] for p in oldest_first]
        assert all(
            p["name"] == s["name"] and p.get("offsetMs") == s.get("offsetMs") for p in pieces
        )
        t = [x for p in pieces for x in p["t"]]
        v = [x for p in pieces for x in p["v"]]
        series.append({k: s[k] for k in s if k not in ("t", "v")} | {"t": t, "v": v})
    gaps: dict[str, list[list[int]]] = {}
    for p in oldest_first:
        for name, spans in p["metadata"]["gaps"].items():
            gaps.setdefault(name, []).extend(spans)
    return series, {name: united(spans) for name, spans in gaps.items()}


def _diff(a: list[dict[str, Any]], b: list[dict[str, Any]]) -> str:
    for x, y in zip(a, b, strict=True):
        for key in sorted(set(x) | set(y)):
            if x.get(key) != y.get(key):
                pairs = zip(x.get(key) or [], y.get(key) or [], strict=False)
                at = next((i for i, (p, q) in enumerate(pairs) if p != q), None)
                lo = max(0, (at or 0) - 2)
                near = (x.get(key) or [])[lo : lo + 5], (y.get(key) or [])[lo : lo + 5]
                return f"{x['name'][-30:]} {key} at {at}: {near[0]} / {near[1]}"
    return "same"


def united(spans: list[list[int]]) -> list[list[int]]:
    out: list[list[int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return out


async def progressive_answer(
    api: httpx.AsyncClient, query: dict[str, str]
) -> tuple[dict[str, Any], list[dict[str, Any]], list[int], str]:
    cold = await api.get("/api/timeseries", params=query, headers=AUTH)
    assert cold.status_code == 202, cold.text
    url = cold.headers["location"]
    status, counts = await follow(api, url)
    assert status["status"] == "completed", status
    result = await api.get(f"{url}/result", headers=AUTH)
    assert result.status_code == 200
    # a chart too narrow for M4 parts (or not M4 at all) has none
    return result.json(), await parts_of(api, url, status.get("parts", 0)), counts, url


def check_tiling(parts: list[dict[str, Any]], start: int, end: int) -> None:
    spans = [
        (parse_time("s", p["metadata"]["startTime"]), parse_time("e", p["metadata"]["endTime"]))
        for p in parts
    ]
    assert spans[0][1] == end and spans[-1][0] == start
    assert all(newer[0] == older[1] for newer, older in itertools.pairwise(spans))


def check_m4_truth(sim: Simulator, body: dict[str, Any], name: str) -> None:
    """Every bucket's points are its true first, last, min and max samples."""
    width = int(body["metadata"]["interval"].removeprefix("m4:").removesuffix("ms"))
    t_us, v = sim.truth(name, START, NOW)
    keep = ~np.isnan(v)
    t, v = t_us[keep] // 1000, v[keep]
    s = next(x for x in body["series"] if x["name"] == name and "offsetMs" not in x)
    got_t, got_v = np.array(s["t"], dtype=np.int64), np.array(s["v"])
    bucket, got_bucket = t // width, got_t // width
    assert np.array_equal(np.unique(bucket), np.unique(got_bucket))
    for b in np.unique(bucket):
        tv, vv = t[bucket == b], v[bucket == b]
        mine = got_bucket == b
        want = {(int(tv[0]), float(vv[0])), (int(tv[-1]), float(vv[-1]))}
        want |= {
            (int(tv[np.argmin(vv)]), float(vv.min())),
            (int(tv[np.argmax(vv)]), float(vv.max())),
        }
        assert set(zip(got_t[mine].tolist(), got_v[mine].tolist(), strict=True)) == want


@pytest.mark.parametrize("extra", [{"max_points": "400"}, {"max_points": "4400", "compare": "-7d"}])
async def test_parts_join_to_the_answer_which_is_the_truth(
    conf: Settings, extra: dict[str, str]
) -> None:
    sim = simulator()
    names = names_of(sim)
    async with api_client(conf, sim, clock_ms=lambda: NOW) as api:
        result, parts, counts, _ = await progressive_answer(api, params(names, **extra))
        warm = await api.get("/api/timeseries", params=params(names, **extra), headers=AUTH)
    assert warm.status_code == 200
    one = warm.json()
    # the newest week, the rest of November, then October, September and August
    assert len(parts) == 5
    assert counts == sorted(counts) and counts[-1] == 5
    check_tiling(parts, START, NOW)
    series, gaps = joined(parts)
    assert series == result["series"] == one["series"]
    assert gaps == result["metadata"]["gaps"] == one["metadata"]["gaps"]
    # the outage across the part boundary is one gap, as in the one-request answer
    boundary = BOUNDARIES[extra["max_points"]]
    assert all(any(a < boundary < b for a, b in gaps[n]) for n in names)
    for name in names:
        check_m4_truth(sim, one, name)


@pytest.mark.parametrize("agg", ["avg", "max"])
async def test_calendar_days_in_the_sites_zone_join_too(conf: Settings, agg: str) -> None:
    sim = simulator()
    names = names_of(sim)
    query = params(names, interval="1d", tz="site", agg=agg)
    async with api_client(conf, sim, clock_ms=lambda: NOW) as api:
        result, parts, _, _ = await progressive_answer(api, query)
        one = (await api.get("/api/timeseries", params=query, headers=AUTH)).json()
    assert len(parts) == 5
    series, gaps = joined(parts)
    shape = [(p["metadata"]["startTime"], len(p["series"][0]["t"])) for p in parts]
    assert series == result["series"], (_diff(series, result["series"]), shape)
    assert result["series"] == one["series"], _diff(result["series"], one["series"])
    assert gaps == one["metadata"]["gaps"]
    # every part begins at a local midnight of the site (or the range's start)
    zone = one["metadata"]["timeZone"]
    assert zone != "UTC"
    firsts = [p["series"][0]["t"][0] for p in parts[:-1] if p["series"][0]["t"]]
    assert firsts and all(
        t == parse_time("s", p["metadata"]["startTime"])
        for t, p in zip(firsts, parts, strict=False)
    )


async def test_a_time_weighted_aggregate_is_answered_whole(conf: Settings) -> None:
    """``duty`` carries each value over from the bucket before: no parts, one answer."""
    sim = simulator()
    names = names_of(sim, "fan_status")
    query = params(names, interval="1d", tz="site", agg="duty")
    async with api_client(conf, sim, clock_ms=lambda: NOW) as api:
        cold = await api.get("/api/timeseries", params=query, headers=AUTH)
        assert cold.status_code == 202
        status, _ = await follow(api, cold.headers["location"])
        missing = await api.get(f"{cold.headers['location']}/parts/0", headers=AUTH)
        result = (await api.get(f"{cold.headers['location']}/result", headers=AUTH)).json()
        one = (await api.get("/api/timeseries", params=query, headers=AUTH)).json()
    assert status["status"] == "completed" and "parts" not in status
    assert missing.status_code == 404
    assert result["series"] == one["series"]


async def test_upstream_failing_mid_way_keeps_the_parts_already_made(
    conf: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handlers, "SLICES_AHEAD", 0)  # one slice at a time: reads counted
    names = names_of(simulator())
    query = params(names, max_points="400")
    # how many upstream reads one slice takes, measured on a store of its own
    apart = dataclasses.replace(
        conf, database_url=f"sqlite:///{tmp_path}/r.db", objects_url=f"file://{tmp_path}/r"
    )
    counted = simulator()
    async with api_client(apart, counted, clock_ms=lambda: NOW) as reference:
        whole, parts, _, _ = await progressive_answer(reference, query)
    per_slice = sum(counted.stats.by_route[r] for r in TIMESERIES_ROUTES) // len(parts)
    # the first (newest) slice's reads succeed, everything after answers 500
    sim = simulator()
    async with api_client(conf, sim, clock_ms=lambda: NOW) as api:
        sim.faults.fail_after = per_slice
        cold = await api.get("/api/timeseries", params=query, headers=AUTH)
        url = cold.headers["location"]
        status, _ = await follow(api, url)
        ready = status.get("parts", 0)
        parts = await parts_of(api, url, ready)
        beyond = await api.get(f"{url}/parts/{ready}", headers=AUTH)
        result = await api.get(f"{url}/result", headers=AUTH)
    assert status["status"] in {"failed", "dead"}, status
    assert beyond.status_code == 404 and result.status_code == 404
    assert ready == 1, status  # the newest month, exactly as in the whole answer
    series, _ = joined(parts)
    for got, want in zip(series, whole["series"], strict=True):
        n = len(got["t"])
        assert n and got["t"] == want["t"][-n:] and got["v"] == want["v"][-n:]


async def test_revoked_token_junk_numbers_other_callers_and_cancel(conf: Settings) -> None:
    sim = simulator()
    now = [NOW]
    names = names_of(sim)
    query = params(names, max_points="400")
    async with api_client(
        dataclasses.replace(conf, access_ttl_s=300), sim, clock_ms=lambda: now[0]
    ) as api:
        _, parts, _, url = await progressive_answer(api, query)
        assert parts
        junk = [await api.get(f"{url}/parts/{x}", headers=AUTH) for x in ("-1", "x", "9" * 9, "99")]
        other = await api.get(f"{url}/parts/0", headers={"Authorization": "Bearer other"})
        assert sim.tokens is not None
        del sim.tokens["good"]  # upstream revokes the token
        now[0] += 301_000  # TSGATE_ACCESS_TTL_S passes
        revoked = await api.get(f"{url}/parts/0", headers=AUTH)
    assert [r.status_code for r in junk] == [400, 400, 400, 404]
    assert all(r.headers["content-type"] == "application/problem+json" for r in junk)
    assert other.status_code in (401, 404)
    assert revoked.status_code == 401


async def test_a_cancelled_job_makes_no_more_parts(conf: Settings) -> None:
    sim = simulator()
    sim.faults.latency_s = 0.05
    names = names_of(sim)
    async with api_client(conf, sim, clock_ms=lambda: NOW) as api:
        cold = await api.get(
            "/api/timeseries", params=params(names, max_points="400"), headers=AUTH
        )
        url = cold.headers["location"]
        await api.delete(url, headers=AUTH)
        status, _ = await follow(api, url)
        after = await api.get(url, headers=AUTH)
    assert status["status"] == "cancelled"
    assert after.json()["parts"] == status["parts"] < 5


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    days=st.integers(35, 130),
    offset_min=st.integers(0, 24 * 60 - 1),
    max_points=st.sampled_from(["40", "400", "1000", "4400"]),
    compare=st.sampled_from([None, "-7d", "-24h"]),
)
@example(days=35, offset_min=0, max_points="4400", compare=None)  # raw: no parts
@example(days=35, offset_min=0, max_points="400", compare="-7d")
async def test_any_range_and_width_joins_to_the_one_request_answer(
    conf: Settings, days: int, offset_min: int, max_points: str, compare: str | None
) -> None:
    start = NOW - days * MS_PER_DAY - offset_min * MS_PER_MINUTE
    extra = {"max_points": max_points} | ({"compare": compare} if compare else {})
    with tempfile.TemporaryDirectory() as tmp:
        fresh = dataclasses.replace(
            conf, database_url=f"sqlite:///{tmp}/t.db", objects_url=f"file://{tmp}/o"
        )
        sim = simulator()
        query = params(names_of(sim)[:2], **extra) | {"start": format_time(start)}
        async with api_client(fresh, sim, clock_ms=lambda: NOW) as api:
            result, parts, _, _ = await progressive_answer(api, query)
            one = (await api.get("/api/timeseries", params=query, headers=AUTH)).json()
    assert result["series"] == one["series"]
    assert result["metadata"]["gaps"] == one["metadata"]["gaps"]
    if not parts:  # drawn from raw samples (MinMaxLTTB): answered once, at the end
        assert result["metadata"]["interval"] == "raw"
        return
    check_tiling(parts, start, NOW)
    series, gaps = joined(parts)
    assert series == result["series"]
    assert gaps == result["metadata"]["gaps"]


async def test_the_status_counts_samples_and_parts_as_they_are(conf: Settings) -> None:
    """``samplesDone``/``samplesTotal`` are samples (done, expected; exact at the end: the
    simulator's samples of the range and of its comparison's), ``partsDone``/``partsTotal``
    parts, as the job runs and once it is done."""
    sim = simulator()
    sim.faults.latency_s = 0.02  # slow enough to see it running
    names = names_of(sim)
    query = params(names, max_points="400", compare="-7d")
    seen: list[dict[str, Any]] = []
    async with api_client(conf, sim, clock_ms=lambda: NOW) as api:
        cold = await api.get("/api/timeseries", params=query, headers=AUTH)
        url = cold.headers["location"]
        for _ in range(3000):
            seen.append((await api.get(url, headers=AUTH)).json())
            if seen[-1]["status"] in TERMINAL:
                break
            await asyncio.sleep(0.005)
        result = (await api.get(f"{url}/result", headers=AUTH)).json()
        parts = await parts_of(api, url, seen[-1]["partsDone"])
    end = seen[-1]
    assert end["status"] == "completed" and end["progress"] == 100
    assert end["partsDone"] == end["partsTotal"] == end["parts"] == len(parts) == 5
    # exact at the end: every sample behind the answer, its comparison's included
    meta = result["metadata"]
    behind = meta["totalSamples"] + meta["compare"]["totalSamples"]
    week = 7 * MS_PER_DAY
    truth = sum(
        len(sim.truth(n, START, NOW)[0]) + len(sim.truth(n, START - week, NOW - week)[0])
        for n in names
    )
    assert end["samplesDone"] == end["samplesTotal"] == behind == truth
    # claimed, the job estimates what it will read before it reads any
    running = [s for s in seen if s["status"] == "running" and s["samplesTotal"] is not None]
    assert running, "the job was never seen running"
    assert all(s["samplesDone"] == 0 for s in seen if s["samplesTotal"] is None)
    assert all(s["partsTotal"] == 5 for s in seen)
    done = [s["samplesDone"] for s in seen]
    assert done == sorted(done) and [s["partsDone"] for s in seen] == sorted(
        s["partsDone"] for s in seen
    )
    for s in running:
        assert s["samplesDone"] <= s["samplesTotal"]
        assert s["partsDone"] == round(s["progress"] * 5 / 100)
        # the parts ready hold exactly the samples done
        held = sum(
            p["metadata"]["totalSamples"] + p["metadata"]["compare"]["totalSamples"]
            for p in parts[: s["partsDone"]]
        )
        assert s["samplesDone"] == held
    # expected from the points' 5-minute reporting before any was read: near the truth
    estimates = {s["samplesTotal"] for s in running}
    assert all(0.8 * truth <= e <= 1.2 * truth for e in estimates), (estimates, truth)
