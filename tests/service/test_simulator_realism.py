"""The simulator's realism: visibility delays, outages with a late backlog, points added
later, and a truth that every read path agrees with however a range is split."""

from __future__ import annotations

import itertools
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.asgi import sim_client
from tests.clock import Clock
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.upstream.visibility import LatePoint, Outage
from tsgate.wire.ace import format_time, parse_time, parse_times

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": "Bearer t"}
DAY_MS = 86_400_000
OCT1 = parse_time("t", "2025-10-01T00:00:00")


def client(sim: Simulator) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=sim), base_url="http://sim/api", headers=AUTH
    )


def _window(start_ms: int, end_ms: int) -> dict[str, str]:
    return {"start_time": format_time(start_ms), "end_time": format_time(end_ms)}


async def point_rows(c: httpx.AsyncClient, name: str, start_ms: int, end_ms: int) -> list[str]:
    """The µs time strings of one point's per-point read (404 "no data" is empty)."""
    r = await c.get(f"/points/{quote(name, safe='')}/timeseries", params=_window(start_ms, end_ms))
    if r.status_code == 404:
        assert r.json() == {"message": "No data for time period"}
        return []
    assert r.status_code == 200, r.text
    return [row["time"] for row in r.json()["point_samples"]]


async def site_rows(
    c: httpx.AsyncClient, site: str, start_ms: int, end_ms: int, page_size: int = 50000
) -> list[dict[str, str]]:
    query = {**_window(start_ms, end_ms), "page_size": str(page_size), "raw_data": "true"}
    rows: list[dict[str, str]] = []
    while True:
        r = await c.get(f"/sites/{site}/timeseries/paginated", params=query)
        if r.status_code == 404 and "cursor" not in query:
            return []
        assert r.status_code == 200, r.text
        body = r.json()
        rows.extend(body["point_samples"])
        if not body["has_more"]:
            return rows
        query["cursor"] = body["next_cursor"]


def truth_strings(sim: Simulator, name: str, start_ms: int, end_ms: int) -> list[str]:
    t_us, _ = sim.truth(name, start_ms, end_ms)
    return [str(s) for s in np.datetime_as_string(t_us.astype("datetime64[us]"), unit="us")]


@settings(
    max_examples=12, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    cuts=st.lists(st.integers(min_value=1, max_value=DAY_MS - 1), min_size=1, max_size=5),
    page_size=st.sampled_from([10, 50, 100, 1000]),
)
async def test_a_window_split_anywhere_gives_the_same_samples_as_the_whole(
    cuts: list[int], page_size: int
) -> None:
    sim = create_simulator(seed=3, now_ms=lambda: OCT1 + 30 * DAY_MS)
    name = sim.sites[2].collecting[5].name
    start, end = OCT1 + 7 * 60_000 + 321, OCT1 + DAY_MS + 45_000  # unaligned ends
    bounds = [start, *sorted({start + c for c in cuts if start + c < end}), end]
    async with client(sim) as c:
        whole = await point_rows(c, name, start, end)
        parts: list[str] = []
        for a, b in itertools.pairwise(bounds):
            parts.extend(await point_rows(c, name, a, b))
        window = (bounds[1] - 1_800_000, bounds[1] + 1_800_000)  # a cut inside the stream
        site = [r["time"] for r in await site_rows(c, "elm_school", *window, page_size=page_size)]
        site_whole = await site_rows(c, "elm_school", *window)
    assert parts == whole == truth_strings(sim, name, start, end)
    assert len(whole) > 270
    assert site == [r["time"] for r in site_whole]
    mine = [r["time"] for r in site_whole if r["name"] == name]
    assert mine == truth_strings(sim, name, *window)


async def test_a_window_ending_inside_a_slot_after_its_sample_keeps_that_sample() -> None:
    # the sweep of 00:35 lies 30–50 s into its slot: a window ending at 00:35:55 holds it
    sim = create_simulator(seed=1, now_ms=lambda: OCT1 + 30 * DAY_MS)
    name = sim.sites[2].collecting[0].name
    cut = OCT1 + 35 * 60_000 + 55_000
    async with client(sim) as c:
        before = await point_rows(c, name, OCT1, cut)
        after = await point_rows(c, name, cut, OCT1 + 7_200_000)
    assert before[-1].startswith("2025-10-01T00:35:")
    assert before + after == truth_strings(sim, name, OCT1, OCT1 + 7_200_000)


async def test_the_live_edge_serves_the_current_slot_once_its_sample_is_past() -> None:
    clock = Clock(OCT1 + 35 * 60_000 + 55_000)
    sim = create_simulator(seed=1, now_ms=clock)
    name = sim.sites[2].collecting[0].name
    async with client(sim) as c:
        rows = await point_rows(c, name, OCT1, OCT1 + DAY_MS)
    assert rows[-1].startswith("2025-10-01T00:35:") and len(rows) == 8


async def test_a_visibility_delay_holds_each_sample_back_on_every_path() -> None:
    clock = Clock(OCT1 + 3_600_000)
    sim = create_simulator(seed=2, now_ms=clock)
    sim.faults.visibility_delay_s = 120
    sim.faults.visibility_jitter_s = 240
    name = sim.sites[2].collecting[3].name
    t_all, _ = create_simulator(seed=2).truth(name, OCT1, OCT1 + DAY_MS, OCT1 + 2 * DAY_MS)
    async with client(sim) as c:
        for step_ms in range(0, 1_800_000, 37_000):
            clock.ms = OCT1 + 3_600_000 + step_ms
            got = await point_rows(c, name, OCT1, OCT1 + DAY_MS)
            assert got == truth_strings(sim, name, OCT1, OCT1 + DAY_MS)
            stream = await site_rows(c, "elm_school", OCT1, clock.ms + 1)
            assert [r["time"] for r in stream if r["name"] == name] == got
            seen = parse_times(got)
            # everything older than the longest delay is there; nothing newer than the shortest
            old = t_all[t_all // 1000 <= clock.ms - 360_000] // 1000
            assert set(old.tolist()) <= set(seen.tolist())
            assert seen.size == 0 or int(seen[-1]) <= clock.ms - 120_000


async def test_an_outage_is_invisible_until_its_backlog_then_all_of_it_appears() -> None:
    clock = Clock(OCT1 + 10 * DAY_MS)
    sim = create_simulator(seed=4, now_ms=clock)
    site = sim.site_by_name["elm_school"]
    a, b, backlog = OCT1 + DAY_MS + 3_600_000, OCT1 + 4 * DAY_MS, OCT1 + 4 * DAY_MS + 6 * 3_600_000
    async with client(sim) as c:
        r = await c.post(
            "http://sim/_sim/faults",
            json={
                "outages": [
                    {"site": "elm_school", "start": format_time(a), "end": format_time(b),
                     "backlog": format_time(backlog)}
                ]
            },
        )  # fmt: skip
        assert r.status_code == 200, r.text
        assert r.json()["outages"][0]["backlog_ms"] == backlog
        clock.ms = b + 3_600_000  # the gateway is back, its backlog not yet uploaded
        rows = await site_rows(c, "elm_school", OCT1, OCT1 + 5 * DAY_MS)
        times = parse_times([r["time"] for r in rows])
        assert times.size and not np.any((times >= a) & (times < b))
        assert np.any(times < a) and np.any((times >= b) & (times <= clock.ms))
        clock.ms = backlog
        after = await site_rows(c, "elm_school", OCT1, OCT1 + 5 * DAY_MS)
    for point in site.collecting[:20]:
        mine = [r["time"] for r in after if r["name"] == point.name]
        assert mine == truth_strings(sim, point.name, OCT1, OCT1 + 5 * DAY_MS)
    span = parse_times([r["time"] for r in after])
    assert np.count_nonzero((span >= a) & (span < b)) > 0.9 * len(site.collecting) * 3 * 276


async def test_an_outage_of_some_points_and_one_never_uploaded() -> None:
    clock = Clock(OCT1 + 3 * DAY_MS)
    sim = create_simulator(seed=4, now_ms=clock)
    one, two, other = (p.name for p in sim.sites[2].collecting[:3])
    sim.faults.outages = [
        Outage(OCT1, OCT1 + DAY_MS, backlog_ms=OCT1 + 2 * DAY_MS, points=(one,)),
        Outage(OCT1, OCT1 + DAY_MS, backlog_ms=None, points=(two,)),
    ]
    async with client(sim) as c:
        clock.ms = OCT1 + 2 * DAY_MS - 1
        assert await point_rows(c, one, OCT1, OCT1 + DAY_MS) == []
        assert len(await point_rows(c, other, OCT1, OCT1 + DAY_MS)) > 270
        clock.ms = OCT1 + 2 * DAY_MS
        assert len(await point_rows(c, one, OCT1, OCT1 + DAY_MS)) > 270
        clock.ms = OCT1 + 300 * DAY_MS
        assert await point_rows(c, two, OCT1, OCT1 + DAY_MS) == []
        assert len(await point_rows(c, two, OCT1 + DAY_MS, OCT1 + 2 * DAY_MS)) > 270


async def test_a_point_added_later_exists_only_from_then_with_its_uploaded_history() -> None:
    clock = Clock(OCT1 + 2 * DAY_MS)
    sim = create_simulator(seed=4, now_ms=clock)
    name = sim.sites[2].collecting[7].name
    fresh = sim.sites[2].collecting[8].name
    added = OCT1 + 5 * DAY_MS
    sim.faults.late_points = [
        LatePoint(name, added_ms=added, since_ms=OCT1),  # uploads its history when added
        LatePoint(fresh, added_ms=added),  # starts reporting when added
    ]

    async def listed(c: httpx.AsyncClient) -> set[str]:
        r = await c.get("/sites/elm_school/configured_points", params={"per_page": 5000})
        return {p["name"] for p in r.json()["items"]}

    async with client(sim) as c:
        assert name not in await listed(c) and fresh not in await listed(c)
        assert await point_rows(c, name, OCT1, OCT1 + DAY_MS) == []
        assert name not in {r["name"] for r in await site_rows(c, "elm_school", OCT1, clock.ms)}
        clock.ms = added + DAY_MS
        assert {name, fresh} <= await listed(c)
        history = await point_rows(c, name, OCT1, OCT1 + DAY_MS)
        assert len(history) > 270 and history == truth_strings(sim, name, OCT1, OCT1 + DAY_MS)
        assert await point_rows(c, fresh, OCT1, added) == []
        assert len(await point_rows(c, fresh, added, added + DAY_MS)) > 270


async def test_a_point_not_collecting_has_no_samples_on_any_path() -> None:
    sim = create_simulator(seed=1, now_ms=lambda: OCT1 + 30 * DAY_MS)
    idle = next(p for p in sim.sites[2].points if not p.collect)
    async with client(sim) as c:
        assert await point_rows(c, idle.name, OCT1, OCT1 + DAY_MS) == []
        rows = await site_rows(c, "elm_school", OCT1, OCT1 + 3_600_000)
    assert rows and idle.name not in {r["name"] for r in rows}
    assert sim.truth(idle.name, OCT1, OCT1 + DAY_MS)[0].size == 0


@pytest.mark.parametrize(
    "body",
    [
        {"outages": [{"start": "2025-10-01", "backlog": None}]},
        {"outages": [{"start": "yesterday", "end": "2025-10-02"}]},
        {"late_points": [{"added": 5}]},
        {"no_such_switch": 1},
        {"visibility_delay_s": "soon"},
        {"outages": "all of them"},
    ],
)
async def test_bad_fault_switches_are_a_400(body: dict[str, object]) -> None:
    sim = create_simulator()
    async with client(sim) as c:
        r = await c.post("http://sim/_sim/faults", json=body)
    assert r.status_code == 400 and "bad faults" in r.json()["message"]
    assert sim.faults.outages == [] and sim.faults.late_points == []


@settings(
    max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    start=st.integers(min_value=0, max_value=6 * DAY_MS),
    length=st.integers(min_value=1, max_value=2 * DAY_MS),
    as_of=st.integers(min_value=0, max_value=8 * DAY_MS),
)
async def test_the_ace_client_reads_exactly_the_truth_under_delays_and_outages(
    start: int, length: int, as_of: int
) -> None:
    clock = Clock(OCT1 + as_of)
    sim = create_simulator(seed=6, now_ms=clock)
    sim.faults.visibility_delay_s = 10
    sim.faults.visibility_jitter_s = 200
    sim.faults.outages = [
        Outage(OCT1 + DAY_MS, OCT1 + 3 * DAY_MS, backlog_ms=OCT1 + 4 * DAY_MS, site="elm_school")
    ]
    names = [p.name for p in sim.sites[2].collecting[:4]]
    lo, hi = OCT1 + start, OCT1 + start + length
    client = sim_client(sim)
    try:
        per_point = await client.points_series(names, lo, hi, token="t")
        stream: dict[str, list[np.ndarray]] = {n: [] for n in names}
        async for page in client.site_pages(
            "elm_school", lo, hi, token="t", raw=True, page_size=5000
        ):
            for n in names:
                if n in page:
                    stream[n].append(page[n].t_ms)
    finally:
        await client.aclose()
    for n in names:
        want = sim.truth(n, lo, hi)[0] // 1000
        assert per_point[n].t_ms.tolist() == want.tolist()
        got = np.concatenate(stream[n]) if stream[n] else np.empty(0, dtype=np.int64)
        assert got.tolist() == want.tolist()
