"""Chart-aware downsampling: MinMaxLTTB over raw samples, M4 over rollup buckets.

A chart of ``max_points`` points needs no more than that; what it must not lose is the
shape: the first and last sample, and the global extremes (an alarm spike that vanishes
when zooming out is a bug report).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from tsdownsample import MinMaxLTTBDownsampler

from tsgate.core.model import Series
from tsgate.core.rollups import Buckets, drop_nan

# first, last, global min, global max
MIN_POINTS = 4
# LTTB in tsdownsample asserts n_out >= 3 and panics (a BaseException) below it.
_LTTB_MIN_OUT = 3


class _Downsampler(Protocol):
    def downsample(self, x: Any, y: Any, *, n_out: int) -> npt.NDArray[np.uint64]: ...


# tsdownsample ships no type hints; this typed alias is the one place we vouch for it.
_minmax_lttb: Callable[[], _Downsampler] = MinMaxLTTBDownsampler


def minmax_lttb(s: Series, n_out: int) -> Series:
    """At most ``n_out`` samples of ``s`` (a subset, in order) that keep its visual shape.

    NaN samples are dropped first: they carry no value to draw, and the NaN-aware
    variant would spend output slots on them. tsdownsample's LTTB step can drop the
    global extremes (it keeps the *area*-best point per bucket), so it is asked for
    ``n_out - 2`` points and the arg-min and arg-max are added back.
    """
    if n_out < MIN_POINTS:
        raise ValueError(f"n_out must be at least {MIN_POINTS} (first, last, min, max)")
    if len(s) <= n_out:
        return s
    t, v = drop_nan(s)
    t, v = np.ascontiguousarray(t), np.ascontiguousarray(v)  # the Rust side needs contiguous
    if t.size <= n_out:
        return Series(s.name, t, v)
    if n_out - 2 >= _LTTB_MIN_OUT:
        chosen = _minmax_lttb().downsample(t, v, n_out=n_out - 2).astype(np.intp)
    else:
        chosen = np.array([0, t.size - 1], dtype=np.intp)
    # union1d sorts and de-duplicates, so the output stays strictly ascending in time.
    index = np.union1d(chosen, [int(np.argmin(v)), int(np.argmax(v))])
    return Series(s.name, t[index], v[index])


def m4_from_buckets(b: Buckets, name: str = "") -> Series:
    """The M4 polyline of a bucket set: first, min, max, last of each bucket.

    M4 (Jugel et al., VLDB 2014) draws pixel-exact when each bucket is no wider than a
    pixel column. Every emitted point is a real sample: the buckets keep the time of each
    one, so min and max are drawn where they happened, in time order within the bucket.
    A sample that is several of the four (a bucket of one sample, or a first sample that
    is also the minimum) is emitted once, so times are strictly ascending.
    """
    # first <= min, max <= last in time: only min and max may need swapping
    swap = b.max_ms < b.min_ms
    early_ms, late_ms = np.where(swap, b.max_ms, b.min_ms), np.where(swap, b.min_ms, b.max_ms)
    early, late = np.where(swap, b.max, b.min), np.where(swap, b.min, b.max)
    times = np.stack([b.first_ms, early_ms, late_ms, b.last_ms], axis=1)
    vals = np.stack([b.first, early, late, b.last], axis=1)
    keep = np.ones(times.shape, dtype=bool)
    keep[:, 1:] = times[:, 1:] != times[:, :-1]
    # row-major flattening keeps time order across buckets (they are disjoint, ascending)
    return Series(name, times[keep].astype(np.int64), vals[keep].astype(np.float64))


def choose_level(
    start_ms: int, end_ms: int, max_points: int, levels_ms: Sequence[int]
) -> int | None:
    """The coarsest rollup width no wider than one pixel column, or None for raw data.

    The chart has ``max_points // 4`` columns because M4 emits up to four points per
    column. Buckets are epoch-aligned, not column-aligned, so a bucket may straddle a
    column boundary; the drawing error stays under one pixel.
    """
    if end_ms <= start_ms:
        raise ValueError(f"empty range [{start_ms}, {end_ms})")
    columns = max_points // MIN_POINTS
    if columns < 1:
        raise ValueError(f"max_points must be at least {MIN_POINTS}, got {max_points}")
    # Integer test of ``level <= (end - start) / columns``: no float rounding at the edge.
    fitting = [level for level in levels_ms if level > 0 and level * columns <= end_ms - start_ms]
    return max(fitting, default=None)
