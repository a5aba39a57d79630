"""Data quality of points over a range, from their hourly buckets alone.

Hourly buckets of exactly the samples in ``[start, end)`` (count, min, max and the times of
each hour's first and last sample) are enough for what an engineer asks first:

- **coverage**: samples received against the point's cadence (``collect_interval``);
- **longest gap** between consecutive samples, and from the range's ends to the first
  and last sample: two consecutive samples in different hours are consecutive buckets'
  last and first, so every gap of an hour or more is found exactly (a shorter gap inside
  one hour is not seen; the longest gap is then reported from hour boundaries only);
- **stale**: time since the last sample, against a threshold;
- **flatline hours**: hours with at least two samples whose max - min is within a tolerance;
- **out-of-range hours**: hours whose min or max lies outside the point's bounds.

Every figure is computed at once for many points over an :class:`HourFrame` (one row of
hours per point), with numpy and no loop over points or hours.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from tsgate.core.kinds import MODES, ON_CADENCE, PointKinds
from tsgate.core.model import MS_PER_HOUR, MS_PER_MINUTE, Series
from tsgate.core.rollups import Buckets, drop_nan

DEFAULT_CADENCE_S = 300  # when the catalog has no collect_interval for a point
_LOW_TAGS = ("minVal", "min_val", "min")  # Project Haystack names first
_HIGH_TAGS = ("maxVal", "max_val", "max")


# a chart's gaps: holes longer than three reporting intervals of a 5-minute point (the
# hole threshold of the chunk periods)
GAP_MS = 15 * MS_PER_MINUTE
GAP_CADENCES = 3  # a sampled point: a silence longer than this many reporting intervals
# a point reporting on change (COV, binary, multistate) is silent by design while its
# value holds, up to its heartbeat (a kv tag, in seconds), else this one (BACnet
# gateways and the ACE collector commonly send an hourly one)
DEFAULT_HEARTBEAT_MS = MS_PER_HOUR
HEARTBEAT_SLACK = 1.5  # a silence up to this many heartbeats is normal (a late report)
_HEARTBEAT_TAGS = ("heartbeat", "hisHeartbeat", "heartbeat_s", "cov_heartbeat")


def holds(kind: str, mode: str) -> bool:
    """Whether a point's value holds until its next sample: it reports on change."""
    return mode == "cov" or kind != "analog"


def gap_limit_ms(
    kind: str,
    mode: str,
    cadence_ms: int,
    *,
    heartbeat_ms: int | None = None,
    floor_ms: int = GAP_MS,
    observed_cadence_ms: int | None = None,
) -> int:
    """A silence longer than this is a gap in a point's data (a chart's gap band, a gap of
    ``/api/quality``): for a sampled analog point :data:`GAP_CADENCES` reporting intervals
    (``cadence_ms``, the catalog's); for a point whose value holds between reports (COV,
    binary, multistate) :data:`HEARTBEAT_SLACK` heartbeats (its own, else
    :data:`DEFAULT_HEARTBEAT_MS`) or, when shorter, :data:`GAP_CADENCES` intervals of the
    regular ``observed_cadence_ms`` its stored periods over the range judged show while
    its value holds (:func:`~tsgate.core.kinds.judged_cadence_ms`: a fan status polled
    every 5 minutes, 15 minutes; a point heartbeating hourly keeps 1.5 heartbeats, and
    one whose changes break the beat shows no cadence), never less than ``floor_ms``. An
    observed cadence within :data:`~tsgate.core.kinds.ON_CADENCE` of ``cadence_ms`` is
    that one (a poller's jitter aside, the point keeps its declared interval)."""
    if not holds(kind, mode):
        return GAP_CADENCES * cadence_ms
    beat = heartbeat_ms if heartbeat_ms and heartbeat_ms > 0 else DEFAULT_HEARTBEAT_MS
    held = int(HEARTBEAT_SLACK * beat)
    if observed_cadence_ms is not None and observed_cadence_ms > 0:
        if abs(observed_cadence_ms - cadence_ms) <= ON_CADENCE * cadence_ms:
            observed_cadence_ms = cadence_ms
        held = min(held, GAP_CADENCES * observed_cadence_ms)
    return max(floor_ms, held)


def heartbeat_ms_of(point: Mapping[str, Any]) -> int | None:
    """The heartbeat a catalog point's kv tags give (seconds, a positive number), if any."""
    tags = point.get("kv_tags")
    if not isinstance(tags, Mapping):
        return None
    seconds = _tag_number(tags, _HEARTBEAT_TAGS)
    return int(seconds * 1000) if seconds is not None and seconds > 0 else None


def gaps(
    firsts: npt.NDArray[np.int64],
    lasts: npt.NDArray[np.int64],
    span: tuple[int, int],
    min_ms: int = GAP_MS,
) -> list[tuple[int, int]]:
    """The spans longer than ``min_ms`` without a sample in ``span`` (``[start, until)``),
    from the first and last sample times of consecutive buckets (a raw sample is a bucket
    of one): each runs from the sample before it (or ``start``) to the sample after it
    (or ``until``). Only a gap inside one bucket is not seen: every gap longer than the
    buckets' width is listed."""
    start, until = span
    lefts = np.concatenate(([start], lasts))
    rights = np.concatenate((firsts, [until]))
    found = np.flatnonzero(rights - lefts > min_ms)
    return [(int(lefts[i]), int(rights[i])) for i in found]


def sample_gaps(s: Series, span: tuple[int, int], min_ms: int = GAP_MS) -> list[tuple[int, int]]:
    """:func:`gaps` of raw samples (NaN samples, which no rollup counts, are no samples)."""
    t, _ = drop_nan(s)
    return gaps(t, t, span, min_ms)


def bucket_gaps(b: Buckets, span: tuple[int, int], min_ms: int = GAP_MS) -> list[tuple[int, int]]:
    return gaps(b.first_ms, b.last_ms, span, min_ms)


@dataclass(frozen=True, slots=True)
class PointProfile:
    """What quality needs of a catalog point: its cadence, plausible range and kind."""

    name: str
    collects: bool
    cadence_s: int  # ``collect_interval``, else DEFAULT_CADENCE_S
    unit: Any  # the ``unit`` kv tag as given
    kind: str
    mode: str
    low: float | None  # from the ``minVal``/``maxVal`` kv tags
    high: float | None
    # no tag or override fixes the mode: the reporting pattern observed decides it
    observed_decides: bool = False
    heartbeat_ms: int | None = None  # from a ``heartbeat`` kv tag (seconds)

    def mode_given(self, observed: str | None) -> str:
        """The mode, given the one the point's reporting pattern showed (if any)."""
        return observed if self.observed_decides and observed in MODES else self.mode

    def gap_ms(
        self, mode: str, floor_ms: int = GAP_MS, observed_cadence_ms: int | None = None
    ) -> int:
        """:func:`gap_limit_ms` of this point in ``mode`` (see :meth:`mode_given`), given
        the regular cadence its periods judged show (if any)."""
        return gap_limit_ms(
            self.kind,
            mode,
            self.cadence_s * 1000,
            heartbeat_ms=self.heartbeat_ms,
            floor_ms=floor_ms,
            observed_cadence_ms=observed_cadence_ms,
        )


def profile_of(point: Mapping[str, Any], kinds: PointKinds) -> PointProfile:
    interval = point.get("collect_interval")
    cadence = (
        interval
        if isinstance(interval, int) and not isinstance(interval, bool) and interval > 0
        else DEFAULT_CADENCE_S
    )
    tags = point.get("kv_tags")
    tags = tags if isinstance(tags, dict) else {}
    kind, mode = kinds.describe(point)
    decides = kinds.describe(point, "cov")[1] != kinds.describe(point, "sampled")[1]
    return PointProfile(
        str(point.get("name")),
        bool(point.get("collect_enabled")),
        cadence,
        tags.get("unit"),
        kind,
        mode,
        _tag_number(tags, _LOW_TAGS),
        _tag_number(tags, _HIGH_TAGS),
        decides,
        heartbeat_ms_of(point),
    )


def _tag_number(tags: Mapping[str, Any], keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = tags.get(key)
        number: float | None = None
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            try:
                number = float(value)
            except ValueError:
                number = None
        if number is not None and math.isfinite(number):
            return number
    return None


IntMatrix = npt.NDArray[np.int64]
FloatMatrix = npt.NDArray[np.float64]


@dataclass(frozen=True)
class HourFrame:
    """Hourly buckets of many points on one grid of ``hours`` epoch-aligned hours from
    ``start_ms``: row ``i`` is point ``i``, column ``j`` the hour ``start_ms + j h``. An
    hour without samples has ``count`` 0 (its other cells mean nothing)."""

    start_ms: int
    count: IntMatrix
    min: FloatMatrix
    max: FloatMatrix
    first_ms: IntMatrix
    last_ms: IntMatrix

    @property
    def hours(self) -> int:
        return int(self.count.shape[1])

    @property
    def nbytes(self) -> int:
        return sum(
            int(a.nbytes) for a in (self.count, self.min, self.max, self.first_ms, self.last_ms)
        )

    def put_rows(self, rows: npt.NDArray[np.intp], other: HourFrame) -> None:
        """Replace ``rows`` (in order) over the hours of ``other`` (some of this frame's)
        by the rows of ``other``."""
        lo = (other.start_ms - self.start_ms) // MS_PER_HOUR
        if lo < 0 or lo + other.hours > self.hours:
            raise ValueError("the other frame's hours are not this frame's")
        for name in ("count", "min", "max", "first_ms", "last_ms"):
            getattr(self, name)[rows[:, None], np.arange(lo, lo + other.hours)] = getattr(
                other, name
            )

    def copy(self) -> HourFrame:
        return HourFrame(
            self.start_ms,
            self.count.copy(),
            self.min.copy(),
            self.max.copy(),
            self.first_ms.copy(),
            self.last_ms.copy(),
        )

    @classmethod
    def of(cls, parts: Sequence[Buckets], start_ms: int, hours: int) -> HourFrame:
        """The frame of hourly ``parts`` (one per point, buckets starting in the frame's
        hours); ``start_ms`` must be on the hour."""
        if start_ms % MS_PER_HOUR:
            raise ValueError(f"an hour frame starts on the hour, not at {start_ms}")
        if any(b.width_ms != MS_PER_HOUR for b in parts):
            raise ValueError("an hour frame needs hourly buckets")
        shape = (len(parts), hours)
        frame = cls(
            start_ms,
            np.zeros(shape, dtype=np.int64),
            np.full(shape, np.nan),
            np.full(shape, np.nan),
            np.zeros(shape, dtype=np.int64),
            np.zeros(shape, dtype=np.int64),
        )
        filled = [(i, b) for i, b in enumerate(parts) if len(b)]
        if not filled:
            return frame
        rows = np.repeat([i for i, _ in filled], [len(b) for _, b in filled])
        columns = (np.concatenate([b.start_ms for _, b in filled]) - start_ms) // MS_PER_HOUR
        if columns.size and (int(columns.min()) < 0 or int(columns.max()) >= hours):
            raise ValueError("buckets outside the frame's hours")
        for name in ("count", "min", "max", "first_ms", "last_ms"):
            getattr(frame, name)[rows, columns] = np.concatenate(
                [getattr(b, name) for _, b in filled]
            )
        return frame


@dataclass(frozen=True)
class Quality:
    name: str
    samples: int
    expected: int  # samples the cadence promises over the range (up to now)
    coverage_pct: float  # samples / expected, at most 100
    longest_gap_ms: int
    last_ms: int | None  # time of the last sample in range
    stale_ms: int | None  # now - last sample, when the range reaches now
    stale: bool
    flatline_hours: int
    hours: int  # hours holding at least one sample
    out_of_range_hours: int = 0
    gaps: int = 0  # silences longer than the point's gap limit (as a chart's gap bands)
    gap_ms: int = 0  # the time they span

    @property
    def missing(self) -> bool:
        return self.samples == 0


BoolArray = npt.NDArray[np.bool_]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Assessed:
    """The :class:`Quality` figures of many points as arrays (element ``i`` is point
    ``i``), so that a whole site is judged and answered without a loop over points.
    ``last_ms`` and ``stale_ms`` mean nothing where ``samples`` is 0, ``stale_ms``
    nothing where ``live`` is false (the range ended before the point was judged: a past
    range has no staleness)."""

    samples: IntArray
    expected: IntArray
    coverage_pct: FloatArray
    longest_gap_ms: IntArray
    last_ms: IntArray
    stale_ms: IntArray
    stale: BoolArray
    flatline_hours: IntArray
    hours: IntArray
    out_of_range_hours: IntArray
    live: BoolArray
    gaps: IntArray  # silences longer than the point's gap limit
    gap_ms: IntArray  # the time they span

    def __len__(self) -> int:
        return int(self.samples.size)

    @property
    def missing(self) -> BoolArray:
        missing: BoolArray = self.samples == 0
        return missing

    def items(self, names: Sequence[str]) -> list[Quality]:
        """One :class:`Quality` per point (``names`` parallel to the arrays)."""
        reported = (~self.missing).tolist()
        live = self.live.tolist()
        last = self.last_ms.tolist()
        stale_ms = self.stale_ms.tolist()
        return [
            Quality(
                name,
                samples,
                expected,
                coverage,
                longest,
                last[i] if reported[i] else None,
                stale_ms[i] if reported[i] and live[i] else None,
                stale,
                flat,
                hours,
                out,
                gap_count,
                gap_time,
            )
            for i, (
                name,
                samples,
                expected,
                coverage,
                longest,
                stale,
                flat,
                hours,
                out,
                gap_count,
                gap_time,
            ) in (
                enumerate(
                    zip(
                        names,
                        self.samples.tolist(),
                        self.expected.tolist(),
                        self.coverage_pct.tolist(),
                        self.longest_gap_ms.tolist(),
                        self.stale.tolist(),
                        self.flatline_hours.tolist(),
                        self.hours.tolist(),
                        self.out_of_range_hours.tolist(),
                        self.gaps.tolist(),
                        self.gap_ms.tolist(),
                        strict=True,
                    )
                )
            )
        ]

    @classmethod
    def concat(cls, parts: Sequence[Assessed]) -> Assessed:
        """The points of ``parts`` (at least one), in order."""
        return cls(
            **{
                f.name: np.concatenate([getattr(p, f.name) for p in parts])
                for f in dataclasses.fields(cls)
            }
        )


def assess(
    name: str,
    hourly: Buckets,
    span: tuple[int, int],
    now_ms: int,
    *,
    cadence_ms: int,
    stale_after_ms: int,
    flat_tolerance: float = 0.0,
    bounds: tuple[float | None, float | None] = (None, None),
    gap_ms: int | None = None,
    held: bool = False,
) -> Quality:
    """The quality of one point from its hourly buckets of exactly the samples in ``span``."""
    if hourly.width_ms != MS_PER_HOUR:
        raise ValueError(f"quality needs hourly buckets, got {hourly.width_ms} ms")
    first = span[0] // MS_PER_HOUR * MS_PER_HOUR
    hours = max(1, -(-span[1] // MS_PER_HOUR) - first // MS_PER_HOUR)
    assessed = assess_frame(
        HourFrame.of([hourly], first, hours),
        span,
        now_ms,
        cadence_ms=[cadence_ms],
        stale_after_ms=[stale_after_ms],
        flat_tolerance=flat_tolerance,
        bounds=[bounds],
        gap_ms=None if gap_ms is None else [gap_ms],
        held=[held],
    )
    (quality,) = assessed.items([name])
    return quality


def assess_frame(
    frame: HourFrame,
    span: tuple[int, int],
    now_ms: int,
    *,
    cadence_ms: Sequence[int],
    stale_after_ms: Sequence[int],
    flat_tolerance: float = 0.0,
    bounds: Sequence[tuple[float | None, float | None]],
    gap_ms: Sequence[int] | None = None,
    held: Sequence[bool] | None = None,
) -> Assessed:
    """The quality of each point (row ``i`` of ``frame``) from hourly buckets of exactly
    its samples in ``span``.

    ``gap_ms``: per point, the silence longer than which is a gap (:func:`gap_limit_ms`;
    by default :data:`GAP_CADENCES` reporting intervals); every gap of an hour or more is
    found exactly. ``held``: per point, whether it reports on change (its value holds
    meanwhile); its coverage is then the share of the time outside gaps, not of the
    samples its cadence would promise."""
    cadence = np.asarray(cadence_ms, dtype=np.int64)
    if cadence.size and int(cadence.min()) <= 0:
        raise ValueError(f"cadence_ms must be positive, got {int(cadence.min())}")
    limit = GAP_CADENCES * cadence if gap_ms is None else np.asarray(gap_ms, dtype=np.int64)
    start_ms, end_ms = span
    until = max(start_ms, min(end_ms, now_ms + 1))  # nothing can have arrived after now
    count = frame.count
    rows = count.shape[0]
    holding = np.zeros(rows, dtype=np.bool_) if held is None else np.asarray(held, dtype=bool)
    has = count > 0
    samples = count.sum(axis=1)
    expected = (until - start_ms) // cadence
    with np.errstate(divide="ignore", invalid="ignore"):
        coverage = np.where(expected <= 0, 100.0, np.minimum(100.0, 100.0 * samples / expected))
    # the last sample before each hour (or the range's start), for the gap into the hour
    lasts = np.maximum.accumulate(np.where(has, frame.last_ms, start_ms), axis=1)
    # the silence before each hour's first sample (0 in an hour without samples)
    silences = np.zeros(count.shape, dtype=np.int64)
    if frame.hours:
        silences[:, 0] = np.where(has[:, 0], frame.first_ms[:, 0] - start_ms, 0)
    if frame.hours > 1:
        silences[:, 1:] = np.where(has[:, 1:], frame.first_ms[:, 1:] - lasts[:, :-1], 0)
    into = silences.max(axis=1, initial=0)
    last = lasts[:, -1] if frame.hours else np.full(rows, start_ms)
    tail = until - last
    longest = np.maximum(into, tail)
    inner_gaps = silences > limit[:, None]
    gap_count = np.count_nonzero(inner_gaps, axis=1) + (tail > limit)
    gap_time = np.where(inner_gaps, silences, 0).sum(axis=1) + np.where(tail > limit, tail, 0)
    by_time = 100.0 * (1.0 - gap_time / max(1, until - start_ms))
    if until <= start_ms:
        by_time = np.full(rows, 100.0)
    coverage = np.where(holding, by_time, coverage)
    # no sample at all: no coverage, whatever the point's rule
    coverage = np.where(samples == 0, np.where(expected > 0, 0.0, 100.0), coverage)
    with np.errstate(invalid="ignore"):  # an hour without samples holds NaN
        flat = np.count_nonzero((count >= 2) & (frame.max - frame.min <= flat_tolerance), axis=1)
    low = np.array([np.nan if b[0] is None else b[0] for b in bounds], dtype=np.float64)
    high = np.array([np.nan if b[1] is None else b[1] for b in bounds], dtype=np.float64)
    out = np.zeros(rows, dtype=np.int64)
    bounded = np.flatnonzero(~np.isnan(low) | ~np.isnan(high))  # the others: nothing to do
    if bounded.size:
        with np.errstate(invalid="ignore"):
            outside = has[bounded] & (
                (frame.min[bounded] < low[bounded, None])
                | (frame.max[bounded] > high[bounded, None])
            )
        out[bounded] = np.count_nonzero(outside, axis=1)
    filled = np.count_nonzero(has, axis=1)
    # staleness is about now: a past range is judged by its end
    live = np.full(rows, end_ms > now_ms)
    stale_ms = until - last
    reported = samples > 0
    # no sample at all: the whole range is one gap, and stale if it reaches now
    after = np.asarray(stale_after_ms, dtype=np.int64)
    stale = np.where(reported, stale_ms > after, True) & live
    return Assessed(
        samples=samples.astype(np.int64),
        expected=expected.astype(np.int64),
        coverage_pct=coverage.astype(np.float64),
        longest_gap_ms=longest.astype(np.int64),
        last_ms=last.astype(np.int64),
        stale_ms=stale_ms.astype(np.int64),
        stale=np.asarray(stale, dtype=bool),
        flatline_hours=flat.astype(np.int64),
        hours=filled.astype(np.int64),
        out_of_range_hours=out.astype(np.int64),
        live=live,
        gaps=gap_count.astype(np.int64),
        gap_ms=gap_time.astype(np.int64),
    )


@dataclass(frozen=True)
class Summary:
    points: int
    missing: int
    stale: int
    flatlined: int  # analog points with at least one flatline hour
    out_of_range: int  # points with at least one hour outside their bounds
    mean_coverage_pct: float
    samples: int


def summarise(items: Sequence[Quality], kinds: Mapping[str, str] | None = None) -> Summary:
    """:func:`summarise_assessed` of single items; ``kinds`` by point name."""
    kinds = kinds or {}
    return summarise_assessed(
        np.array([q.samples for q in items], dtype=np.int64),
        np.array([q.stale for q in items], dtype=bool),
        np.array([q.flatline_hours > 0 for q in items], dtype=bool),
        np.array([q.out_of_range_hours > 0 for q in items], dtype=bool),
        np.array([q.coverage_pct for q in items], dtype=np.float64),
        np.array([kinds.get(q.name, "analog") == "analog" for q in items], dtype=bool),
    )


def summary_of(assessed: Assessed, analog: BoolArray) -> Summary:
    """The :class:`Summary` of many points; ``analog``: which of them are analog."""
    return summarise_assessed(
        assessed.samples,
        assessed.stale,
        assessed.flatline_hours > 0,
        assessed.out_of_range_hours > 0,
        assessed.coverage_pct,
        analog,
    )


def summarise_assessed(
    samples: IntArray,
    stale: BoolArray,
    flat: BoolArray,
    out: BoolArray,
    coverage_pct: FloatArray,
    analog: BoolArray,
) -> Summary:
    """Counts over the points; an on/off or multistate point holding its value for hours
    is normal, so only analog points count as flatlined."""
    return Summary(
        points=int(samples.size),
        missing=int(np.count_nonzero(samples == 0)),
        stale=int(np.count_nonzero(stale)),
        flatlined=int(np.count_nonzero(flat & analog)),
        out_of_range=int(np.count_nonzero(out)),
        mean_coverage_pct=float(np.mean(coverage_pct)) if samples.size else 100.0,
        samples=int(samples.sum()),
    )
