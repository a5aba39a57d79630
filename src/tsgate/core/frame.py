"""Aligned frames: several points on one shared time index, gaps filled or flagged.

A frame is what a fault-detection rule or a pandas user wants: one row per interval
(epoch-aligned ``[t, t + width)``, every interval of the range present, empty or not),
one value column per point and, beside it, the point's coverage: the fraction of the
samples its collect interval promises that the interval actually holds (0 where it has
none, so a filled value is never mistaken for a measured one).

Fill: ``none`` leaves gaps NaN; ``previous`` carries the last value forward; ``linear``
interpolates between the values on either side (never beyond the first or last one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tsgate.core.model import Series, TimeArray, ValueArray

FILLS = ("none", "previous", "linear")


@dataclass(frozen=True)
class Frame:
    time_ms: TimeArray  # interval starts, ascending, evenly spaced
    names: tuple[str, ...]
    values: list[ValueArray]  # one per name, aligned with time_ms
    coverage: list[ValueArray]  # one per name, in [0, 1]

    @property
    def rows(self) -> int:
        return int(self.time_ms.size)


def index(start_ms: int, end_ms: int, width_ms: int) -> TimeArray:
    """Every interval start from the one holding ``start_ms`` up to before ``end_ms``."""
    first = start_ms - start_ms % width_ms
    return np.arange(first, end_ms, width_ms, dtype=np.int64)


def place(times: TimeArray, s: Series) -> ValueArray:
    """``s`` (stamped at interval starts) on ``times``; NaN where it has no interval."""
    out = np.full(times.size, np.nan)
    if len(s) == 0 or times.size == 0:
        return out
    width = int(times[1] - times[0]) if times.size > 1 else 1
    slot = (s.t_ms - times[0]) // width
    inside = (slot >= 0) & (slot < times.size)
    out[slot[inside]] = s.v[inside]
    return out


def fill(values: ValueArray, how: str) -> ValueArray:
    if how == "none":
        return values
    known = np.flatnonzero(~np.isnan(values))
    if known.size == 0:
        return values
    if how == "previous":
        # index of the last known value at or before each row (-1 before the first)
        last = np.maximum.accumulate(np.where(~np.isnan(values), np.arange(values.size), -1))
        return np.where(last >= 0, values[np.clip(last, 0, None)], np.nan)
    if how == "linear":
        rows = np.arange(values.size)
        filled = np.interp(rows, known, values[known])
        inside = (rows >= known[0]) & (rows <= known[-1])
        return np.where(inside, filled, np.nan)
    raise ValueError(f"unknown fill {how!r}; use one of {', '.join(FILLS)}")


def build(
    start_ms: int,
    end_ms: int,
    width_ms: int,
    names: Sequence[str],
    values: Sequence[Series],
    counts: Sequence[Series],
    expected: Sequence[float],
    how: str = "none",
) -> Frame:
    """A frame from per-point aggregates and sample counts (both stamped at interval
    starts, e.g. two chart reads), ``expected`` samples per interval for each point."""
    times = index(start_ms, end_ms, width_ms)
    placed = [fill(place(times, v), how) for v in values]
    coverage = [
        np.clip(np.nan_to_num(place(times, c), nan=0.0) / max(e, 1e-9), 0.0, 1.0)
        for c, e in zip(counts, expected, strict=True)
    ]
    return Frame(times, tuple(names), placed, coverage)
