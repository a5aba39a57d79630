"""Rollups: per-interval bucket statistics that merge exactly (count, sum, sumsq, min, max, ...).

Buckets are half-open ``[start_ms, start_ms + width_ms)`` on a grid of ``width_ms`` slots
starting at ``origin_ms`` (the epoch unless told: stored rollups are epoch-aligned; ISO
weeks use Monday 1970-01-05) and sparse: a bucket exists only when it holds at least one
non-NaN sample, so gaps in the data stay gaps in every rollup. Each bucket keeps the
times of its first, last, minimum and maximum samples, so a chart drawn from buckets
shows only real samples. Every statistic is computed with ``ufunc.reduceat`` over the
sample arrays; nothing loops over samples in Python.

A range that does not start and end on the grid has partial buckets at its edges:
:func:`compose` builds them exactly from the raw samples of the edge spans
(:func:`split_edges`) around the whole stored buckets of the interior, and stamps a
clipped first bucket at the range start (:func:`clip_start`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tsgate.series.codec import CodecError, pack_columns, unpack_columns
from tsgate.series.model import Series, TimeArray, ValueArray

CountArray = npt.NDArray[np.int64]

Range = tuple[int, int]

_INT_FIELDS = ("start_ms", "count", "first_ms", "last_ms", "min_ms", "max_ms")
_FLOAT_FIELDS = ("sum", "sumsq", "min", "max", "first", "last")
ARRAY_FIELDS = _INT_FIELDS + _FLOAT_FIELDS


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
    min_ms: TimeArray  # time of the bucket's (first) minimum sample
    max_ms: TimeArray  # time of the bucket's (first) maximum sample

    @classmethod
    def empty(cls, width_ms: int) -> Buckets:
        arrays = {f: np.empty(0, dtype=np.int64) for f in _INT_FIELDS}
        arrays |= {f: np.empty(0, dtype=np.float64) for f in _FLOAT_FIELDS}
        return _build(width_ms, arrays)

    def __len__(self) -> int:
        return int(self.start_ms.size)

    def take(self, index: npt.NDArray[np.intp] | npt.NDArray[np.bool_] | slice) -> Buckets:
        """The buckets selected by ``index`` (positions, mask or slice), same width."""
        return _build(self.width_ms, {f: getattr(self, f)[index] for f in ARRAY_FIELDS})


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
        min_ms=arrays["min_ms"],
        max_ms=arrays["max_ms"],
    )


def _check_width(width_ms: int) -> None:
    if width_ms <= 0:
        raise ValueError(f"width_ms must be positive, got {width_ms}")


def _segment_starts(keys: TimeArray) -> npt.NDArray[np.intp]:
    """Index where each run of equal (already sorted) keys begins: the ``reduceat`` offsets."""
    change = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    return np.concatenate(([0], change)).astype(np.intp)


def _first_equal(
    v: ValueArray, starts: npt.NDArray[np.intp], target: ValueArray
) -> npt.NDArray[np.intp]:
    """Per segment, the index of its first element equal to the segment's ``target``.

    ``target`` is each segment's min or max, so every segment has a match (no NaNs here).
    """
    counts = np.diff(np.append(starts, v.size))
    hits = np.flatnonzero(v == np.repeat(target, counts))
    segment = np.searchsorted(starts, hits, side="right") - 1
    first = np.append(True, segment[1:] != segment[:-1])
    found: npt.NDArray[np.intp] = hits[first]
    return found


def drop_nan(s: Series) -> tuple[TimeArray, ValueArray]:
    """Times and values of the non-NaN samples; no copy when there is nothing to drop."""
    nan = np.isnan(s.v)
    if not bool(nan.any()):
        return s.t_ms, s.v
    return s.t_ms[~nan], s.v[~nan]


def bucketize(s: Series, width_ms: int, origin_ms: int = 0) -> Buckets:
    """Bucket a series by ``width_ms`` slots from ``origin_ms``; NaN samples are ignored,
    all-NaN buckets vanish."""
    _check_width(width_ms)
    t, v = drop_nan(s)
    if t.size == 0:
        return Buckets.empty(width_ms)
    # Slot numbers, not slot starts: ``//`` is cheaper than ``t - t % w`` on millions of
    # samples, and floors correctly before the origin.
    slots = (t - origin_ms) // width_ms if origin_ms else t // width_ms
    starts = _segment_starts(slots)
    ends = np.append(starts[1:], t.size) - 1
    low = np.minimum.reduceat(v, starts)
    high = np.maximum.reduceat(v, starts)
    return Buckets(
        width_ms=width_ms,
        start_ms=slots[starts] * width_ms + origin_ms,
        count=np.diff(np.append(starts, t.size)).astype(np.int64),
        sum=np.add.reduceat(v, starts),
        sumsq=np.add.reduceat(v * v, starts),
        min=low,
        max=high,
        first=v[starts],
        last=v[ends],
        first_ms=t[starts],
        last_ms=t[ends],
        min_ms=t[_first_equal(v, starts, low)],
        max_ms=t[_first_equal(v, starts, high)],
    )


def coarsen(b: Buckets, width_ms: int, origin_ms: int = 0) -> Buckets:
    """Re-bucket to a wider grid: ``width_ms`` (a multiple of ``b.width_ms``) from
    ``origin_ms`` (on ``b``'s epoch-aligned grid); exact up to float summation.

    A bucket of ``b`` whose start was clipped (:func:`clip_start`) still lands in the
    wide bucket holding it.
    """
    _check_width(width_ms)
    if width_ms % b.width_ms:
        raise ValueError(f"width {width_ms} ms is not a multiple of {b.width_ms} ms")
    if origin_ms % b.width_ms:
        raise ValueError(f"origin {origin_ms} ms is not on the {b.width_ms} ms grid")
    if len(b) == 0:
        return Buckets.empty(width_ms)
    keys = (b.start_ms - origin_ms) // width_ms * width_ms + origin_ms
    return _regroup(b, keys, width_ms)


def _regroup(b: Buckets, keys: TimeArray, width_ms: int) -> Buckets:
    """Merge runs of ``b``'s buckets sharing a key (ascending) into one bucket each."""
    starts = _segment_starts(keys)
    ends = np.append(starts[1:], len(b)) - 1
    low = np.minimum.reduceat(b.min, starts)
    high = np.maximum.reduceat(b.max, starts)
    # the first child holding the extreme has the first such sample (children are in order)
    return Buckets(
        width_ms=width_ms,
        start_ms=keys[starts],
        count=np.add.reduceat(b.count, starts),
        sum=np.add.reduceat(b.sum, starts),
        sumsq=np.add.reduceat(b.sumsq, starts),
        min=low,
        max=high,
        first=b.first[starts],
        last=b.last[ends],
        first_ms=b.first_ms[starts],
        last_ms=b.last_ms[ends],
        min_ms=b.min_ms[_first_equal(b.min, starts, low)],
        max_ms=b.max_ms[_first_equal(b.max, starts, high)],
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
    arrays = {f: np.concatenate([getattr(p, f) for p in pieces]) for f in ARRAY_FIELDS}
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


def clip_start(b: Buckets, start_ms: int) -> Buckets:
    """Stamp a first bucket that begins before ``start_ms`` at ``start_ms``.

    The answer to a range ``[start, end)`` stamps every bucket inside it: a partial first
    bucket at ``max(bucket_start, start)``, every other bucket at its grid start.
    """
    if len(b) == 0 or int(b.start_ms[0]) >= start_ms:
        return b
    stamps = b.start_ms.copy()
    stamps[0] = start_ms
    return dataclasses.replace(b, start_ms=stamps)


def split_edges(start_ms: int, end_ms: int, level_ms: int) -> tuple[list[Range], Range | None]:
    """Split ``[start_ms, end_ms)`` into raw edge spans and an interior of whole
    ``level_ms`` buckets (epoch-aligned): ``(edges, interior or None)``.

    The edges are the parts before the first and after the last whole bucket (none when
    the range is aligned); a range within one bucket is all edge.
    """
    _check_width(level_ms)
    if end_ms <= start_ms:
        return [], None
    inner_start = -(-start_ms // level_ms) * level_ms
    inner_end = end_ms // level_ms * level_ms
    if inner_start >= inner_end:
        return [(start_ms, end_ms)], None
    edges = [r for r in ((start_ms, inner_start), (inner_end, end_ms)) if r[0] < r[1]]
    return edges, (inner_start, inner_end)


def compose(
    interior: Buckets,
    edges: Sequence[Series],
    width_ms: int,
    start_ms: int,
    origin_ms: int = 0,
) -> Buckets:
    """The exact buckets of a range from stored ``interior`` buckets (whole buckets of one
    level, epoch-aligned) and the raw samples of its ``edges`` (:func:`split_edges`).

    Each edge is bucketed at the interior's level and joined with it (they never share a
    bucket), the whole is coarsened to ``width_ms`` from ``origin_ms``, and a clipped first
    bucket is stamped at ``start_ms``: every statistic counts exactly the samples in range.
    """
    level_ms = interior.width_ms
    parts = [interior, *(bucketize(e, level_ms) for e in edges)]
    joined = concat(parts)
    if width_ms != level_ms or origin_ms % width_ms:
        joined = coarsen(joined, width_ms, origin_ms)
    return clip_start(joined, start_ms)


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
    columns = {f: getattr(b, f) for f in ARRAY_FIELDS}
    return pack_columns({"width_ms": np.array([b.width_ms], dtype=np.int64), **columns})


def unpack(data: bytes) -> Buckets:
    """The inverse of :func:`pack`; :class:`CodecError` when the blob is not a bucket set."""
    columns = unpack_columns(data)
    missing = {"width_ms", *ARRAY_FIELDS} - columns.keys()
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
