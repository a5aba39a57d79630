"""Bucketed answers cover exactly ``[start, end)``: every interval x agg, ``/api/aggregations``
and M4 downsampling, compared with the simulator's raw samples read directly over random
windows (aligned and not, across day and month ends, into the open day), before and after
more of the range is cached. The reference groups the raw samples with plain numpy; it
shares no code with the rollups.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.clock import NOW
from tests.instance import AGGS, REDUCE, SITE, Harness
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE
from tsgate.wire.ace import format_time, parse_time

WIDTHS = {
    "5min": 5 * MS_PER_MINUTE,
    "15min": 15 * MS_PER_MINUTE,
    "1h": MS_PER_HOUR,
    "6h": 6 * MS_PER_HOUR,
    "1d": MS_PER_DAY,
    "7d": 7 * MS_PER_DAY,
}
MONDAY_ORIGIN = 4 * MS_PER_DAY  # 1970-01-05 was a Monday
DIFF = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(tmp_path_factory.mktemp("edges"))
    try:
        yield h
    finally:
        h.close()


# ---- the reference ------------------------------------------------------------------------


def reference(
    t: np.ndarray, v: np.ndarray, start: int, width: int, origin: int, agg: str
) -> tuple[list[int], list[float]]:
    """One (stamp, value) per non-empty bucket of the grid: stamped at the bucket start,
    or at ``start`` for a bucket that begins before it."""
    keys = (t - origin) // width * width + origin
    stamps, values = [], []
    for key in np.unique(keys):
        stamps.append(max(int(key), start))
        values.append(float(REDUCE[agg](v[keys == key])))
    return stamps, values


# ---- windows ------------------------------------------------------------------------------

FIRST = parse_time("t", "2025-08-25T00:00:00")
MAX_DAYS = 27  # windows and warming reads never span a whole calendar month


@st.composite
def windows(draw: st.DrawFn, max_days: int = MAX_DAYS) -> tuple[int, int]:
    """Aligned to the day, the hour, the minute or not at all; across day and month ends
    (August to November), some ending in the open day or after now."""
    align = draw(st.sampled_from([MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE, 1]))
    start = FIRST + draw(st.integers(0, (NOW - FIRST) // align)) * align
    length = draw(st.integers(max(1, MS_PER_MINUTE // align), max_days * MS_PER_DAY // align))
    return start, start + length * align


async def warm(h: Harness, names: list[str], span: tuple[int, int]) -> None:
    """Cache part of the data through a raw read (a partial day, a day, a month's end)."""
    await h.get("/api/timeseries", names, *span, layout="columnar")


def assert_same_series(got: list[list[float]], stamps: list[int], values: list[float]) -> None:
    data = np.array(got, dtype=np.float64).reshape(-1, 2)
    assert data[:, 0].astype(np.int64).tolist() == stamps
    np.testing.assert_allclose(data[:, 1], values, rtol=1e-9, atol=1e-9)


# ---- interval aggregates ------------------------------------------------------------------


@DIFF
@given(
    windows(),
    st.sampled_from(["5min", "15min", "1h", "6h", "1d", "7d", "auto"]),
    st.sampled_from(AGGS),
    st.integers(1, 3),
    st.one_of(st.none(), windows(max_days=3)),
)
def test_every_interval_and_agg_equals_the_raw_samples_in_range(
    harness: Harness,
    window: tuple[int, int],
    interval: str,
    agg: str,
    count: int,
    warmed: tuple[int, int] | None,
) -> None:
    h, names = harness, harness.names(count)
    start, end = window

    async def check() -> None:
        if warmed is not None:
            await warm(h, names, warmed)
        before = await h.get("/api/timeseries", names, start, end, interval=interval, agg=agg)
        served = before["metadata"]["interval"]
        width, origin = WIDTHS[served], MONDAY_ORIGIN if served == "7d" else 0
        total = 0
        for name, s in zip(names, before["series"], strict=True):
            t, v = await h.truth(name, start, end)
            total += t.size
            assert_same_series(s["data"], *reference(t, v, start, width, origin, agg))
        assert before["metadata"]["totalSamples"] == total
        # cache the whole days around the window: the same URL answers the same
        day_start, day_end = start - start % MS_PER_DAY, -(-end // MS_PER_DAY) * MS_PER_DAY
        await warm(h, names, (day_start, min(day_end, day_start + MAX_DAYS * MS_PER_DAY)))
        after = await h.get("/api/timeseries", names, start, end, interval=interval, agg=agg)
        # the same samples; only what is still provisional may have moved on to final
        assert after["series"] == before["series"]
        provisional = (before["metadata"].pop("provisional"), after["metadata"].pop("provisional"))
        assert after["metadata"] == before["metadata"]
        for name, spans in provisional[1].items():
            assert name in provisional[0] and len(spans) <= len(provisional[0][name])

    h.run(check())


@DIFF
@given(windows(), st.sampled_from(["1h", "6h", "1d", "7d"]), st.one_of(st.none(), windows(3)))
def test_aggregations_equal_the_raw_samples_in_range(
    harness: Harness, window: tuple[int, int], interval: str, warmed: tuple[int, int] | None
) -> None:
    h, names = harness, harness.names(2)
    start, end = window

    async def check() -> None:
        if warmed is not None:
            await warm(h, names, warmed)
        body = await h.get("/api/aggregations", names, start, end, interval=interval)
        width, origin = WIDTHS[interval], MONDAY_ORIGIN if interval == "7d" else 0
        for name in names:
            rows = [row for row in body["aggregations"] if row["name"] == name]
            t, v = await h.truth(name, start, end)
            stamps = [parse_time("timestamp", row["timestamp"]) for row in rows]
            for agg in ("avg", "min", "max", "sum", "count", "stddev"):
                want_stamps, want = reference(t, v, start, width, origin, agg)
                assert stamps == want_stamps
                np.testing.assert_allclose([row[agg] for row in rows], want, rtol=1e-9)

    h.run(check())


# ---- M4 -----------------------------------------------------------------------------------


@DIFF
@given(windows(), st.sampled_from([40, 200, 2000]), st.one_of(st.none(), windows(3)))
def test_m4_points_are_real_samples_with_each_columns_extremes(
    harness: Harness, window: tuple[int, int], max_points: int, warmed: tuple[int, int] | None
) -> None:
    h, names = harness, harness.names(2)
    start, end = window

    async def check() -> None:
        if warmed is not None:
            await warm(h, names, warmed)
        body = await h.get("/api/timeseries", names, start, end, max_points=str(max_points))
        meta = body["metadata"]
        total = 0
        for name, s in zip(names, body["series"], strict=True):
            t, v = await h.truth(name, start, end)
            total += t.size
            data = np.array(s["data"], dtype=np.float64).reshape(-1, 2)
            got_t, got_v = data[:, 0].astype(np.int64), data[:, 1]
            assert len(got_t) <= max_points
            # every point is a sample in range, time and value
            at = np.searchsorted(t, got_t)
            assert bool(np.all(at < t.size)) and t[at].tolist() == got_t.tolist()
            assert v[at].tolist() == got_v.tolist()
            if t.size:
                assert got_t[0] == t[0] and got_t[-1] == t[-1]
                assert got_v.min() == v.min() and got_v.max() == v.max()
            if meta["aggregation"] != "m4":
                continue
            # each column holds exactly its first, last, first min and first max sample
            width = int(meta["interval"].removeprefix("m4:").removesuffix("ms"))
            columns = t // width
            for column in np.unique(columns):
                ct, cv = t[columns == column], v[columns == column]
                picks = sorted({0, ct.size - 1, int(np.argmin(cv)), int(np.argmax(cv))})
                assert got_t[got_t // width == column].tolist() == ct[picks].tolist()
        assert meta["totalSamples"] == total

    h.run(check())


# ---- regressions (issue 10, bugs 6 and 7) -------------------------------------------------

JUL15 = parse_time("t", "2025-07-15T00:00:00")


def test_a_partly_cached_day_answers_the_same_before_and_after_the_rest_is_cached(
    harness: Harness,
) -> None:
    """Bug 6: ``interval=1d`` over half a day counted 144, then 288 once the whole day was
    cached; ``5min`` (clipped) and ``1h`` (not) disagreed; totalSamples counted whole days."""
    h, names = harness, harness.names(1)
    half = (JUL15, JUL15 + 12 * MS_PER_HOUR)
    unaligned = (JUL15 + 30 * MS_PER_MINUTE, JUL15 + 11 * MS_PER_HOUR + 30 * MS_PER_MINUTE)

    async def answers() -> list[Any]:
        return [
            await h.get("/api/timeseries", names, *half, interval="1d", agg="count"),
            await h.get("/api/timeseries", names, *unaligned, interval="1h", agg="count"),
            await h.get("/api/timeseries", names, *unaligned, interval="5min", agg="count"),
            await h.get("/api/aggregations", names, *half, interval="1d"),
        ]

    async def check() -> None:
        await warm(h, names, half)
        before = await answers()
        t_half, _ = await h.truth(names[0], *half)
        t_unaligned, _ = await h.truth(names[0], *unaligned)
        assert 130 < t_half.size <= 144
        day, hourly, fine, table = before
        assert day["series"][0]["data"] == [[JUL15, float(t_half.size)]]
        assert day["metadata"]["totalSamples"] == t_half.size
        assert table["aggregations"][0]["count"] == t_half.size
        # the hourly and the 5-minute path count the same samples, stamped inside the range
        for body in (hourly, fine):
            data = body["series"][0]["data"]
            assert sum(c for _, c in data) == body["metadata"]["totalSamples"] == t_unaligned.size
            assert data[0][0] == unaligned[0] and data[-1][0] < unaligned[1]
        await warm(h, names, (JUL15, JUL15 + MS_PER_DAY))
        after = await answers()
        for body in (*before, *after):  # what is provisional may move on to final
            body["metadata"].pop("provisional", None)
        assert after == before

    h.run(check())


def test_seven_day_buckets_are_iso_weeks(harness: Harness) -> None:
    h, names = harness, harness.names(1)
    start, end = JUL15 - 14 * MS_PER_DAY, JUL15 + 14 * MS_PER_DAY  # Tuesday 1 to Tuesday 29 July

    async def check() -> None:
        body = await h.get("/api/timeseries", names, start, end, interval="7d", agg="count")
        stamps = [format_time(t) for t, _ in body["series"][0]["data"]]
        # the first week is clipped to the range; the others start on Monday 00:00 UTC
        assert stamps == [
            "2025-07-01T00:00:00.000000",
            "2025-07-07T00:00:00.000000",
            "2025-07-14T00:00:00.000000",
            "2025-07-21T00:00:00.000000",
            "2025-07-28T00:00:00.000000",
        ]
        counts = [c for _, c in body["series"][0]["data"]]
        t, _ = await h.truth(names[0], start, end)
        assert counts[0] == np.count_nonzero(t < parse_time("t", "2025-07-07T00:00:00"))
        assert counts[-1] == np.count_nonzero(t >= parse_time("t", "2025-07-28T00:00:00"))
        assert sum(counts) == t.size

    h.run(check())


def test_m4_over_a_long_unaligned_range_draws_only_real_samples_inside_it(
    harness: Harness,
) -> None:
    """Bug 7: about half of the points sat at bucket-aligned times that were no sample's
    time, some before ``start``, and min/max could come from outside the range."""
    h, names = harness, harness.names(2)
    start = parse_time("t", "2024-10-01T13:17:23.456")
    end = parse_time("t", "2025-06-30T07:00:00")

    async def check() -> None:
        body = await h.get("/api/timeseries", names, start, end, max_points="2000")
        assert body["metadata"]["aggregation"] == "m4"
        for name, s in zip(names, body["series"], strict=True):
            t, v = await h.truth(name, start, end)
            got = np.array(s["data"], dtype=np.float64)
            got_t = got[:, 0].astype(np.int64)
            assert 1000 < len(got_t) <= 2000
            assert got_t[0] == t[0] >= start and got_t[-1] == t[-1] < end
            at = np.searchsorted(t, got_t)
            assert t[at].tolist() == got_t.tolist() and v[at].tolist() == got[:, 1].tolist()
            assert got[:, 1].min() == v.min() and got[:, 1].max() == v.max()

    h.run(check())


@pytest.mark.parametrize("interval", ["5min", "15min", "2h", "raw", ""])
def test_aggregations_refuse_intervals_the_rollups_do_not_serve(
    harness: Harness, interval: str
) -> None:
    async def check() -> httpx.Response:
        return await harness.api.get(
            "/api/aggregations",
            params={
                "site": SITE,
                "points": harness.names(1)[0],
                "start": "2025-07-01T00:00:00",
                "end": "2025-07-02T00:00:00",
                "interval": interval or " ",
            },
            headers=harness.token(),
        )

    r = harness.run(check())
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["param"] == "interval" and "1h, 6h, 1d, 7d" in r.json()["detail"]


# ---- time-weighted aggregates of an on/off point ------------------------------------------


def held(
    t: np.ndarray, v: np.ndarray, c0: int, c1: int, begin: int, until: int
) -> tuple[float, float]:
    """The integral of the value, and the time it was non-zero, over ``[begin, c1)`` with
    each sample's value held until the next one."""
    nxt = np.append(t[1:], until)
    overlap = np.clip(np.minimum(nxt, c1) - np.maximum(t, begin), 0, None).astype(np.float64)
    return float(np.sum(v * overlap)), float(np.sum((v != 0) * overlap))


@DIFF
@given(
    windows(),
    st.sampled_from(["1h", "6h", "1d", "7d"]),
    st.sampled_from(["twavg", "duty", "runhours", "starts"]),
)
def test_time_weighted_aggregates_of_a_fan_equal_its_held_samples(
    harness: Harness, window: tuple[int, int], interval: str, agg: str
) -> None:
    h = harness
    fans = [p.name for p in h.sim.site_by_name[SITE].collecting if p.kind == "fan_status"]
    start, end = window

    async def check() -> None:
        body = await h.get("/api/timeseries", fans[:1], start, end, interval=interval, agg=agg)
        until = min(end, h.clock.ms + 1)
        t, v = await h.truth(fans[0], start, end)
        width, origin = WIDTHS[interval], MONDAY_ORIGIN if interval == "7d" else 0
        keys = (t - origin) // width * width + origin
        want: list[float] = []
        for i, key in enumerate(np.unique(keys)):
            c0, c1 = max(int(key), start), min(int(key) + width, until)
            mine = keys == key
            begin = int(t[mine][0]) if i == 0 else c0
            integral, on = held(t, v, c0, c1, begin, until)
            rises = np.count_nonzero(mine[1:] & (v[:-1] == 0) & (v[1:] != 0))
            want.append(
                {
                    "twavg": integral / (c1 - begin),
                    "duty": 100 * on / (c1 - begin),
                    "runhours": on / MS_PER_HOUR,
                    "starts": float(rises),
                }[agg]
            )
        data = np.array(body["series"][0]["data"], dtype=np.float64).reshape(-1, 2)
        np.testing.assert_allclose(data[:, 1], want, rtol=1e-9, atol=1e-9)

    h.run(check())
