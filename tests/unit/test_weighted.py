"""Time-weighted aggregates (previous-value hold) against a walk over the raw samples."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tsgate.core import calendar, grids, rollups, weighted
from tsgate.core.grids import Grid
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE, Series
from tsgate.series import chart
from tsgate.series.chunkstore import LEVELS_MS

FAST = settings(max_examples=150, deadline=None)
T0 = 1_774_224_000_000  # 2026-03-23T00:00:00Z, a week before Berlin's spring DST change


# time in each state: off, on, a mode, and a state the point never reaches
STATES = ["timein:0", "timein:1", "timein:3", "timein:7"]


@st.composite
def on_off(draw: st.DrawFn) -> Series:
    """An on/off or multistate signal reported on change and now and then, with gaps."""
    n = draw(st.integers(0, 300))
    steps = hnp.arrays(
        np.int64,
        n,
        elements=st.one_of(st.integers(1, 20 * MS_PER_MINUTE), st.integers(1, 30 * MS_PER_HOUR)),
    )
    v = draw(hnp.arrays(np.float64, n, elements=st.sampled_from([0.0, 1.0, 1.0, 3.0])))
    return Series("fan", T0 + np.cumsum(draw(steps)), v)


def brute(
    s: Series, bounds: list[tuple[int, int]], start: int, until: int, agg: str
) -> list[float]:
    """For each bucket ``[b0, b1)``: walk every sample, holding its value to the next."""
    t, v = s.t_ms, s.v
    out = []
    first_bucket = True
    for b0, b1 in bounds:
        c0, c1 = max(b0, start), min(b1, until)
        mine = (t >= c0) & (t < c1)
        if not mine.any():
            continue
        begin = t[mine][0] if first_bucket else c0
        first_bucket = False
        integral = on = held = 0.0
        state = float(agg.split(":")[1]) if agg.startswith("timein:") else None
        for i in range(t.size):
            seg_end = t[i + 1] if i + 1 < t.size else until
            overlap = max(0, min(seg_end, c1) - max(t[i], begin))
            integral += v[i] * overlap
            on += (v[i] != 0) * overlap
            held += (v[i] == state) * overlap
        rises = sum(1 for i in range(1, t.size) if c0 <= t[i] < c1 and v[i - 1] == 0 and v[i] != 0)
        if state is not None:
            out.append(held / MS_PER_HOUR)
            continue
        out.append(
            {
                "twavg": integral / (c1 - begin),
                "duty": 100 * on / (c1 - begin),
                "runhours": on / MS_PER_HOUR,
                "starts": float(rises),
            }[agg]
        )
    return out


@FAST
@given(
    on_off(),
    st.sampled_from(["1h", "1d", "berlin-1d", "berlin-7d"]),
    st.sampled_from(sorted(weighted.TIME_WEIGHTED) + STATES),
    st.integers(0, 3 * MS_PER_DAY),
    st.integers(1, 12 * MS_PER_DAY),
    st.integers(0, 16 * MS_PER_DAY),
)
def test_time_weighted_values_equal_a_walk_over_the_samples(
    s: Series, grid_name: str, agg: str, offset: int, length: int, now_offset: int
) -> None:
    start, end, now = T0 + offset, T0 + offset + length, T0 + now_offset
    until = max(start, min(end, now + 1))
    in_range = s.crop(start, until)  # the reader returns nothing after now
    if grid_name.startswith("berlin"):
        unit = grid_name.split("-")[1]
        starts = calendar.local_starts(start, end, "Europe/Berlin", unit)
        grid = Grid(MS_PER_DAY, starts=starts)
        bounds = list(zip(starts.tolist(), [*starts[1:].tolist(), 2**62], strict=True))
    else:
        width = MS_PER_HOUR if grid_name == "1h" else MS_PER_DAY
        grid = Grid(width)
        first = start - start % width
        bounds = [(b, b + width) for b in range(first, end, width)]
    b = grids.clip_start(grid.bucket(in_range), start)
    got = weighted.values(b, agg, grid.ends(b, until), until)
    np.testing.assert_allclose(got, brute(in_range, bounds, start, until, agg), rtol=1e-9)


def test_a_fan_on_for_a_quarter_of_the_day() -> None:
    t = T0 + np.array([0, 6, 12, 18], dtype=np.int64) * MS_PER_HOUR
    s = Series("fan", t, np.array([0.0, 1.0, 0.0, 0.0]))
    b = Grid(MS_PER_DAY).bucket(s)
    ends = Grid(MS_PER_DAY).ends(b, T0 + MS_PER_DAY)
    assert weighted.values(b, "duty", ends, T0 + MS_PER_DAY).tolist() == [25.0]
    assert weighted.values(b, "runhours", ends, T0 + MS_PER_DAY).tolist() == [6.0]
    assert weighted.values(b, "starts", ends, T0 + MS_PER_DAY).tolist() == [1.0]
    assert weighted.values(b, "twavg", ends, T0 + MS_PER_DAY).tolist() == [0.25]
    assert weighted.values(b, "timein:1", ends, T0 + MS_PER_DAY).tolist() == [6.0]
    assert weighted.values(b, "timein:0", ends, T0 + MS_PER_DAY).tolist() == [18.0]
    assert weighted.values(b, "timein:2", ends, T0 + MS_PER_DAY).tolist() == [0.0]
    with pytest.raises(ValueError, match="time-weighted"):
        weighted.values(b, "avg", ends, T0)
    with pytest.raises(ValueError, match="time-weighted"):
        weighted.values(b, "timein:x", ends, T0)


def test_time_in_a_state_is_unknown_where_values_are_not_states() -> None:
    t = T0 + np.array([0, 6, 12], dtype=np.int64) * MS_PER_HOUR
    b = Grid(MS_PER_DAY).bucket(Series("temp", t, np.array([70.5, 71.0, 72.0])))
    ends = Grid(MS_PER_DAY).ends(b, T0 + MS_PER_DAY)
    assert np.isnan(weighted.values(b, "timein:71", ends, T0 + MS_PER_DAY)).all()


@pytest.mark.parametrize(
    ("agg", "state"),
    [("timein:3", 3.0), ("timein:-2", -2.0), ("timein:0", 0.0), ("timein:2147483648", 2.0**31)],
)
def test_timein_states_parse(agg: str, state: float) -> None:
    assert weighted.timein_state(agg) == state and weighted.is_time_weighted(agg)


@pytest.mark.parametrize(
    "agg", ["timein:", "timein:x", "timein:1.5", "timein:--1", "timein:99999999999", "timein:١"]
)
def test_junk_timein_states_do_not_parse(agg: str) -> None:
    assert weighted.timein_state(agg) is None and not weighted.is_time_weighted(agg)


# 2026's spring-forward days: New York on 8 March, Berlin on 29 March (Kolkata and
# Kathmandu keep +5:30 and +5:45 all year)
DST_DAYS = {
    "America/New_York": 1_772_928_000_000,  # 2026-03-08T00:00:00Z
    "Europe/Berlin": 1_774_742_400_000,  # 2026-03-29T00:00:00Z
    "Asia/Kolkata": 1_774_742_400_000,
    "Asia/Kathmandu": 1_774_742_400_000,
}


@FAST
@given(
    on_off(),
    st.sampled_from(sorted(DST_DAYS)),
    st.sampled_from(["1d", "7d"]),
    st.sampled_from(sorted(weighted.TIME_WEIGHTED) + STATES),
    st.integers(-2 * MS_PER_DAY, 2 * MS_PER_DAY),
    st.integers(1, 5 * MS_PER_DAY),
)
def test_local_time_weighted_buckets_from_rollups_equal_the_walk(
    s: Series, zone: str, unit: str, agg: str, offset: int, length: int
) -> None:
    """Local days and weeks around the DST days (and in half-hour zones) composed as the
    chart composes them, from the coarsest stored level that tiles them plus raw edges,
    equal the walk over the samples within 1e-9."""
    s = Series(s.name, s.t_ms - T0 + DST_DAYS[zone] - 2 * MS_PER_DAY, s.v)
    start = DST_DAYS[zone] + offset
    end = start + length
    grid = chart.grid_for(unit, zone, start, end)
    level = chart._level_for(grid)
    assert level == ("15m" if zone.startswith("Asia") else "1h")
    assert not chart.reads_raw(chart.ChartQuery("s", ("p",), start, end, unit, tz=zone))
    width = LEVELS_MS[level]
    in_range = s.crop(start, end)
    edges, interior = grids.split_edges(start, end, width)
    if interior is None:
        b = grids.clip_start(grid.bucket(in_range), start)
    else:
        stored = rollups.crop(rollups.bucketize(s, width), *interior)
        b = grids.compose(stored, [s.crop(*e) for e in edges], grid, start)
    got = weighted.values(b, agg, grid.ends(b, end), end)
    bounds = list(zip(grid.starts.tolist(), [*grid.starts[1:].tolist(), 2**62], strict=True))
    np.testing.assert_allclose(got, brute(in_range, bounds, start, end, agg), rtol=1e-9)


# ---- linear twavg (sampled points) ---------------------------------------------------


@st.composite
def sampled(draw: st.DrawFn) -> Series:
    """A sampled analog point: mostly a regular cadence, with lost samples and outages."""
    n = draw(st.integers(0, 300))
    steps = hnp.arrays(
        np.int64,
        n,
        elements=st.one_of(
            st.integers(5 * MS_PER_MINUTE - 20_000, 5 * MS_PER_MINUTE + 20_000),
            st.integers(1, 40 * MS_PER_MINUTE),
            st.integers(1, 30 * MS_PER_HOUR),
        ),
    )
    v = draw(hnp.arrays(np.float64, n, elements=st.floats(-100, 100)))
    return Series("temp", T0 + np.cumsum(draw(steps)), v)


def brute_linear(
    s: Series, bounds: list[tuple[int, int]], start: int, until: int, gap: int
) -> list[float]:
    """For each bucket with samples: the integral of the lines joining consecutive
    samples at most ``gap`` apart over the bucket (clipped to the range), over the time
    they span; a bucket no line reaches is the mean of its samples."""
    t, v = s.t_ms.tolist(), s.v.tolist()
    out = []
    for b0, b1 in bounds:
        c0, c1 = max(b0, start), min(b1, until)
        mine = [x for x, ts in zip(v, t, strict=True) if c0 <= ts < c1]
        if not mine:
            continue
        integral = covered = 0.0
        for i in range(len(t) - 1):
            t0, t1 = t[i], t[i + 1]
            if t1 - t0 > gap:
                continue
            lo, hi = max(t0, c0), min(t1, c1)
            if hi <= lo:
                continue
            f_lo = v[i] + (v[i + 1] - v[i]) * (lo - t0) / (t1 - t0)
            f_hi = v[i] + (v[i + 1] - v[i]) * (hi - t0) / (t1 - t0)
            integral += (f_lo + f_hi) / 2 * (hi - lo)
            covered += hi - lo
        out.append(integral / covered if covered else sum(mine) / len(mine))
    return out


@FAST
@given(
    sampled(),
    st.sampled_from(sorted(DST_DAYS)),
    st.sampled_from(["1h", "1d", "7d"]),
    st.sampled_from([15 * MS_PER_MINUTE, 45 * MS_PER_MINUTE]),
    st.integers(-2 * MS_PER_DAY, 2 * MS_PER_DAY),
    st.integers(1, 5 * MS_PER_DAY),
)
def test_linear_twavg_from_rollups_equals_the_lines_between_samples(
    s: Series, zone: str, unit: str, gap: int, offset: int, length: int
) -> None:
    """Lines between samples at most ``gap`` apart, cut at bucket edges at their value
    there, none across a longer gap: composed from the stored level and raw edges as the
    chart composes them, on the DST days and in half-hour zones, within 1e-9."""
    s = Series(s.name, s.t_ms - T0 + DST_DAYS[zone] - 2 * MS_PER_DAY, s.v)
    start = DST_DAYS[zone] + offset
    end = start + length
    grid = chart.grid_for(unit, zone if unit != "1h" else "UTC", start, end)
    level = chart._level_for(grid)
    assert level is not None
    width = LEVELS_MS[level]
    in_range = s.crop(start, end)
    edges, interior = grids.split_edges(start, end, width)
    if interior is None:
        b = grids.clip_start(grid.bucket(in_range, gap), start)
    else:
        stored = rollups.crop(rollups.bucketize(s, width, gap_ms=gap), *interior)
        b = grids.compose(stored, [s.crop(*e) for e in edges], grid, start, gap)
    got = weighted.values(b, "twavg", grid.ends(b, end), end, linear=True)
    if grid.starts is None:
        first = start - start % width
        bounds = [(x, x + width) for x in range(first, end, width)]
    else:
        bounds = list(zip(grid.starts.tolist(), [*grid.starts[1:].tolist(), 2**62], strict=True))
    np.testing.assert_allclose(got, brute_linear(in_range, bounds, start, end, gap), rtol=1e-9)


def test_linear_twavg_is_unknown_where_parts_used_other_gaps() -> None:
    t = T0 + np.arange(0, 48, dtype=np.int64) * 5 * MS_PER_MINUTE
    s = Series("temp", t, np.arange(48, dtype=np.float64))
    a = rollups.bucketize(s.crop(T0, T0 + 2 * MS_PER_HOUR), MS_PER_HOUR, gap_ms=15 * MS_PER_MINUTE)
    b = rollups.bucketize(s.crop(T0 + 2 * MS_PER_HOUR, T0 + 4 * MS_PER_HOUR), MS_PER_HOUR)
    joined = rollups.concat(
        [
            a,
            rollups.bucketize(
                s.crop(T0 + 2 * MS_PER_HOUR, T0 + 4 * MS_PER_HOUR), MS_PER_HOUR, gap_ms=MS_PER_HOUR
            ),
        ]
    )
    assert joined.gap_ms == -1 and rollups.concat([a, b]).gap_ms == 15 * MS_PER_MINUTE
    ends = Grid(MS_PER_HOUR).ends(joined, T0 + 4 * MS_PER_HOUR)
    got = weighted.values(joined, "twavg", ends, T0 + 4 * MS_PER_HOUR, linear=True)
    assert np.isnan(got).all()
    # a ramp: its mean over each hour the lines cover (the last ends at its last sample)
    whole = rollups.bucketize(s, MS_PER_HOUR)
    ends = Grid(MS_PER_HOUR).ends(whole, T0 + 4 * MS_PER_HOUR)
    ramp = weighted.values(whole, "twavg", ends, T0 + 4 * MS_PER_HOUR, linear=True)
    assert ramp.tolist() == [6.0, 18.0, 30.0, 41.5]


@FAST
@given(
    st.one_of(on_off(), sampled()),
    st.sampled_from(["Asia/Kolkata", "Europe/Berlin"]),
    st.sampled_from(["timein:1", "timein:3", "twavg", "twavg-linear", "duty", "starts"]),
    st.lists(st.integers(0, 6 * MS_PER_DAY), max_size=6),
)
def test_any_split_into_stored_periods_composes_to_the_whole(
    s: Series, zone: str, agg: str, cuts: list[int]
) -> None:
    """Rollups written period by period (chunks of any day-aligned split, merged into one
    month as the rollup cache merges them) give the same local-day answer as the whole."""
    level = "15m" if zone == "Asia/Kolkata" else "1h"
    width = LEVELS_MS[level]
    start, end = T0, T0 + 7 * MS_PER_DAY
    edges = sorted({start, end, *(T0 + c // MS_PER_DAY * MS_PER_DAY for c in cuts)})
    whole = rollups.bucketize(s.crop(start, end), width)
    parts = rollups.Buckets.empty(width)
    for lo, hi in itertools.pairwise(edges):
        parts = rollups.merge(parts, rollups.bucketize(s.crop(lo, hi), width))
    grid = chart.grid_for("1d", zone, start, end)
    agg_name, linear = ("twavg", True) if agg == "twavg-linear" else (agg, False)
    answers = []
    for stored in (whole, parts):
        b = grids.compose(stored, [], grid, start)
        answers.append(weighted.values(b, agg_name, grid.ends(b, end), end, linear=linear))
    np.testing.assert_allclose(answers[1], answers[0], rtol=1e-9, atol=1e-9)
