"""One regression test per data-loss bug of the first differential campaign, each
reproduced as it was reported (seed 1, the reproducer's ranges and read order), and
checked against the simulator's truth rather than remembered counts."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest

from tests.clock import NOW, Clock
from tests.differential.harness import (
    AUTH,
    DAY_MS,
    EMPTY,
    HOUR_MS,
    SITE,
    Arrays,
    Harness,
    Tally,
    decode_series,
    diff_settings,
    read_chart_interval,
    read_chart_raw,
    read_paginated,
    read_per_point,
    truth_buckets,
    truth_of,
)
from tsgate.series.invalidation import invalidate
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.upstream.visibility import LatePoint, Outage
from tsgate.wire.ace import format_time, parse_time

pytestmark = [pytest.mark.anyio, pytest.mark.differential]

RECHECKS_MS = (0, 2 * HOUR_MS, 6 * HOUR_MS, DAY_MS, 3 * DAY_MS, 7 * DAY_MS, 8 * DAY_MS)


def at(text: str) -> int:
    return parse_time("t", text)


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def sim(clock: Clock) -> Simulator:
    return create_simulator(seed=1, now_ms=clock)


@pytest.fixture
async def h(sim: Simulator, clock: Clock, request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    with tempfile.TemporaryDirectory() as folder:
        t = Tally(f"regression {request.node.name}")  # not in the summary: asserted here
        async with Harness.open(sim, clock, diff_settings(Path(folder)), t) as harness:
            yield harness


def names_of(sim: Simulator, n: int, site: str = SITE) -> list[str]:
    return [p.name for p in sim.site_by_name[site].collecting[:n]]


async def cache_then_damage_rollups(h: Harness, name: str, start: int) -> None:
    """The point's samples from ``start`` to now cached (read as a raw chart), its hourly
    rollup blobs then damaged and the gateway restarted (nothing of them kept in memory)."""
    got, _ = await read_chart_raw(h, [name], start, h.clock.ms, "series", False)
    assert got is not None, h.tally.report()
    assert h.damage_rollup_blobs(name), "no rollup blob was damaged: the reproducer tests nothing"
    await h.restart()


def assert_same(want: Arrays, got: Arrays) -> None:
    (wt, wv), (gt, gv) = want, got
    assert wt.size, "the truth is empty: the reproducer tests nothing"
    missing = np.setdiff1d(wt, gt)
    assert not missing.size, (
        f"{missing.size} of {wt.size} samples missing (got {gt.size}), "
        f"first {format_time(int(missing[0]))}"
    )
    assert np.array_equal(wt, gt) and np.array_equal(wv, gv)


async def per_point(h: Harness, name: str, start_ms: int, end_ms: int) -> Arrays:
    got = await read_per_point(h, [name], start_ms, end_ms)
    assert got is not None, h.tally.report()
    return got[name]


async def recheck(h: Harness, after_ms: int) -> None:
    """Run the maintenance pass through the whole re-check schedule after ``after_ms``."""
    for step in RECHECKS_MS:
        h.clock.ms = after_ms + step
        await h.maintenance()


async def test_bug1_the_first_of_the_month_is_not_cut_off(h: Harness, sim: Simulator) -> None:
    name = names_of(sim, 1, "demo_campus")[0]
    first_read = await per_point(h, name, at("2025-04-01T00:00:00"), at("2025-04-01T10:35:00"))
    assert_same(
        truth_of(sim, [name], at("2025-04-01"), at("2025-04-01T10:35:00"))[name], first_read
    )
    month = await per_point(h, name, at("2025-04-01T00:00:00"), at("2025-05-01T00:00:00"))
    assert_same(truth_of(sim, [name], at("2025-04-01"), at("2025-05-01"))[name], month)


async def test_bug2_the_site_stream_keeps_other_reads_of_the_day(
    h: Harness, sim: Simulator
) -> None:
    name = names_of(sim, 1)[0]
    day = at("2025-09-10T00:00:00")
    assert await read_paginated(h, None, day, day + 10 * HOUR_MS, 500_000) is not None
    whole = await per_point(h, name, day, day + DAY_MS)
    assert_same(truth_of(sim, [name], day, day + DAY_MS)[name], whole)
    assert await read_paginated(h, None, day + 9 * HOUR_MS, day + 20 * HOUR_MS, 500_000)
    again = await per_point(h, name, day, day + DAY_MS)
    assert_same(truth_of(sim, [name], day, day + DAY_MS)[name], again)


async def test_bug3_a_live_chart_with_a_visibility_delay_keeps_up(
    h: Harness, sim: Simulator, clock: Clock
) -> None:
    """A 2 h chart refreshed for 16 minutes while samples reach upstream 30 s – 2.5 min
    after their time: every refresh shows every sample upstream has at that moment.
    (Refreshes are 61 s apart, just past the open TTL, so no answer may be stale.)"""
    sim.faults.visibility_delay_s = 30
    sim.faults.visibility_jitter_s = 120
    names = names_of(sim, 2)
    for _ in range(16):
        clock.ms += 61_000
        start, end = clock.ms - 2 * HOUR_MS, clock.ms
        got, _ = await read_chart_raw(h, names, start, end, "columnar", False)
        assert got is not None, h.tally.report()
        want = truth_of(sim, names, start, end)
        for name in names:
            assert_same(want[name], got[name])


async def test_bug3_a_fetch_window_ending_inside_a_5_minute_slot_loses_nothing(
    h: Harness, sim: Simulator
) -> None:
    name = names_of(sim, 1)[0]
    day = at("2025-10-01T00:00:00")
    cut = day + 35 * 60_000 + 55_000  # after the 00:35 sweep's sample, inside its slot
    await per_point(h, name, day, cut)
    got = await per_point(h, name, day, day + 2 * HOUR_MS)
    assert_same(truth_of(sim, [name], day, day + 2 * HOUR_MS)[name], got)


async def test_bug3_an_outage_backlog_uploaded_later_is_served(
    h: Harness, sim: Simulator, clock: Clock
) -> None:
    """A gateway offline for a day, its backlog uploaded 6 h after the day was sealed."""
    names = names_of(sim, 3)
    day = at("2025-11-10T00:00:00")
    backlog = day + DAY_MS + 8 * HOUR_MS
    sim.faults.outages = [Outage(day, day + DAY_MS, backlog_ms=backlog, points=tuple(names))]
    clock.ms = day + DAY_MS + 2 * HOUR_MS + 1  # the day is settled; the backlog is not up
    before = await read_per_point(h, names, day, day + DAY_MS)
    assert before is not None and all(not a[0].size for a in before.values())
    await recheck(h, backlog)
    want = truth_of(sim, names, day, day + DAY_MS)
    for name in names:
        assert_same(want[name], await per_point(h, name, day, day + DAY_MS))


async def _cached_chart(h: Harness, sim: Simulator) -> tuple[list[str], int, int]:
    names = names_of(sim, 2)
    start, end = at("2025-10-01T00:00:00"), at("2025-10-03T00:00:00")
    got, _ = await read_chart_raw(h, names, start, end, "series", False)
    assert got is not None and all(a[0].size for a in got.values())
    return names, start, end


async def test_bug4_a_lost_object_is_fetched_again(h: Harness, sim: Simulator) -> None:
    names, start, end = await _cached_chart(h, sim)
    assert h.delete_objects() > 0
    await h.restart()  # no decoded copy in memory
    r = await h.http.get(
        "/api/timeseries",
        params={"site": SITE, "points": ",".join(names), "start": format_time(start),
                "end": format_time(end), "layout": "columnar"},
        headers={"Authorization": "Bearer t"},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    want = truth_of(sim, names, start, end)
    for s in r.json()["series"]:
        assert_same(want[s["name"]], (np.array(s["t"]), np.array(s["v"])))
    assert int(r.headers["X-Data-Samples"]) == sum(a[0].size for a in want.values())
    assert_same(want[names[0]], await per_point(h, names[0], start, end))


async def test_bug4_a_corrupt_object_is_fetched_again_not_a_500(h: Harness, sim: Simulator) -> None:
    names, start, end = await _cached_chart(h, sim)
    assert h.corrupt_objects() > 0
    await h.restart()
    got, _ = await read_chart_raw(h, names, start, end, "series", False)
    assert got is not None, h.tally.report()
    want = truth_of(sim, names, start, end)
    for name in names:
        assert_same(want[name], got[name])


async def test_bug5_a_point_not_collecting_when_the_site_stream_ran_is_not_empty_forever(
    h: Harness, sim: Simulator, clock: Clock
) -> None:
    names = names_of(sim, 45)  # enough points for the site stream
    late = names[-1]
    start, end = at("2025-11-10T00:00:00"), at("2025-11-10T06:00:00")
    added = at("2025-11-14T00:00:00")
    # the point starts collecting after the stream ran; its gateway uploads its history
    sim.faults.late_points = [LatePoint(late, added_ms=added, since_ms=start)]
    clock.ms = added - DAY_MS
    assert await read_paginated(h, names, start, end, 50_000) is not None
    await recheck(h, added)
    r = await h.http.get(
        f"/api/points/{quote(late, safe='')}/timeseries",
        params={"start_time": format_time(start), "end_time": format_time(end)},
        headers={"Authorization": "Bearer t"},
    )
    assert r.status_code == 200, r.text
    assert_same(truth_of(sim, [late], start, end)[late], await per_point(h, late, start, end))


async def test_bug8_a_settled_answer_with_a_hole_is_not_immutable(
    h: Harness, sim: Simulator, clock: Clock
) -> None:
    names = names_of(sim, 1)
    day = at("2025-11-10T00:00:00")
    sim.faults.outages = [
        Outage(
            day + 6 * HOUR_MS, day + 12 * HOUR_MS, backlog_ms=day + 4 * DAY_MS, points=tuple(names)
        )
    ]
    clock.ms = day + 2 * DAY_MS  # settled by age; the backlog is two days away
    r = await h.http.get(
        "/api/timeseries",
        params={"site": SITE, "points": names[0], "start": format_time(day),
                "end": format_time(day + DAY_MS)},
        headers={"Authorization": "Bearer t"},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    data = np.array(r.json()["series"][0]["data"]).reshape(-1, 2)
    want = truth_of(sim, names, day, day + DAY_MS)[names[0]]
    assert want[0].size < 250  # six hours are missing upstream today
    assert_same(want, (data[:, 0].astype(np.int64), data[:, 1]))
    assert "immutable" not in r.headers["Cache-Control"], r.headers["Cache-Control"]


async def test_bug3_a_short_window_read_during_an_outage_sees_its_backlog(
    h: Harness, sim: Simulator, clock: Clock
) -> None:
    """Found by the differential suite: a 5-minute window read while the gateway was
    offline stays empty after the backlog is uploaded and every re-check has run."""
    names = names_of(sim, 1)
    a, b = at("2025-11-10T12:00:00"), at("2025-11-13T12:00:00")
    backlog = b + 6 * HOUR_MS
    sim.faults.outages = [Outage(a, b, backlog_ms=backlog, points=tuple(names))]
    clock.ms = b + HOUR_MS
    assert (await per_point(h, names[0], a, a + 300_000))[0].size == 0
    await recheck(h, backlog)
    got = await per_point(h, names[0], a, a + 300_000)
    assert_same(truth_of(sim, names, a, a + 300_000)[names[0]], got)


async def test_bug4_a_corrupt_open_day_keeps_its_rollups_whole(
    h: Harness, sim: Simulator, clock: Clock
) -> None:
    """Found by the differential suite: after every chunk object of a cached range is
    corrupted (and a restart), the open day's 1d aggregate counts only the newest minute."""
    names = [p.name for p in sim.site_by_name[SITE].collecting[12:13]]
    start, end = at("2025-11-01T02:33:57"), at("2025-12-11T02:34:34.123")
    clock.ms = NOW + 300_000

    async def day_counts() -> dict[int, float]:
        r = await h.http.get(
            "/api/aggregations",
            params={"site": SITE, "points": names[0], "start": format_time(start),
                    "end": format_time(end), "interval": "1d"},
            headers={"Authorization": "Bearer t"},
        )  # fmt: skip
        assert r.status_code == 200, r.text
        return {parse_time("t", a["timestamp"]): a["count"] for a in r.json()["aggregations"]}

    await day_counts()
    assert h.corrupt_objects() > 0
    await h.restart()
    clock.ms += 61_000
    counts = await day_counts()
    t, _ = truth_of(sim, names, start, end)[names[0]]
    days, n = np.unique(np.maximum(t - t % DAY_MS, start), return_counts=True)
    assert counts == dict(zip(days.tolist(), n.astype(float).tolist(), strict=True))


async def test_a_drop_in_page_of_the_last_few_minutes_is_fetched_not_taken_for_cached(
    h: Harness, sim: Simulator, clock: Clock
) -> None:
    """A window shorter than one reporting interval before now was estimated at zero
    samples to fetch, so the drop-in fill took it for cached and answered 404."""
    clock.ms += 61_000
    name = names_of(sim, 1)[0]
    start = clock.ms - 150_000
    got = await read_paginated(h, [name], start, start + 300_000, 5000)
    assert got is not None, h.tally.report()
    assert_same(truth_of(sim, [name], start, start + 300_000)[name], got.get(name, EMPTY))


async def test_a_write_into_a_month_whose_rollup_blob_is_damaged_keeps_the_month_whole(
    h: Harness, sim: Simulator, clock: Clock
) -> None:
    """A write merged its periods' buckets into the damaged blob's month as if the month
    held nothing else: the next read found a valid blob without the days before."""
    name = names_of(sim, 1)[0]
    start = clock.ms - 2 * DAY_MS
    await cache_then_damage_rollups(h, name, start)
    clock.ms += 376_000  # the open day's tail is fetched and written again
    got, _ = await read_chart_interval(h, [name], start, clock.ms, "1h", "count")
    assert got is not None, h.tally.report()
    t, _ = truth_of(sim, [name], start, clock.ms)[name]
    want = truth_buckets((t, np.ones(t.size)), HOUR_MS, "count", start)
    assert_same(want, got[name])


async def test_invalidating_days_of_a_month_whose_rollup_blob_is_damaged_keeps_the_rest(
    h: Harness, sim: Simulator, clock: Clock
) -> None:
    """Invalidating some days rewrote the damaged blob's month with those days emptied and
    nothing else: the month's other days lost their buckets."""
    name = names_of(sim, 1)[0]
    start = clock.ms - 3 * DAY_MS
    await cache_then_damage_rollups(h, name, start)
    day = clock.ms - clock.ms % DAY_MS - DAY_MS
    await invalidate(h.services.reader.store, SITE, [name], day, day + DAY_MS, now_ms=clock.ms)
    first_day = day - DAY_MS
    got, _ = await read_chart_interval(h, [name], first_day, day, "1h", "count")
    assert got is not None, h.tally.report()
    t, _ = truth_of(sim, [name], first_day, day)[name]
    want = truth_buckets((t, np.ones(t.size)), HOUR_MS, "count", first_day)
    assert_same(want, got[name])


@pytest.mark.parametrize(("interval", "width"), [("1h", HOUR_MS), ("1d", DAY_MS)])
async def test_a_month_whose_rollup_row_is_lost_is_rebuilt_from_its_chunks(
    h: Harness, sim: Simulator, clock: Clock, interval: str, width: int
) -> None:
    """Found by the state machine: with a month's rollup row deleted (its chunks still
    indexed and whole), a chart of whole buckets read the month as holding no samples:
    only the raw edge buckets came back (47 of 49 hours missing), marked final, and a
    re-read with its ETag got 304 for that answer. Which row the machine's damage rule
    deleted follows the table's insertion order, which is why replays did not always
    hit it. The month is rebuilt from its chunks when read."""
    names = names_of(sim, 2)
    # past every re-check: final; unaligned: the edges are read raw, the rest is not
    start = clock.ms - 12 * DAY_MS - 31 * 60_000
    end = clock.ms - 10 * DAY_MS + 17 * 60_000
    whole_days = (start - start % DAY_MS, end - end % DAY_MS + DAY_MS)  # cached whole
    got, _ = await read_chart_interval(h, names, *whole_days, interval, "count")
    assert got is not None, h.tally.report()
    # a write stores the hourly and daily levels (the 15-minute one only once read)
    assert h.delete_rollups(names[1], ("15m", "1h", "1d")) >= 2
    await h.restart()
    requests = sim.stats.by_route.copy()
    q = {"site": SITE, "points": ",".join(names), "start": format_time(start)}
    q |= {"end": format_time(end), "interval": interval, "agg": "count"}
    first = await h.http.get("/api/timeseries", params=q, headers=AUTH)
    assert first.status_code == 200, first.text[:300]
    assert "immutable" in first.headers["cache-control"]  # a past range: final
    again = await h.http.get(
        "/api/timeseries", params=q, headers={**AUTH, "If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    truth = truth_of(sim, names, start, end)
    body = {s["name"]: decode_series(s) for s in first.json()["series"]}
    for name in names:
        t, _ = truth[name]
        assert_same(truth_buckets((t, np.ones(t.size)), width, "count", start), body[name])
    timeseries = {k: v for k, v in sim.stats.by_route.items() if "timeseries" in k}
    assert timeseries == {k: v for k, v in requests.items() if "timeseries" in k}, (
        "rebuilt from the chunks, not fetched again"
    )


async def test_a_drop_in_answer_while_upstream_fails_is_whole_or_refused(
    h: Harness, sim: Simulator, clock: Clock
) -> None:
    """A drop-in client sees no X-Cache-Status: with upstream failing and only part of the
    range cached, a page (or a point's samples) is refused with upstream's own failure (a
    502 problem naming the HTTP 500, as a read with nothing cached gets), never served as
    if the missing rest held no data; what is cached whole is served; and once upstream is
    back the same read equals the truth."""
    names = names_of(sim, 3)
    start = clock.ms - 2 * DAY_MS
    cached = (start + 6 * HOUR_MS, start + 12 * HOUR_MS)
    got = await read_paginated(h, names, *cached, 5000)
    assert got, h.tally.report()  # a part of the range is cached
    sim.faults.fail_after = 0  # every timeseries read upstream answers 500 from now on
    params = {"start_time": format_time(start), "end_time": format_time(start + DAY_MS)}
    params |= {"page_size": "50", "point_names": ",".join(names), "raw_data": "true"}
    url = f"/api/sites/{SITE}/timeseries/paginated"
    r = await h.http.get(url, params=params, headers=AUTH)
    assert r.status_code == 502, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "HTTP 500" in r.json()["detail"], r.json()
    one = f"/api/points/{quote(names[0], safe='')}/timeseries"
    whole = {"start_time": format_time(start), "end_time": format_time(start + DAY_MS)}
    r = await h.http.get(one, params=whole, headers=AUTH)
    assert r.status_code in (502, 503), (r.status_code, r.text[:300])  # 503: circuit open
    assert r.headers["content-type"].startswith("application/problem+json")
    # what is cached whole is served while upstream fails
    inside = {"start_time": format_time(cached[0]), "end_time": format_time(cached[1])}
    r = await h.http.get(one, params=inside, headers=AUTH)
    assert r.status_code == 200, r.text[:300]
    t, _ = truth_of(sim, [names[0]], *cached)[names[0]]
    assert len(r.json()["point_samples"]) == t.size
    sim.faults.fail_after = None  # upstream is back
    clock.ms += 60_000  # past the breaker's cool-down on the test clock
    again = await read_paginated(h, names, start, start + DAY_MS, 50)
    assert again, h.tally.report()
