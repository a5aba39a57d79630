"""Rollups: per-interval bucket statistics that merge exactly (count, sum, sumsq, min, max, ...).

Buckets are epoch-aligned, half-open ``[start_ms, start_ms + width_ms)`` and sparse: a
bucket exists only when it holds at least one non-NaN sample, so gaps in the data stay
gaps in every rollup. Every statistic is computed with ``ufunc.reduceat`` over the
sample arrays; nothing loops over samples in Python.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tsgate.series.codec import CodecError, pack_columns, unpack_columns
from tsgate.series.model import Series, TimeArray, ValueArray

CountArray = npt.NDArray[np.int64]

_INT_FIELDS = ("start_ms", "count", "first_ms", "last_ms")
_FLOAT_FIELDS = ("sum", "sumsq", "min", "max", "first", "last")
_ARRAY_FIELDS = _INT_FIELDS + _FLOAT_FIELDS


@dataclass(frozen=True, slots=True)
class Buckets:
    """Parallel arrays, one element per non-empty bucket, ascending by ``start_ms``."""

    width_ms: int
    start_ms: TimeArray
    count: CountArray
    sum: ValueArray
    sumsq: ValueArray
    min: ValueArray
    max: ValueArray
    first: ValueArray
    last: ValueArray
    first_ms: TimeArray
    last_ms: TimeArray

    @classmethod
    def empty(cls, width_ms: int) -> Buckets:
        arrays = {f: np.empty(0, dtype=np.int64) for f in _INT_FIELDS}
        arrays |= {f: np.empty(0, dtype=np.float64) for f in _FLOAT_FIELDS}
        return _build(width_ms, arrays)

    def __len__(self) -> int:
        return int(self.start_ms.size)

    def take(self, index: npt.NDArray[np.intp] | npt.NDArray[np.bool_] | slice) -> Buckets:
        """The buckets selected by ``index`` (positions, mask or slice), same width."""
        return _build(self.width_ms, {f: getattr(self, f)[index] for f in _ARRAY_FIELDS})


def _build(width_ms: int, arrays: Mapping[str, npt.NDArray[Any]]) -> Buckets:
    # One keyword constructor so dict-shaped code paths stay type-checked field by field.
    return Buckets(
        width_ms=width_ms,
        start_ms=arrays["start_ms"],
        count=arrays["count"],
        sum=arrays["sum"],
        sumsq=arrays["sumsq"],
        min=arrays["min"],
        max=arrays["max"],
        first=arrays["first"],
        last=arrays["last"],
        first_ms=arrays["first_ms"],
        last_ms=arrays["last_ms"],
    )


def _check_width(width_ms: int) -> None:
    if width_ms <= 0:
        raise ValueError(f"width_ms must be positive, got {width_ms}")


def _segment_starts(keys: TimeArray) -> npt.NDArray[np.intp]:
    """Index where each run of equal (already sorted) keys begins: the ``reduceat`` offsets."""
    change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    return np.concatenate(([0], change)).astype(np.intp)


def drop_nan(s: Series) -> tuple[TimeArray, ValueArray]:
    """Times and values of the non-NaN samples; no copy when there is nothing to drop."""
    nan = np.isnan(s.v)
    if not bool(nan.any()):
        return s.t_ms, s.v
    return s.t_ms[~nan], s.v[~nan]


def bucketize(s: Series, width_ms: int) -> Buckets:
    """Bucket a series by ``width_ms``; NaN samples are ignored, all-NaN buckets vanish."""
    _check_width(width_ms)
    t, v = drop_nan(s)
    if t.size == 0:
        return Buckets.empty(width_ms)
    # Slot numbers, not slot starts: ``//`` is cheaper than ``t - t % w`` on millions of
    # samples, and floors correctly before 1970.
    slots = t // width_ms
    starts = _segment_starts(slots)
    ends = np.append(starts[1:], t.size) - 1
    return Buckets(
        width_ms=width_ms,
        start_ms=slots[starts] * width_ms,
        count=np.diff(np.append(starts, t.size)).astype(np.int64),
        sum=np.add.reduceat(v, starts),
        sumsq=np.add.reduceat(v * v, starts),
        min=np.minimum.reduceat(v, starts),
        max=np.maximum.reduceat(v, starts),
        first=v[starts],
        last=v[ends],
        first_ms=t[starts],
        last_ms=t[ends],
    )


def coarsen(b: Buckets, width_ms: int) -> Buckets:
    """Re-bucket to a wider width (a multiple of ``b.width_ms``); exact up to float summation."""
    _check_width(width_ms)
    if width_ms % b.width_ms:
        raise ValueError(f"width {width_ms} ms is not a multiple of {b.width_ms} ms")
    if len(b) == 0:
        return Buckets.empty(width_ms)
    keys = b.start_ms - b.start_ms % width_ms
    starts = _segment_starts(keys)
    ends = np.append(starts[1:], len(b)) - 1
    return Buckets(
        width_ms=width_ms,
        start_ms=keys[starts],
        count=np.add.reduceat(b.count, starts),
        sum=np.add.reduceat(b.sum, starts),
        sumsq=np.add.reduceat(b.sumsq, starts),
        min=np.minimum.reduceat(b.min, starts),
        max=np.maximum.reduceat(b.max, starts),
        first=b.first[starts],
        last=b.last[ends],
        first_ms=b.first_ms[starts],
        last_ms=b.last_ms[ends],
    )


def concat(parts: Sequence[Buckets]) -> Buckets:
    """Join bucket sets of one width; where starts collide the later part wins."""
    if not parts:
        raise ValueError("concat needs at least one part (the width comes from it)")
    width_ms = parts[0].width_ms
    if any(p.width_ms != width_ms for p in parts):
        raise ValueError(f"cannot join widths {sorted({p.width_ms for p in parts})}")
    pieces = [p for p in parts if len(p)]
    if len(pieces) <= 1:
        return pieces[0] if pieces else parts[0]
    arrays = {f: np.concatenate([getattr(p, f) for p in pieces]) for f in _ARRAY_FIELDS}
    joined = _build(width_ms, arrays)
    start = joined.start_ms
    if bool(np.all(start[1:] > start[:-1])):
        return joined
    # Stable sort keeps part order among equal starts, so "last of a run" is the newest.
    order = np.argsort(start, kind="stable")
    sorted_start = start[order]
    newest = np.append(sorted_start[1:] != sorted_start[:-1], True)
    return joined.take(order[newest])


def merge(a: Buckets, b: Buckets) -> Buckets:
    """Union of two bucket sets; ``b`` (newer data) wins where both have a bucket.

    Only colliding buckets are replaced: to replace a whole re-fetched period, including
    buckets that are now empty, crop that period out of ``a`` first.
    """
    return concat((a, b))


def crop(b: Buckets, start_ms: int, end_ms: int) -> Buckets:
    """Buckets whose *start* lies in ``[start_ms, end_ms)``."""
    lo = int(np.searchsorted(b.start_ms, start_ms, side="left"))
    hi = int(np.searchsorted(b.start_ms, end_ms, side="left"))
    return b if (lo, hi) == (0, len(b)) else b.take(slice(lo, max(lo, hi)))


def avg(b: Buckets) -> ValueArray:
    """Mean of each bucket (every bucket has ``count >= 1``)."""
    return b.sum / b.count


def stddev(b: Buckets) -> ValueArray:
    """Population standard deviation from ``sumsq / n - mean**2``.

    The one-pass formula cancels catastrophically when the spread is tiny next to the
    mean (a flat 70.0 °F reads as variance ±1e-12), so tiny negatives are clipped to 0
    before the square root; the absolute error stays around ``|mean| * sqrt(eps)``.
    """
    mean = avg(b)
    variance = b.sumsq / b.count - mean * mean
    return np.sqrt(np.clip(variance, 0.0, None))


_AGGREGATES: dict[str, Callable[[Buckets], ValueArray]] = {
    "avg": avg,
    "min": lambda b: b.min,
    "max": lambda b: b.max,
    "sum": lambda b: b.sum,
    "count": lambda b: b.count.astype(np.float64),
    "stddev": stddev,
    "first": lambda b: b.first,
    "last": lambda b: b.last,
}
AGGREGATES = frozenset(_AGGREGATES)


def values(b: Buckets, agg: str) -> ValueArray:
    """One float64 value per bucket for ``agg`` in :data:`AGGREGATES`."""
    try:
        return _AGGREGATES[agg](b)
    except KeyError:
        raise ValueError(f"unknown aggregate {agg!r}; use one of {sorted(AGGREGATES)}") from None


def pack(b: Buckets) -> bytes:
    """A bucket set as one blob (see :func:`tsgate.series.codec.pack_columns`)."""
    columns = {f: getattr(b, f) for f in _ARRAY_FIELDS}
    return pack_columns({"width_ms": np.array([b.width_ms], dtype=np.int64), **columns})


def unpack(data: bytes) -> Buckets:
    """The inverse of :func:`pack`; :class:`CodecError` when the blob is not a bucket set."""
    columns = unpack_columns(data)
    missing = {"width_ms", *_ARRAY_FIELDS} - columns.keys()
    if missing:
        raise CodecError(f"rollup blob lacks columns {sorted(missing)}")
    width = columns["width_ms"]
    if width.size != 1 or width.dtype.kind not in "iu" or int(width[0]) <= 0:
        raise CodecError("rollup blob has no valid width")
    arrays = {f: columns[f].astype(np.int64, copy=False) for f in _INT_FIELDS}
    arrays |= {f: columns[f].astype(np.float64, copy=False) for f in _FLOAT_FIELDS}
    if len({a.size for a in arrays.values()}) != 1:
        raise CodecError("rollup blob columns have different lengths")
    return _build(int(width[0]), arrays)


def as_series(b: Buckets, agg: str, name: str = "") -> Series:
    """One sample per bucket, stamped at the bucket start (e.g. upstream's 5-minute means)."""
    return Series(name, b.start_ms, values(b, agg))
