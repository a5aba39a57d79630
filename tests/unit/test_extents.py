"""Extents: calendar floors, coverage lists and the range algebra behind delta caching."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsgate.core import extents
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR

# 1900..2200 keeps ``datetime`` happy and still exercises negative (pre-1970) times.
TIMES = st.integers(min_value=-2_208_988_800_000, max_value=7_258_118_400_000)
SMALL = st.integers(min_value=-1_000, max_value=1_000)
RANGES = st.lists(st.tuples(SMALL, SMALL), max_size=8)
FAST = settings(max_examples=200, deadline=None)


def _ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC).timestamp() * 1000)


def _covered(ranges: list[tuple[int, int]]) -> set[int]:
    return {t for start, end in ranges for t in range(start, end)}


@pytest.mark.parametrize(
    ("ms", "day", "month", "following"),
    [
        (_ms(2025, 10, 12, 16, 35), _ms(2025, 10, 12), _ms(2025, 10, 1), _ms(2025, 11, 1)),
        (_ms(2024, 2, 29, 23, 59), _ms(2024, 2, 29), _ms(2024, 2, 1), _ms(2024, 3, 1)),
        (_ms(2025, 12, 31, 12), _ms(2025, 12, 31), _ms(2025, 12, 1), _ms(2026, 1, 1)),
        (_ms(2025, 1, 1), _ms(2025, 1, 1), _ms(2025, 1, 1), _ms(2025, 2, 1)),
        (-1, _ms(1969, 12, 31), _ms(1969, 12, 1), 0),
    ],
)
def test_calendar_floors(ms: int, day: int, month: int, following: int) -> None:
    assert extents.day_floor(ms) == day
    assert extents.month_floor(ms) == month
    assert extents.next_month(ms) == following


def test_floor_to_handles_negative_times_and_rejects_bad_width() -> None:
    assert extents.floor_to(-1, MS_PER_HOUR) == -MS_PER_HOUR
    assert extents.floor_to(7_200_001, MS_PER_HOUR) == 7_200_000
    with pytest.raises(ValueError, match="positive"):
        extents.floor_to(5, 0)


def test_days_and_months_covering() -> None:
    start, end = _ms(2025, 1, 30, 12), _ms(2025, 3, 1)
    assert extents.days_covering(start, end) == [_ms(2025, 1, d) for d in (30, 31)] + [
        _ms(2025, 2, d) for d in range(1, 29)
    ]
    assert extents.months_covering(start, end) == [_ms(2025, 1, 1), _ms(2025, 2, 1)]
    assert extents.months_covering(start, end + 1) == [_ms(2025, m, 1) for m in (1, 2, 3)]
    assert extents.days_covering(end, end) == []
    assert extents.months_covering(end, start) == []


@pytest.mark.parametrize(
    ("now_ms", "settled"),
    [(1_000 + 7_200_000, True), (1_000 + 7_199_999, False), (1_000 + 9_999_999, True)],
)
def test_is_settled_boundary(now_ms: int, settled: bool) -> None:
    assert extents.is_settled(1_000, now_ms, 7_200_000) is settled


@FAST
@given(TIMES)
def test_floors_bracket_the_instant(ms: int) -> None:
    day, month, following = extents.day_floor(ms), extents.month_floor(ms), extents.next_month(ms)
    assert day <= ms < day + MS_PER_DAY
    assert month <= day < following
    assert 28 * MS_PER_DAY <= following - month <= 31 * MS_PER_DAY
    assert extents.month_floor(following) == following


@FAST
@given(TIMES, st.integers(min_value=0, max_value=400 * MS_PER_DAY))
def test_coverage_is_contiguous_and_tight(start: int, length: int) -> None:
    end = start + length
    days, months = extents.days_covering(start, end), extents.months_covering(start, end)
    if length == 0:
        assert days == months == []
        return
    assert days[0] <= start < days[0] + MS_PER_DAY
    assert days[-1] < end <= days[-1] + MS_PER_DAY
    assert all(b - a == MS_PER_DAY for a, b in itertools.pairwise(days))
    assert months[0] <= start
    assert extents.next_month(months[-1]) >= end > months[-1]
    assert all(extents.next_month(a) == b for a, b in itertools.pairwise(months))


@FAST
@given(RANGES)
def test_merge_is_sorted_disjoint_and_covers_the_same(ranges: list[tuple[int, int]]) -> None:
    merged = extents.merge(ranges)
    assert _covered(merged) == _covered(ranges)
    assert all(start < end for start, end in merged)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(merged))


@FAST
@given(st.tuples(SMALL, SMALL), RANGES)
def test_subtract_plus_have_covers_want_exactly(
    want: tuple[int, int], have: list[tuple[int, int]]
) -> None:
    missing = extents.subtract(want, have)
    wanted = set(range(*want))
    assert _covered(missing) == wanted - _covered(have)
    assert _covered(missing) | (_covered(have) & wanted) == wanted
    assert all(want[0] <= start < end <= want[1] for start, end in missing)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(missing))


def test_subtract_examples() -> None:
    assert extents.subtract((0, 10), []) == [(0, 10)]
    assert extents.subtract((0, 10), [(0, 10)]) == []
    assert extents.subtract((0, 10), [(2, 4), (3, 6), (8, 20)]) == [(0, 2), (6, 8)]
    assert extents.subtract((5, 5), [(0, 1)]) == []
