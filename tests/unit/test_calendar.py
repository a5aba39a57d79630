"""Local calendar buckets: DST days of 23 and 25 hours, half-hour zones, ISO weeks and
months, against datetime arithmetic done sample by sample; exact buckets on them."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tsgate.core import calendar, grids, rollups
from tsgate.core.grids import Grid
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE, Series
from tsgate.series import chart
from tsgate.series.chunkstore import LEVELS_MS
from tsgate.wire.ace import parse_time

FAST = settings(max_examples=80, deadline=None)
ZONES = ["America/New_York", "Europe/Berlin", "Asia/Kolkata", "Asia/Kathmandu", "UTC",
         "Australia/Adelaide", "America/Santiago"]  # fmt: skip
YEAR_2026 = parse_time("t", "2026-01-01T00:00:00")


def hours(day: str, zone: str) -> float:
    start = parse_time("t", f"{day}T00:00:00")
    starts = calendar.local_starts(start - MS_PER_DAY, start + 2 * MS_PER_DAY, zone, "1d")
    local = [dt.datetime.fromtimestamp(s / 1000, ZoneInfo(zone)).date().isoformat() for s in starts]
    i = local.index(day)
    return float(starts[i + 1] - starts[i]) / MS_PER_HOUR


@pytest.mark.parametrize(
    ("day", "zone", "length_h"),
    [
        ("2026-03-08", "America/New_York", 23),
        ("2026-11-01", "America/New_York", 25),
        ("2026-03-29", "Europe/Berlin", 23),
        ("2026-10-25", "Europe/Berlin", 25),
        ("2026-03-30", "Europe/Berlin", 24),
        ("2026-04-05", "Australia/Adelaide", 25),  # +10:30 back to +09:30
        ("2026-03-08", "Asia/Kolkata", 24),
    ],
)
def test_local_days_follow_the_clock(day: str, zone: str, length_h: int) -> None:
    assert hours(day, zone) == length_h


def test_local_midnight_in_utc() -> None:
    start = parse_time("t", "2026-03-08T00:00:00")
    kolkata = calendar.local_starts(start, start + MS_PER_DAY, "Asia/Kolkata", "1d")
    assert [s % MS_PER_DAY for s in kolkata] == [18 * MS_PER_HOUR + 30 * MS_PER_MINUTE] * 2
    kathmandu = calendar.local_starts(start, start + MS_PER_DAY, "Asia/Kathmandu", "1d")
    assert int(kathmandu[0]) % MS_PER_DAY == 18 * MS_PER_HOUR + 15 * MS_PER_MINUTE
    # Santiago skips midnight on 2026-09-06: that day starts at 01:00 local (04:00 UTC)
    sep6 = parse_time("t", "2026-09-06T12:00:00")
    (first,) = calendar.local_starts(sep6, sep6 + 1, "America/Santiago", "1d")
    assert first == parse_time("t", "2026-09-06T04:00:00")


@FAST
@given(
    st.sampled_from(ZONES),
    st.sampled_from(calendar.UNITS),
    st.integers(-400 * MS_PER_DAY, 400 * MS_PER_DAY),
    st.integers(1, 120 * MS_PER_DAY),
)
def test_local_starts_are_local_midnights_covering_the_range(
    zone: str, unit: str, offset: int, length: int
) -> None:
    start = YEAR_2026 + offset
    starts = calendar.local_starts(start, start + length, zone, unit)
    tz = ZoneInfo(zone)
    local = [dt.datetime.fromtimestamp(int(s) / 1000, tz) for s in starts]
    assert int(starts[0]) <= start and bool(np.all(np.diff(starts) > 0))
    assert len(starts) == 1 or int(starts[-1]) < start + length
    for at in local:
        assert at.hour <= 1 and at.minute == 0 and at.second == 0  # 01:00 where 00:00 is skipped
        if unit == "7d":
            assert at.weekday() == 0
        if unit == "1mo":
            assert at.day == 1
    dates = [d.date() for d in local]
    step = {"1d": 1, "7d": 7}.get(unit)
    for a, b in itertools.pairwise(dates):
        if step:
            assert (b - a).days == step
        else:
            assert (b.year * 12 + b.month) - (a.year * 12 + a.month) == 1
    # the bucket after the last begins at or after the range's end
    last = int(starts[-1])
    after = calendar.local_starts(last, last + 40 * MS_PER_DAY, zone, unit)
    assert int(after[0]) == last and int(after[1]) >= start + length


def test_unknown_zones_and_units_are_refused() -> None:
    for bad in ("Mars/Olympus", "../etc/passwd", "", "Europe/"):
        with pytest.raises(ValueError, match="not an IANA time zone"):
            calendar.zone(bad)
    with pytest.raises(ValueError, match="unknown calendar unit"):
        calendar.local_starts(0, 1, "UTC", "1h")


@st.composite
def samples(draw: st.DrawFn) -> Series:
    n = draw(st.integers(0, 600))
    steps = hnp.arrays(np.int64, n, elements=st.integers(1, 6 * MS_PER_HOUR))
    t = YEAR_2026 + draw(st.integers(0, 330 * MS_PER_DAY)) + np.cumsum(draw(steps))
    v = draw(hnp.arrays(np.float64, n, elements=st.floats(-1e3, 1e3)))
    return Series("p", t, v)


def local_key(t_ms: int, zone: str, unit: str) -> dt.date:
    day = dt.datetime.fromtimestamp(t_ms / 1000, ZoneInfo(zone)).date()
    if unit == "7d":
        return day - dt.timedelta(days=day.weekday())
    return day.replace(day=1) if unit == "1mo" else day


@FAST
@given(samples(), st.sampled_from(ZONES), st.sampled_from(calendar.UNITS))
def test_bucketize_at_groups_by_local_date(s: Series, zone: str, unit: str) -> None:
    if not len(s):
        return
    start, end = int(s.t_ms[0]), int(s.t_ms[-1]) + 1
    starts = calendar.local_starts(start, end, zone, unit)
    b = rollups.bucketize_at(s, starts, MS_PER_DAY)
    keys = [local_key(int(t), zone, unit) for t in s.t_ms]
    want = sorted(set(keys))
    assert b.count.tolist() == [keys.count(k) for k in want]
    tz = ZoneInfo(zone)
    stamps = [int(dt.datetime(k.year, k.month, k.day, tzinfo=tz).timestamp() * 1000) for k in want]
    assert b.start_ms.tolist() == stamps
    np.testing.assert_allclose(
        b.sum, [s.v[[k == w for k in keys]].sum() for w in want], rtol=1e-9, atol=1e-9
    )


COMPOSED_ZONES = ("America/New_York", "Europe/Berlin", "Australia/Adelaide", "Asia/Kolkata")
COMPOSED_ZONES += ("Asia/Kathmandu",)


@FAST
@given(
    samples(),
    st.sampled_from(COMPOSED_ZONES),
    st.sampled_from(calendar.UNITS),
    st.integers(0, 330 * MS_PER_DAY),
    st.integers(1, 60 * MS_PER_DAY),
)
def test_local_buckets_compose_from_rollups_exactly(
    s: Series, zone: str, unit: str, offset: int, length: int
) -> None:
    """Hourly rollups (15-minute ones where the offset is not whole hours: +09:30/+10:30,
    +05:30, +05:45) plus raw edges give the buckets of the samples in range, however the
    range cuts the local days."""
    start, end = YEAR_2026 + offset, YEAR_2026 + offset + length
    grid = Grid(MS_PER_DAY, starts=calendar.local_starts(start, end, zone, unit))
    level = chart._level_for(grid)
    whole_hours = zone in ("America/New_York", "Europe/Berlin")
    assert level == ("1h" if whole_hours else "15m") or (unit == "1mo" and level == "1h")
    assert level is not None
    width = LEVELS_MS[level]
    if not whole_hours and not grid.tiles(MS_PER_HOUR):
        with pytest.raises(ValueError, match="not whole"):
            grids.compose(rollups.Buckets.empty(MS_PER_HOUR), [], grid, start)
    want = grids.clip_start(grid.bucket(s.crop(start, end)), start)
    edges, interior = grids.split_edges(start, end, width)
    if interior is None:
        return
    stored = rollups.crop(rollups.bucketize(s, width), *interior)
    got = grids.compose(stored, [s.crop(*e) for e in edges], grid, start)
    exact = ("start_ms", "count", "min", "max", "first", "last", "min_ms", "max_ms", "rises")
    for field in exact:
        np.testing.assert_array_equal(getattr(got, field), getattr(want, field), err_msg=field)
    for field in ("sum", "hold", "on_ms"):
        np.testing.assert_allclose(
            getattr(got, field), getattr(want, field), rtol=1e-9, atol=1e-6, err_msg=field
        )
