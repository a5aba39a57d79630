"""Downsampling: shape-keeping MinMaxLTTB, M4 from buckets, and rollup level choice."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tsgate.core import rollups
from tsgate.core.downsample import choose_level, m4_from_buckets, minmax_lttb
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE, Series
from tsgate.series.chart import m4_width

FAST = settings(max_examples=100, deadline=None)
VALUE = st.one_of(st.floats(-1e6, 1e6), st.just(np.nan), st.sampled_from([np.inf, -np.inf]))


@st.composite
def series(draw: st.DrawFn) -> Series:
    n = draw(st.integers(0, 600))
    steps = draw(hnp.arrays(np.int64, n, elements=st.integers(1, 2 * MS_PER_HOUR)))
    v = draw(hnp.arrays(np.float64, n, elements=VALUE))
    return Series("p", draw(st.integers(-(10**12), 10**12)) + np.cumsum(steps), v)


def random_walk(n: int, seed: int = 0) -> Series:
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.int64) * 5 * MS_PER_MINUTE
    return Series("walk", t, 70 + np.cumsum(rng.normal(0, 0.2, n)))


@FAST
@given(series(), st.integers(4, 120))
def test_minmax_lttb_keeps_shape(s: Series, n_out: int) -> None:
    out = minmax_lttb(s, n_out)
    if len(s) <= n_out:
        assert out is s
        return
    finite = ~np.isnan(s.v)
    assert len(out) <= n_out
    assert bool(np.all(np.diff(out.t_ms) > 0))
    assert not bool(np.any(np.isnan(out.v)))
    # A subset of the input samples, value for value.
    position = np.searchsorted(s.t_ms, out.t_ms)
    np.testing.assert_array_equal(s.t_ms[position], out.t_ms)
    np.testing.assert_array_equal(s.v[position], out.v)
    if finite.any():
        assert out.t_ms[0] == s.t_ms[finite][0]
        assert out.t_ms[-1] == s.t_ms[finite][-1]
        assert np.nanmin(s.v) in out.v
        assert np.nanmax(s.v) in out.v


def test_minmax_lttb_on_a_year_of_five_minute_data() -> None:
    s = random_walk(105_120)
    out = minmax_lttb(s, 2_000)
    assert 1_900 <= len(out) <= 2_000
    assert out.v.min() == s.v.min()
    assert out.v.max() == s.v.max()


def test_minmax_lttb_refuses_too_few_points() -> None:
    with pytest.raises(ValueError, match="at least 4"):
        minmax_lttb(random_walk(10), 3)


@FAST
@given(series(), st.sampled_from([MS_PER_MINUTE, MS_PER_HOUR, MS_PER_DAY]))
def test_m4_emits_only_real_samples_and_each_buckets_extremes(s: Series, width: int) -> None:
    s = Series("p", s.t_ms, np.where(np.isinf(s.v), 0.0, s.v))  # inf - inf sums warn
    b = rollups.bucketize(s, width)
    out = m4_from_buckets(b, name="p")
    assert bool(np.all(np.diff(out.t_ms) > 0))
    # every point is a sample of the input, time and value
    position = np.searchsorted(s.t_ms, out.t_ms)
    assert bool(np.all(position < len(s)))
    np.testing.assert_array_equal(s.t_ms[position], out.t_ms)
    np.testing.assert_array_equal(s.v[position], out.v)
    # per bucket: exactly its first, last and (first) min and max samples, in time order
    finite = ~np.isnan(s.v)
    t, v = s.t_ms[finite], s.v[finite]
    owner = (out.t_ms // width) * width
    for start in np.unique(t // width * width):
        mine = (t // width * width) == start
        bt, bv = t[mine], v[mine]
        chosen = sorted({0, len(bt) - 1, int(np.argmin(bv)), int(np.argmax(bv))})
        assert out.t_ms[owner == start].tolist() == bt[chosen].tolist()
    assert len(out) <= 4 * len(b)


def test_m4_dedupes_small_buckets_and_places_extremes_where_they_were() -> None:
    t = np.array([0, MS_PER_HOUR, MS_PER_HOUR + 10, 2 * MS_PER_HOUR, 2 * MS_PER_HOUR + 30,
                  2 * MS_PER_HOUR + 60, 2 * MS_PER_HOUR + 90], dtype=np.int64)  # fmt: skip
    v = np.array([5.0, 1.0, 2.0, 3.0, 9.0, -1.0, 4.0])
    out = m4_from_buckets(rollups.bucketize(Series("p", t, v), MS_PER_HOUR))
    # the third hour's max (9.0 at +30) comes before its min (-1.0 at +60)
    assert out.t_ms.tolist() == [0, 3_600_000, 3_600_010, 7_200_000, 7_200_030, 7_200_060,
                                 7_200_090]  # fmt: skip
    assert out.v.tolist() == [5.0, 1.0, 2.0, 3.0, 9.0, -1.0, 4.0]
    assert len(m4_from_buckets(rollups.Buckets.empty(MS_PER_HOUR))) == 0


LEVELS = [5 * MS_PER_MINUTE, MS_PER_HOUR, MS_PER_DAY]


@pytest.mark.parametrize(
    ("span_ms", "max_points", "expected"),
    [
        (365 * MS_PER_DAY, 2_000, MS_PER_HOUR),  # 500 columns of 17.5 h
        (5 * 365 * MS_PER_DAY, 400, MS_PER_DAY),  # 100 columns of 18 days
        (30 * MS_PER_DAY, 2_000, MS_PER_HOUR),  # 500 columns of 86 min
        (7 * MS_PER_DAY, 2_000, 5 * MS_PER_MINUTE),  # 500 columns of 20 min
        (MS_PER_DAY, 2_000, None),  # 500 columns of 173 s: raw
        (500 * MS_PER_HOUR, 2_000, MS_PER_HOUR),  # exactly one hour per column
        (500 * MS_PER_HOUR - 1, 2_000, 5 * MS_PER_MINUTE),  # a hair under
        (500 * MS_PER_HOUR, 2_003, MS_PER_HOUR),  # 2003 // 4 is still 500 columns
    ],
)
def test_choose_level(span_ms: int, max_points: int, expected: int | None) -> None:
    start = 1_735_689_600_000
    assert choose_level(start, start + span_ms, max_points, LEVELS) == expected
    assert choose_level(start, start + span_ms, max_points, LEVELS[::-1]) == expected


def test_choose_level_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="empty range"):
        choose_level(5, 5, 2_000, LEVELS)
    with pytest.raises(ValueError, match="at least 4"):
        choose_level(0, MS_PER_DAY, 3, LEVELS)
    assert choose_level(0, MS_PER_DAY, 2_000, []) is None


@FAST
@given(
    st.integers(-(10**12), 10**12),
    st.integers(1, 400 * MS_PER_DAY),
    st.integers(8, 5000),
    st.sampled_from([MS_PER_HOUR, MS_PER_DAY]),
)
def test_m4_width_fits_every_overlapping_bucket_in_the_budget(
    start: int, span: int, max_points: int, level: int
) -> None:
    end = start + span
    width = m4_width(start, end, max_points, level)
    columns = max_points // 4
    assert width % level == 0
    assert (end - 1) // width - start // width + 1 <= columns
    # never wider than needed for one column fewer (about one pixel)
    assert width <= max(level, -(-span // max(1, columns - 1)) + level)
