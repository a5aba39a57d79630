"""Data quality from hourly buckets against a brute-force pass over the raw samples."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tsgate.core import rollups
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE, Series
from tsgate.core.quality import assess, summarise

FAST = settings(max_examples=150, deadline=None)


@st.composite
def samples(draw: st.DrawFn) -> Series:
    """Five-minute reports with holes of minutes to days, and runs of a constant value."""
    n = draw(st.integers(0, 500))
    steps = draw(
        hnp.arrays(
            np.int64,
            n,
            elements=st.one_of(
                st.just(5 * MS_PER_MINUTE),
                st.integers(1, 3 * MS_PER_HOUR),
                st.integers(1, MS_PER_DAY),
            ),
        )
    )
    v = draw(hnp.arrays(np.float64, n, elements=st.sampled_from([70.0, 70.0, 70.5, 71.25])))
    return Series("p", draw(st.integers(0, 10 * MS_PER_DAY)) + np.cumsum(steps), v)


@FAST
@given(
    samples(),
    st.integers(0, 12 * MS_PER_DAY),
    st.integers(1, 6 * MS_PER_DAY),
    st.integers(0, 20 * MS_PER_DAY),
    st.sampled_from([60_000, 300_000, 900_000]),
    st.sampled_from([0.0, 0.5]),
)
def test_quality_equals_a_pass_over_the_raw_samples(
    s: Series, start: int, length: int, now: int, cadence: int, tolerance: float
) -> None:
    end = start + length
    until = max(start, min(end, now + 1))
    in_range = s.crop(start, until)  # the reader never returns samples after now
    got = assess(
        "p",
        rollups.bucketize(in_range, MS_PER_HOUR),
        (start, end),
        now,
        cadence_ms=cadence,
        stale_after_ms=3 * cadence,
        flat_tolerance=tolerance,
        bounds=(70.25, None) if tolerance else (None, 71.0),
    )
    t = in_range.t_ms
    assert got.samples == t.size
    assert got.expected == (until - start) // cadence
    if got.expected:
        assert got.coverage_pct == pytest.approx(min(100.0, 100 * t.size / got.expected))
    true_longest = int(np.diff(np.concatenate(([start], t, [until]))).max())
    if true_longest >= MS_PER_HOUR:
        assert got.longest_gap_ms == true_longest
    else:
        assert got.longest_gap_ms <= true_longest
    assert got.last_ms == (int(t[-1]) if t.size else None)
    if end > now and t.size:
        assert got.stale_ms == until - int(t[-1])
        assert got.stale == (until - int(t[-1]) > 3 * cadence)
    elif t.size:
        assert got.stale_ms is None and not got.stale
    hours = t // MS_PER_HOUR
    flat = 0
    for hour in np.unique(hours):
        v = in_range.v[hours == hour]
        flat += int(v.size >= 2 and v.max() - v.min() <= tolerance)
    assert got.flatline_hours == flat
    low, high = (70.25, None) if tolerance else (None, 71.0)
    outside = 0
    for hour in np.unique(hours):
        v = in_range.v[hours == hour]
        outside += int((low is not None and v.min() < low) or (high is not None and v.max() > high))
    assert got.out_of_range_hours == outside
    assert got.hours == np.unique(hours).size
    assert got.missing == (t.size == 0)


def test_a_point_without_samples_is_missing_and_stale_at_the_live_edge() -> None:
    empty = rollups.Buckets.empty(MS_PER_HOUR)
    live = assess("p", empty, (0, 2 * MS_PER_DAY), MS_PER_DAY, cadence_ms=300_000,
                  stale_after_ms=900_000)  # fmt: skip
    assert live.missing and live.stale and live.coverage_pct == 0.0
    assert live.longest_gap_ms == MS_PER_DAY + 1  # from the start to now
    past = assess("p", empty, (0, MS_PER_DAY), 5 * MS_PER_DAY, cadence_ms=300_000,
                  stale_after_ms=900_000)  # fmt: skip
    assert past.missing and not past.stale and past.longest_gap_ms == MS_PER_DAY
    summary = summarise([live, past])
    assert (summary.points, summary.missing, summary.stale, summary.samples) == (2, 2, 1, 0)
    with pytest.raises(ValueError, match="hourly"):
        assess("p", rollups.Buckets.empty(MS_PER_DAY), (0, 1), 0, cadence_ms=1, stale_after_ms=1)
    with pytest.raises(ValueError, match="cadence"):
        assess("p", empty, (0, 1), 0, cadence_ms=0, stale_after_ms=1)
