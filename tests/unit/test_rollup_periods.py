"""Joining the periods a write rebuilds: bucketing a run of adjacent days at once gives
the same month blobs, byte for byte, as bucketing each day on its own."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tsgate.core import rollups
from tsgate.core.extents import month_floor
from tsgate.core.model import MS_PER_DAY, MS_PER_MINUTE, Series
from tsgate.series.rollupcache import (
    LEVELS_MS,
    Period,
    RollupRow,
    _rebuilt,
    _rebuilt_each,
    joined_periods,
)

MAR_MS = 1_740_787_200_000  # 2025-03-01T00:00Z: days on both sides of a month edge
VALUES = st.sampled_from(["analog", "states", "nan"])


@st.composite
def day(draw: st.DrawFn, point: str, start_ms: int, gap_ms: int) -> Period:
    n = draw(st.integers(0, 60))
    offsets = sorted(set(draw(st.lists(st.integers(0, MS_PER_DAY - 1), min_size=n, max_size=n))))
    t = np.asarray(offsets, dtype=np.int64) + start_ms
    kind = draw(VALUES)
    rand = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "states":
        v = rand.choice([0.0, 1.0, 3.0], size=t.size)
    else:
        v = rand.normal(20, 5, size=t.size).round(2)
        if kind == "nan" and t.size:
            v[rand.random(t.size) < 0.3] = np.nan
    return Period(point, start_ms, start_ms + MS_PER_DAY, Series(point, t, v), gap_ms)


@st.composite
def periods(draw: st.DrawFn) -> list[Period]:
    out: list[Period] = []
    for point in draw(st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3)):
        first = draw(st.integers(-6, 3))
        days = draw(st.lists(st.booleans(), min_size=1, max_size=8))  # False: a day skipped
        gap_ms = draw(st.sampled_from([rollups.DEFAULT_GAP_MS, 10 * MS_PER_MINUTE]))
        for i, taken in enumerate(days):
            if taken:
                if draw(st.booleans()) and draw(st.booleans()):
                    gap_ms = draw(st.sampled_from([rollups.DEFAULT_GAP_MS, 10 * MS_PER_MINUTE]))
                out.append(draw(day(point, MAR_MS + (first + i) * MS_PER_DAY, gap_ms)))
    return out


@settings(max_examples=150, deadline=None)
@given(periods(), periods(), st.sampled_from(sorted(LEVELS_MS)), st.booleans())
def test_joined_periods_rebuild_the_same_blobs(
    written: list[Period], before: list[Period], level: str, damaged: bool
) -> None:
    width = LEVELS_MS[level]
    packed, _ = _rebuilt_each([], before, width)  # what the months held before
    existing = [RollupRow("s", p, level, m, blob, 1) for p, m, blob, _ in packed]
    if damaged and existing:
        existing[0] = RollupRow("s", existing[0].point, level, existing[0].period_start_ms,
                                b"not a blob", 1)  # fmt: skip
    joined = _rebuilt(existing, written, width)
    each = _rebuilt_each(existing, written, width)
    assert sorted(joined[1]) == sorted(each[1])
    by_month = {(p, m): blob for p, m, blob, _ in each[0]}
    assert sorted(by_month) == sorted((p, m) for p, m, _, _ in joined[0])
    for point, month, blob, buckets in joined[0]:
        _same_buckets(rollups.unpack(blob), rollups.unpack(by_month[(point, month)]))
        _same_buckets(buckets, rollups.unpack(blob))  # what a read decodes: the same
    runs = joined_periods(written)
    assert sum(len(p.series) for p in runs) == sum(len(p.series) for p in written)
    assert all(month_floor(p.start_ms) == month_floor(p.end_ms - 1) for p in runs)


def _same_buckets(joined: rollups.Buckets, each: rollups.Buckets) -> None:
    """Every bucket the same; the gap limit the same, or known where day by day it was
    not: a day rebuilt after another met the first day's new buckets in the month and
    marked the month as joined from different limits, although every bucket was new.
    Likewise the state times: the same, or known where day by day they were not (a day
    rebuilt first met a bucket without state times, of a day rebuilt after it, and the
    month's became unknown, although that bucket was then replaced)."""
    assert joined.width_ms == each.width_ms
    for field in rollups.ARRAY_FIELDS:
        assert np.array_equal(getattr(joined, field), getattr(each, field), equal_nan=True), field
    if each.states.size or not joined.states.size:
        assert np.array_equal(joined.states, each.states)
        assert np.array_equal(joined.state_ms, each.state_ms)
    assert joined.gap_ms == each.gap_ms or each.gap_ms == -1


def test_adjacent_days_of_a_month_become_one_period_and_month_edges_split_them() -> None:
    def plain(point: str, start_ms: int) -> Period:
        t = np.arange(start_ms, start_ms + MS_PER_DAY, 300_000, dtype=np.int64)
        return Period(point, start_ms, start_ms + MS_PER_DAY, Series(point, t, t * 0.0 + 1))

    days = [plain("a", MAR_MS + i * MS_PER_DAY) for i in range(-3, 3)]
    days += [plain("b", MAR_MS), plain("b", MAR_MS + 2 * MS_PER_DAY)]  # a day missing
    runs = joined_periods(days)
    assert [(p.point, p.start_ms, p.end_ms) for p in runs] == [
        ("a", MAR_MS - 3 * MS_PER_DAY, MAR_MS),
        ("a", MAR_MS, MAR_MS + 3 * MS_PER_DAY),
        ("b", MAR_MS, MAR_MS + MS_PER_DAY),
        ("b", MAR_MS + 2 * MS_PER_DAY, MAR_MS + 3 * MS_PER_DAY),
    ]
    assert len(runs[0].series) == 3 * 288
