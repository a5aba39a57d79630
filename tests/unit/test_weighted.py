"""Time-weighted aggregates (previous-value hold) against a walk over the raw samples."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tsgate.series import calendar, grids, weighted
from tsgate.series.grids import Grid
from tsgate.series.model import MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE, Series

FAST = settings(max_examples=150, deadline=None)
T0 = 1_774_224_000_000  # 2026-03-23T00:00:00Z, a week before Berlin's spring DST change


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
        integral = on = 0.0
        for i in range(t.size):
            seg_end = t[i + 1] if i + 1 < t.size else until
            overlap = max(0, min(seg_end, c1) - max(t[i], begin))
            integral += v[i] * overlap
            on += (v[i] != 0) * overlap
        rises = sum(1 for i in range(1, t.size) if c0 <= t[i] < c1 and v[i - 1] == 0 and v[i] != 0)
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
    st.sampled_from(sorted(weighted.TIME_WEIGHTED)),
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
    with pytest.raises(ValueError, match="time-weighted"):
        weighted.values(b, "avg", ends, T0)
