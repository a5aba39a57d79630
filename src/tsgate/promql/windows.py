"""Sliding-window statistics at evaluation times, over raw samples or rollup buckets.

A window ending at ``t`` with range ``r`` holds, as in Prometheus, the raw samples with
``t - r < time <= t``. Over rollup buckets (used when ``t`` and ``r`` are whole bucket
widths) it holds the buckets starting in ``[t - r, t)``: the same samples unless one lies
exactly on a bucket edge. Every statistic is a ``searchsorted`` plus a ``reduceat`` or a
cumulative sum over the arrays; nothing loops over samples or windows in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from tsgate.core import rollups
from tsgate.core.model import Series, TimeArray, ValueArray

FUNCTIONS = ("avg", "min", "max", "sum", "count", "last", "stddev", "stdvar")


@dataclass(frozen=True)
class Cells:
    """Statistics per key (a sample, or a bucket), ascending by ``key_ms``."""

    key_ms: TimeArray
    count: npt.NDArray[np.int64]
    sum: ValueArray
    sumsq: ValueArray
    min: ValueArray
    max: ValueArray
    last: ValueArray
    last_ms: TimeArray
    right_closed: bool  # raw samples: (t - r, t]; buckets: [t - r, t)

    @classmethod
    def of_series(cls, s: Series) -> Cells:
        t, v = rollups.drop_nan(s)
        return cls(t, np.ones(t.size, dtype=np.int64), v, v * v, v, v, v, t, right_closed=True)

    @classmethod
    def of_buckets(cls, b: rollups.Buckets) -> Cells:
        return cls(
            b.start_ms,
            b.count,
            b.sum,
            b.sumsq,
            b.min,
            b.max,
            b.last,
            b.last_ms,
            right_closed=False,
        )

    @classmethod
    def joined(cls, parts: Sequence[Cells]) -> Cells:
        """Consecutive parts (ascending, not overlapping) as one, windowed as raw samples:
        every key of every part must lie inside the window it is reduced over."""

        def cat(field: str) -> npt.NDArray[Any]:
            return np.concatenate([getattr(p, field) for p in parts])

        return cls(
            key_ms=cat("key_ms"),
            count=cat("count"),
            sum=cat("sum"),
            sumsq=cat("sumsq"),
            min=cat("min"),
            max=cat("max"),
            last=cat("last"),
            last_ms=cat("last_ms"),
            right_closed=True,
        )

    def __len__(self) -> int:
        return int(self.key_ms.size)


def bounds(
    cells: Cells, times_ms: TimeArray, range_ms: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """``lo, hi`` per evaluation time: the window is ``cells[lo:hi]``."""
    side: Literal["left", "right"] = "right" if cells.right_closed else "left"
    lo = np.searchsorted(cells.key_ms, times_ms - range_ms, side=side)
    hi = np.searchsorted(cells.key_ms, times_ms, side=side)
    return lo.astype(np.intp), hi.astype(np.intp)


def _reduceat(
    ufunc: np.ufunc, arr: ValueArray, lo: npt.NDArray[np.intp], hi: npt.NDArray[np.intp]
) -> ValueArray:
    out = np.full(lo.size, np.nan)
    full = hi > lo
    if not bool(full.any()):
        return out
    index = np.empty(2 * int(full.sum()), dtype=np.intp)
    index[0::2], index[1::2] = lo[full], hi[full]
    # one padding element so a window ending at the last cell has a valid end index
    padded = np.append(arr, arr[:1])
    out[full] = ufunc.reduceat(padded, index)[0::2]
    return out


def reduce(
    cells: Cells, func: str, times_ms: TimeArray, range_ms: int, *, fresh_ms: int | None = None
) -> ValueArray:
    """``func`` over each window; NaN where a window is empty.

    ``fresh_ms`` (for ``last``): the last sample must also be newer than ``t - fresh_ms``,
    which is how a bare selector's lookback is answered from hourly buckets.
    """
    lo, hi = bounds(cells, times_ms, range_ms)
    counts = np.concatenate(([0], np.cumsum(cells.count)))
    n = (counts[hi] - counts[lo]).astype(np.float64)
    empty = n == 0
    if func == "count":
        return np.where(empty, np.nan, n)
    if func == "last":
        at = np.clip(hi - 1, 0, None)
        if not len(cells):
            return np.full(times_ms.size, np.nan)
        value = np.where(empty, np.nan, cells.last[at])
        if fresh_ms is not None:
            value = np.where(cells.last_ms[at] > times_ms - fresh_ms, value, np.nan)
        return value
    if func in ("min", "max"):
        return _reduceat(np.minimum if func == "min" else np.maximum, getattr(cells, func), lo, hi)
    total = _reduceat(np.add, cells.sum, lo, hi)
    if func == "sum":
        return total
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n
        if func == "avg":
            return mean
        if func in ("stddev", "stdvar"):
            variance = np.clip(_reduceat(np.add, cells.sumsq, lo, hi) / n - mean * mean, 0, None)
            return variance if func == "stdvar" else np.sqrt(variance)
    raise ValueError(f"unknown window function {func!r}; use one of {', '.join(FUNCTIONS)}")
