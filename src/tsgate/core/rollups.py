"""Rollups: per-interval bucket statistics that merge exactly (count, sum, sumsq, min, max, ...).

Buckets are half-open ``[start_ms, start_ms + width_ms)`` on a grid of ``width_ms`` slots
starting at ``origin_ms`` (the epoch unless told: stored rollups are epoch-aligned; ISO
weeks use Monday 1970-01-05) and sparse: a bucket exists only when it holds at least one
non-NaN sample, so gaps in the data stay gaps in every rollup. Each bucket keeps the
times of its first, last, minimum and maximum samples, so a chart drawn from buckets
shows only real samples. Every statistic is computed with ``ufunc.reduceat`` over the
sample arrays; nothing loops over samples in Python.

Buckets may also begin at explicit starts (:func:`bucketize_at`, :func:`regroup_at`):
local days of 23 or 25 hours. The exact buckets of a range whose edges are not on the
grid are built in :mod:`tsgate.core.grids`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tsgate.core.codec import CodecError, pack_columns, unpack_columns
from tsgate.core.model import Series, TimeArray, ValueArray

CountArray = npt.NDArray[np.int64]

_INT_FIELDS = ("start_ms", "count", "first_ms", "last_ms", "min_ms", "max_ms", "rises")
_FLOAT_FIELDS = ("sum", "sumsq", "min", "max", "first", "last", "hold", "on_ms", "lin", "lin_ms")
ARRAY_FIELDS = _INT_FIELDS + _FLOAT_FIELDS
# a blob's format: 2 added the time in each state (``states``, ``state_ms``); a blob of
# another format is not read (its month is rebuilt from the chunks)
FORMAT = 2
# the time in each state is kept while the values are at most this many distinct integers
MAX_STATES = 32
# samples further apart than this are not joined by a line (the hole threshold of a point
# reporting every 5 minutes; see tsgate.series.periods.gap_limit_ms)
DEFAULT_GAP_MS = 15 * 60_000


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
    # between consecutive samples of the bucket, each value held until the next sample:
    hold: ValueArray  # the integral of the value over [first_ms, last_ms] (value x ms)
    on_ms: ValueArray  # the time it was non-zero ("on") within [first_ms, last_ms]
    rises: CountArray  # how often it went from zero to non-zero (off -> on: starts)
    # the distinct values (ascending) of a point with few integer values (on/off, modes),
    # and per bucket the time held in each within [first_ms, last_ms] (n x len(states));
    # a point with other values has no states (then buckets exist but states is empty)
    states: ValueArray
    state_ms: ValueArray
    # linear between consecutive samples of the bucket at most ``gap_ms`` apart: the
    # trapezoid integral (value x ms) and the time those pairs span; ``gap_ms`` is -1
    # where parts built with different limits were joined (then not known)
    lin: ValueArray
    lin_ms: ValueArray
    gap_ms: int = DEFAULT_GAP_MS

    @classmethod
    def empty(cls, width_ms: int, gap_ms: int = DEFAULT_GAP_MS) -> Buckets:
        arrays = {f: np.empty(0, dtype=np.int64) for f in _INT_FIELDS}
        arrays |= {f: np.empty(0, dtype=np.float64) for f in _FLOAT_FIELDS}
        return _build(width_ms, arrays, _NO_STATES, np.zeros((0, 0)), gap_ms)

    def __len__(self) -> int:
        return int(self.start_ms.size)

    @property
    def has_states(self) -> bool:
        """Whether the time in each state is known (every value a state; no buckets: yes)."""
        return len(self) == 0 or self.states.size > 0

    def take(self, index: npt.NDArray[np.intp] | npt.NDArray[np.bool_] | slice) -> Buckets:
        """The buckets selected by ``index`` (positions, mask or slice), same width."""
        arrays = {f: getattr(self, f)[index] for f in ARRAY_FIELDS}
        return _build(self.width_ms, arrays, self.states, self.state_ms[index], self.gap_ms)


_NO_STATES: ValueArray = np.empty(0, dtype=np.float64)


def _build(
    width_ms: int,
    arrays: Mapping[str, npt.NDArray[Any]],
    states: ValueArray,
    state_ms: ValueArray,
    gap_ms: int,
) -> Buckets:
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
        hold=arrays["hold"],
        on_ms=arrays["on_ms"],
        rises=arrays["rises"],
        states=states,
        state_ms=state_ms,
        lin=arrays["lin"],
        lin_ms=arrays["lin_ms"],
        gap_ms=gap_ms,
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
    hits = np.flatnonzero(v == np.repeat(target, np.diff(starts, append=v.size)))
    if hits.size == starts.size:  # no ties: one hit per segment
        return hits
    segment = np.searchsorted(starts, hits, side="right") - 1
    found: npt.NDArray[np.intp] = hits[np.append(True, segment[1:] != segment[:-1])]
    return found


def drop_nan(s: Series) -> tuple[TimeArray, ValueArray]:
    """Times and values of the non-NaN samples; no copy when there is nothing to drop."""
    nan = np.isnan(s.v)
    if not bool(nan.any()):
        return s.t_ms, s.v
    return s.t_ms[~nan], s.v[~nan]


def bucketize(
    s: Series, width_ms: int, origin_ms: int = 0, *, gap_ms: int = DEFAULT_GAP_MS
) -> Buckets:
    """Bucket a series by ``width_ms`` slots from ``origin_ms``; NaN samples are ignored,
    all-NaN buckets vanish. Samples at most ``gap_ms`` apart are joined by lines."""
    _check_width(width_ms)
    t, v = drop_nan(s)
    if t.size == 0:
        return Buckets.empty(width_ms, gap_ms)
    # Slot numbers, not slot starts: ``//`` is cheaper than ``t - t % w`` on millions of
    # samples, and floors correctly before the origin.
    slots = (t - origin_ms) // width_ms if origin_ms else t // width_ms
    starts = _segment_starts(slots)
    return _from_samples(t, v, starts, slots[starts] * width_ms + origin_ms, width_ms, gap_ms)


def bucketize_at(
    s: Series, bucket_starts: TimeArray, width_ms: int, *, gap_ms: int = DEFAULT_GAP_MS
) -> Buckets:
    """Bucket a series into buckets beginning at ``bucket_starts`` (ascending; each ends
    where the next begins, the last is open-ended), e.g. local days of uneven length;
    ``width_ms`` is their nominal width. Samples before the first start are an error."""
    _check_width(width_ms)
    t, v = drop_nan(s)
    if t.size == 0:
        return Buckets.empty(width_ms, gap_ms)
    slots = np.searchsorted(bucket_starts, t, side="right") - 1
    if int(slots[0]) < 0:
        raise ValueError("samples before the first bucket start")
    starts = _segment_starts(slots)
    return _from_samples(t, v, starts, bucket_starts[slots[starts]], width_ms, gap_ms)


def _from_samples(
    t: TimeArray,
    v: ValueArray,
    starts: npt.NDArray[np.intp],
    bucket_starts: TimeArray,
    width_ms: int,
    gap_ms: int,
) -> Buckets:
    """The buckets of sorted samples cut into segments at ``starts``."""
    ends = np.append(starts[1:], t.size) - 1
    low = np.minimum.reduceat(v, starts)
    high = np.maximum.reduceat(v, starts)
    # pair i is (sample i, sample i + 1); pairs that cross into the next bucket count there
    inside = np.ones(max(t.size - 1, 0), dtype=bool)
    inside[starts[1:] - 1] = False
    held_ms = np.diff(t) * inside
    joined_ms = np.where(held_ms <= gap_ms, held_ms, 0)  # pairs a line joins
    trapezoid = (v[:-1] + v[1:]) * 0.5 * joined_ms
    was_on = v[:-1] != 0
    rises = ~was_on & (v[1:] != 0) & inside
    states = _states_of(v)
    state_ms = np.zeros((len(starts), states.size))
    if states.size and t.size > 1:
        held = np.zeros((t.size, states.size))
        held[np.arange(t.size - 1), np.searchsorted(states, v[:-1])] = held_ms
        state_ms = np.add.reduceat(held, starts, axis=0)
    return Buckets(
        width_ms=width_ms,
        start_ms=bucket_starts.astype(np.int64, copy=False),
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
        hold=np.add.reduceat(np.append(v[:-1] * held_ms, 0.0), starts),
        on_ms=np.add.reduceat(np.append(was_on * held_ms, 0).astype(np.float64), starts),
        rises=np.add.reduceat(np.append(rises, False).astype(np.int64), starts),
        states=states,
        state_ms=state_ms,
        lin=np.add.reduceat(np.append(trapezoid, 0.0), starts),
        lin_ms=np.add.reduceat(np.append(joined_ms, 0).astype(np.float64), starts),
        gap_ms=gap_ms,
    )


def _states_of(v: ValueArray) -> ValueArray:
    """The distinct values of ``v`` when they are at most :data:`MAX_STATES` integers."""
    if v.size == 0 or not bool(np.all(v == np.round(v))) or float(np.abs(v).max()) > 2**31:
        return _NO_STATES
    found = np.unique(v)
    return found if found.size <= MAX_STATES else _NO_STATES


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
        return Buckets.empty(width_ms, b.gap_ms)
    keys = (b.start_ms - origin_ms) // width_ms * width_ms + origin_ms
    return _regroup(b, keys, width_ms)


def regroup_at(b: Buckets, bucket_starts: TimeArray, width_ms: int) -> Buckets:
    """Re-bucket into buckets beginning at ``bucket_starts`` (as :func:`bucketize_at`);
    each of ``b``'s buckets must lie inside one of them (the caller checks alignment)."""
    if len(b) == 0:
        return Buckets.empty(width_ms, b.gap_ms)
    slots = np.searchsorted(bucket_starts, b.start_ms, side="right") - 1
    if int(slots[0]) < 0:
        raise ValueError("buckets before the first bucket start")
    return _regroup(b, bucket_starts[slots], width_ms)


def _regroup(b: Buckets, keys: TimeArray, width_ms: int) -> Buckets:
    """Merge runs of ``b``'s buckets sharing a key (ascending) into one bucket each."""
    starts = _segment_starts(keys)
    ends = np.append(starts[1:], len(b)) - 1
    low = np.minimum.reduceat(b.min, starts)
    high = np.maximum.reduceat(b.max, starts)
    # between consecutive children of one group: the earlier one's last value is held
    # from its last sample to the later one's first (counted with the later child)
    joined = np.append(False, keys[1:] == keys[:-1])
    gap_ms = np.append(0, b.first_ms[1:] - b.last_ms[:-1]) * joined
    before = np.append(0.0, b.last[:-1])
    rise = joined & (before == 0) & (b.first != 0)
    lined_ms = np.where(gap_ms <= b.gap_ms, gap_ms, 0)  # joined children a line spans
    state_ms = b.state_ms
    if b.states.size and len(b) > 1:
        at = np.searchsorted(b.states, before)
        state_ms = b.state_ms.copy()
        rows = np.flatnonzero(joined)
        state_ms[rows, at[rows]] += gap_ms[rows]
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
        hold=np.add.reduceat(b.hold + before * gap_ms, starts),
        on_ms=np.add.reduceat(b.on_ms + (before != 0) * gap_ms, starts),
        rises=np.add.reduceat(b.rises + rise, starts),
        states=b.states,
        state_ms=np.add.reduceat(state_ms, starts, axis=0) if len(b) else state_ms,
        lin=np.add.reduceat(b.lin + (before + b.first) * 0.5 * lined_ms, starts),
        lin_ms=np.add.reduceat(b.lin_ms + lined_ms, starts),
        gap_ms=b.gap_ms,
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
    states, state_ms = _join_states(pieces)
    gaps = {p.gap_ms for p in pieces}
    joined = _build(width_ms, arrays, states, state_ms, gaps.pop() if len(gaps) == 1 else -1)
    start = joined.start_ms
    if bool(np.all(start[1:] > start[:-1])):
        return joined
    # Stable sort keeps part order among equal starts, so "last of a run" is the newest.
    order = np.argsort(start, kind="stable")
    sorted_start = start[order]
    newest = np.append(sorted_start[1:] != sorted_start[:-1], True)
    return joined.take(order[newest])


def _join_states(pieces: Sequence[Buckets]) -> tuple[ValueArray, ValueArray]:
    """The union of the pieces' states, and their state times in its columns (unknown
    when any piece's are, or when there are more than :data:`MAX_STATES`)."""
    rows = sum(len(p) for p in pieces)
    if not all(p.states.size for p in pieces):
        return _NO_STATES, np.zeros((rows, 0))
    states = np.unique(np.concatenate([p.states for p in pieces]))
    if states.size > MAX_STATES:
        return _NO_STATES, np.zeros((rows, 0))
    out = np.zeros((rows, states.size))
    row = 0
    for p in pieces:
        out[row : row + len(p), np.searchsorted(states, p.states)] = p.state_ms
        row += len(p)
    return states, out


def merge(a: Buckets, b: Buckets) -> Buckets:
    """Union of two bucket sets; ``b`` (newer data) wins where both have a bucket.

    Only colliding buckets are replaced: to replace a whole re-fetched period, including
    buckets that are now empty, crop that period out of ``a`` first.
    """
    return concat((a, b))


def crop(b: Buckets, start_ms: int, end_ms: int) -> Buckets:
    """Buckets whose *start* lies in ``[start_ms, end_ms)``."""
    lo, hi = b.start_ms.searchsorted((start_ms, end_ms)).tolist()
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
# time-weighted aggregates need the bucket ends too: see tsgate.core.weighted
AGGREGATES = frozenset(_AGGREGATES) | {"twavg", "duty", "runhours", "starts"}


def values(b: Buckets, agg: str) -> ValueArray:
    """One float64 value per bucket for ``agg`` in :data:`AGGREGATES`."""
    try:
        return _AGGREGATES[agg](b)
    except KeyError:
        raise ValueError(f"unknown aggregate {agg!r}; use one of {sorted(AGGREGATES)}") from None


def pack(b: Buckets) -> bytes:
    """A bucket set as one blob (see :func:`tsgate.core.codec.pack_columns`)."""
    columns = {f: getattr(b, f) for f in ARRAY_FIELDS}
    return pack_columns(
        {
            "format": np.array([FORMAT], dtype=np.int64),
            "width_ms": np.array([b.width_ms], dtype=np.int64),
            "gap_ms": np.array([b.gap_ms], dtype=np.int64),
            **columns,
            "states": b.states,
            "state_ms": b.state_ms.reshape(-1),
        }
    )


def unpack(data: bytes) -> Buckets:
    """The inverse of :func:`pack`; :class:`CodecError` when the blob is not a bucket set
    (:class:`StaleFormat` when it is one of another format)."""
    columns = unpack_columns(data)
    fmt = columns.get("format")
    if fmt is None or fmt.size != 1 or int(fmt[0]) != FORMAT:
        found = "none" if fmt is None or fmt.size != 1 else int(fmt[0])
        raise StaleFormat(f"rollup blob format {found}, not {FORMAT}")
    missing = {"width_ms", "gap_ms", "states", "state_ms", *ARRAY_FIELDS} - columns.keys()
    if missing:
        raise CodecError(f"rollup blob lacks columns {sorted(missing)}")
    width = columns["width_ms"]
    if width.size != 1 or width.dtype.kind not in "iu" or int(width[0]) <= 0:
        raise CodecError("rollup blob has no valid width")
    arrays = {f: columns[f].astype(np.int64, copy=False) for f in _INT_FIELDS}
    arrays |= {f: columns[f].astype(np.float64, copy=False) for f in _FLOAT_FIELDS}
    if len({a.size for a in arrays.values()}) != 1:
        raise CodecError("rollup blob columns have different lengths")
    states = columns["states"].astype(np.float64, copy=False)
    flat = columns["state_ms"].astype(np.float64, copy=False)
    n = arrays["start_ms"].size
    if flat.size != n * states.size or states.size > MAX_STATES:
        raise CodecError("rollup blob state times do not match its states")
    gap = columns["gap_ms"]
    if gap.size != 1 or gap.dtype.kind not in "iu":
        raise CodecError("rollup blob has no valid line gap")
    return _build(int(width[0]), arrays, states, flat.reshape(n, states.size), int(gap[0]))


class StaleFormat(CodecError):
    """A rollup blob written in another format: rebuilt from the chunks, never read."""


def as_series(b: Buckets, agg: str, name: str = "") -> Series:
    """One sample per bucket, stamped at the bucket start (e.g. upstream's 5-minute means)."""
    return Series(name, b.start_ms, values(b, agg))
