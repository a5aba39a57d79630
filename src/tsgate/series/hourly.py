"""Exact hourly buckets of many points at once, as :class:`HourFrame` rows, from the
hourly rollups: what ``/api/quality`` reads.

The rollups are read over the whole hours around the range, and the chunks behind them
are made whole over those hours first. An edge hour the range cuts is then exact as
stored when all its samples lie on one side of the cut (the usual case: the cut falls
between two reports); only the points whose first or last hour holds samples on both
sides are read raw over the part inside the range.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from tsgate.core import rollups
from tsgate.core.model import MS_PER_HOUR
from tsgate.core.quality import GAP_CADENCES, Assessed, HourFrame, PointProfile, assess_frame
from tsgate.lru import LRU
from tsgate.series.reader import ReadStats, SeriesReads

# cells (points x hours) of one frame: a request over many points and days is assessed
# in batches of points, so memory stays bounded (about 130 bytes per cell while read)
FRAME_CELLS = 600_000


FrameKey = tuple[str, str, bytes, int, int]  # site, data generation, points, first hour, hours
Mask = npt.NDArray[np.bool_]
BeforeRead = Callable[[Sequence[str], tuple[int, int]], Awaitable[None]]
# the points of a batch -> each one's gap limit (ms) and whether its value holds between
# samples; asked once the batch's samples are read (an observed sampling mode counts)
GapLimits = Callable[[Sequence[str]], Awaitable[tuple[Sequence[int], Sequence[bool]]]]


class QualityMemory(Protocol):
    """The frames and catalog profiles ``/api/quality`` keeps between requests
    (:class:`QualityMemo` is it)."""

    def frame(self, key: FrameKey) -> Kept | None: ...

    def keep_frame(self, key: FrameKey, kept: Kept) -> None: ...

    def profiles(self, site: str, version: int | None) -> dict[str, PointProfile] | None: ...

    def keep_profiles(
        self, site: str, version: int | None, profiles: dict[str, PointProfile]
    ) -> None: ...

    def answer(self, key: AnswerKey, now_ms: int, shown: Sequence[str]) -> KeptAnswer | None: ...

    def keep_answer(
        self,
        key: AnswerKey,
        *,
        until_ms: int | None,
        shown: Sequence[str],
        body: bytes,
        media_type: str,
        headers: Mapping[str, str],
    ) -> None: ...


class QualityMemo:
    """What ``/api/quality`` keeps between requests in this process.

    - **frames**: the hour frame of a point set over some whole hours, with which of its
      rows are final (every sample of those hours settled: no open day, no day awaiting a
      re-check), keyed by the site's data generation, which moves whenever samples
      already served change (a repaired late backlog, a refetched damaged object, an
      invalidation); the frame is served from here for at most ``ttl_s`` (as long as a
      final chart answer is kept), and its rows that are not final only until their
      samples could next change without the generation moving (a provisional day's
      next re-check, the open TTL of a tail or of a range reaching now: what
      :func:`~tsgate.series.planning.changes_at` says); then those rows are read again,
      over the hours that were not final only (the recent days, usually);
    - **answers**: the encoded answer of a past range, keyed by everything it depends on
      (:data:`AnswerKey`: the site's data generation and catalog refresh (the points'
      kinds, cadences and heartbeat tags), the range, the parameters and the gap limits'
      floor), with what else it showed (the site's zone, the points' observed modes, on
      which their gap limits turn), until its samples could change (as the frames) and
      for at most ``ttl_s``: a repeat costs the checks and the bytes;
    - **profiles**: each site's catalog as quality reads it, keyed by when the catalog was
      last refreshed.
    """

    def __init__(
        self,
        *,
        max_bytes: int = 128 << 20,
        ttl_s: float = 3600.0,
        clock_s: Callable[[], float] = time.monotonic,
    ) -> None:
        self._frames: LRU[FrameKey, tuple[float, Kept]] = LRU(
            max_bytes, lambda kept: kept[1].frame.nbytes
        )
        self._answers: LRU[AnswerKey, KeptAnswer] = LRU(max_bytes // 4, lambda kept: len(kept.body))
        self._profiles: dict[str, tuple[int | None, dict[str, PointProfile]]] = {}
        self._ttl_s = ttl_s
        self._clock_s = clock_s

    def frame(self, key: FrameKey) -> Kept | None:
        """The kept frame, shared: callers change only copies of it."""
        kept = self._frames.get(key)
        if kept is None or self._clock_s() - kept[0] > self._ttl_s:
            return None
        return kept[1]

    def keep_frame(self, key: FrameKey, kept: Kept) -> None:
        """Keep ``kept``, which the caller no longer changes."""
        self._frames.put(key, (self._clock_s(), kept))

    def answer(self, key: AnswerKey, now_ms: int, shown: Sequence[str]) -> KeptAnswer | None:
        """The kept answer of ``key``, if it still holds at ``now_ms`` and showed what
        is ``shown`` now (the zone and modes that are not in the key)."""
        kept = self._answers.get(key)
        if kept is None or self._clock_s() - kept.kept_at_s > self._ttl_s:
            return None
        if (kept.until_ms is not None and now_ms >= kept.until_ms) or kept.shown != tuple(shown):
            return None
        return kept

    def keep_answer(
        self,
        key: AnswerKey,
        *,
        until_ms: int | None,
        shown: Sequence[str],
        body: bytes,
        media_type: str,
        headers: Mapping[str, str],
    ) -> None:
        """Keep an answer that holds until ``until_ms`` (its samples could change then;
        ``None``: only a repair, which moves the generation, can change them)."""
        kept = KeptAnswer(self._clock_s(), until_ms, tuple(shown), body, media_type, dict(headers))
        self._answers.put(key, kept)

    def profiles(self, site: str, version: int | None) -> dict[str, PointProfile] | None:
        kept = self._profiles.get(site)
        return kept[1] if kept is not None and kept[0] == version else None

    def keep_profiles(
        self, site: str, version: int | None, profiles: dict[str, PointProfile]
    ) -> None:
        self._profiles[site] = (version, profiles)


# site, data generation, catalog refresh, names digest, range, flat tolerance, stale
# after, low, high, binary encoding, content encoding
AnswerKey = tuple[
    str,
    str,
    int | None,
    bytes,
    int,
    int,
    float,
    float | None,
    float | None,
    float | None,
    int,
    bool,
    str | None,
]


@dataclass(frozen=True)
class KeptAnswer:
    kept_at_s: float
    until_ms: int | None
    shown: tuple[str, ...]
    body: bytes
    media_type: str
    headers: dict[str, str]


def names_digest(names: Sequence[str]) -> bytes:
    return hashlib.blake2b("\n".join(names).encode(), digest_size=16).digest()


def frame_key(site: str, generation: str, names: Sequence[str], span: tuple[int, int]) -> FrameKey:
    hours = _hours(span)
    return (site, generation, names_digest(names), int(hours[0]), int(hours.size))


@dataclass(frozen=True)
class Kept:
    """An hour frame, which of its rows are final, the hours (whole, within the frame's)
    holding everything that is not, and the earliest time that could change without the
    site's generation moving (``None``: never): what a later read must read again, and
    from when."""

    frame: HourFrame
    final: Mask
    pending: tuple[int, int] | None
    changes_at_ms: int | None

    def due(self, now_ms: int) -> bool:
        """Whether the rows not final must be read again at ``now_ms``."""
        return self.changes_at_ms is not None and now_ms >= self.changes_at_ms


@dataclass(frozen=True)
class Judging:
    """How each point is judged (lists parallel to the points)."""

    cadence_ms: Sequence[int]
    # None: stale once the silence up to now is a gap (the point's gap limit)
    stale_after_ms: Sequence[int | None]
    bounds: Sequence[tuple[float | None, float | None]]
    flat_tolerance: float = 0.0


async def assess_points(
    reader: SeriesReads,
    site: str,
    names: Sequence[str],
    span: tuple[int, int],
    judging: Judging,
    *,
    token: str,
    memo: QualityMemory | None = None,
    before_read: BeforeRead | None = None,
    gap_limits: GapLimits | None = None,
) -> tuple[Assessed, ReadStats, int]:
    """The quality of each of ``names`` over ``span``, in batches of whole frames, and
    the time it was judged at: ``now`` is read after each batch's samples, so none of
    them can lie after it."""
    hours = _hours(span)
    per_batch = max(1, FRAME_CELLS // hours.size)
    total = ReadStats()
    now_ms = reader.clock_ms()
    changes_at_ms: int | None = None
    parts = [
        assess_frame(
            HourFrame.of([], int(hours[0]), int(hours.size)),
            span,
            now_ms,
            cadence_ms=[],
            stale_after_ms=[],
            bounds=[],
        )
    ]  # nothing, for a request of no points
    for lo in range(0, len(names), per_batch):
        hi = min(len(names), lo + per_batch)
        frame, stats = await exact_hours(
            reader, site, names[lo:hi], span, token=token, memo=memo, before_read=before_read
        )
        _add(total, stats)
        changes_at_ms = _sooner(changes_at_ms, stats.changes_at_ms)
        now_ms = reader.clock_ms()
        limits, held = await gap_limits(names[lo:hi]) if gap_limits else (None, None)
        cadence = judging.cadence_ms[lo:hi]
        limit_of = list(limits) if limits is not None else [GAP_CADENCES * c for c in cadence]
        stale_after = [
            limit if after is None else after
            for after, limit in zip(judging.stale_after_ms[lo:hi], limit_of, strict=True)
        ]
        part = assess_frame(
            frame,
            span,
            now_ms,
            cadence_ms=cadence,
            stale_after_ms=stale_after,
            flat_tolerance=judging.flat_tolerance,
            bounds=judging.bounds[lo:hi],
            gap_ms=limits,
            held=held,
        )
        parts.append(part)
    total.changes_at_ms = changes_at_ms
    return Assessed.concat(parts), total, now_ms


async def exact_hours(
    reader: SeriesReads,
    site: str,
    names: Sequence[str],
    span: tuple[int, int],
    *,
    token: str,
    memo: QualityMemory | None = None,
    before_read: BeforeRead | None = None,
) -> tuple[HourFrame, ReadStats]:
    """Hourly buckets of exactly the samples of ``names`` in ``span`` (row ``i`` is
    ``names[i]``), on the whole hours around it. ``before_read`` is awaited with the
    points and hours about to be read from the store (it may refuse: a fetch budget)."""
    start_ms, end_ms = span
    hours = _hours(span)
    first, last = int(hours[0]), int(hours[-1]) + MS_PER_HOUR
    key = None if memo is None else frame_key(site, await reader.generation(site), names, span)
    kept = None if memo is None or key is None else memo.frame(key)
    if kept is None:
        if before_read is not None:
            await before_read(names, (first, last))
        now = await _read_hours(reader, site, names, (first, last), token)
        frame, stats = now.frame, now.stats
        if memo is not None and key is not None:
            memo.keep_frame(key, Kept(frame, now.final, now.pending, now.changes_at_ms))
    else:
        frame = kept.frame
        await reader.check_site(site, token)  # kept data is served only to readers
        stats = ReadStats(sources={"MEMORY"}, changes_at_ms=kept.changes_at_ms)
        again = np.flatnonzero(~kept.final)
        if again.size and kept.pending is not None and kept.due(reader.clock_ms()):
            unsettled = [names[int(i)] for i in again]
            if before_read is not None:
                await before_read(unsettled, kept.pending)
            now = await _read_hours(reader, site, unsettled, kept.pending, token)
            frame = frame.copy()
            frame.put_rows(again, now.frame)
            stats = now.stats
            stats.sources.add("MEMORY")
            if memo is not None and key is not None:
                final = kept.final.copy()
                final[again] = now.final
                memo.keep_frame(key, Kept(frame, final, now.pending, now.changes_at_ms))
    # the frame may be the kept one: the edges are cut on a copy of the counts (and of
    # the rest where an edge hour is read raw)
    frame = dataclasses.replace(frame, count=frame.count.copy())
    # the part of the first and the last hour inside the range (one part: a single hour)
    cuts = [(0, start_ms, min(end_ms, first + MS_PER_HOUR))]
    if hours.size > 1:
        cuts.append((hours.size - 1, max(start_ms, last - MS_PER_HOUR), end_ms))
    edges = [(column, lo, hi, _cut(frame, column, lo, hi)) for column, lo, hi in cuts]
    raw_edges = [e for e in edges if e[3].size]
    if raw_edges:
        frame = frame.copy()
    reads = await asyncio.gather(
        *(
            reader.read(site, [names[r] for r in rows], lo, hi, token=token)
            for _, lo, hi, rows in raw_edges
        )
    )
    for (column, _, _, rows), (raw, edge_stats) in zip(raw_edges, reads, strict=True):
        stats.sources |= edge_stats.sources
        for r in rows:
            _set(frame, int(r), column, rollups.bucketize(raw[names[r]], MS_PER_HOUR))
    return frame, stats


@dataclass
class _Read:
    frame: HourFrame
    final: Mask
    pending: tuple[int, int] | None
    stats: ReadStats

    @property
    def changes_at_ms(self) -> int | None:
        return self.stats.changes_at_ms


async def _read_hours(
    reader: SeriesReads, site: str, names: Sequence[str], hours: tuple[int, int], token: str
) -> _Read:
    """The hour frame of ``names`` over whole ``hours`` from the rollups (the chunks
    behind them made whole first), which rows are final, and the whole hours around what
    is not (all of them after a stale read: upstream failed)."""
    first, last = hours
    found, stats = await reader.read_rollups(site, names, "1h", first, last, token=token)
    frame = HourFrame.of([found[n] for n in names], first, (last - first) // MS_PER_HOUR)
    final = np.array([not stats.stale and n not in stats.provisional for n in names], dtype=bool)
    spans = [s for n in names for s in stats.provisional.get(n, ())]
    pending: tuple[int, int] | None = None
    if stats.stale:
        pending = hours
    elif spans:
        lo = min(s for s, _ in spans) // MS_PER_HOUR * MS_PER_HOUR
        hi = -(-max(e for _, e in spans) // MS_PER_HOUR) * MS_PER_HOUR
        pending = (max(first, lo), min(last, hi))
    return _Read(frame, final, pending, stats)


def _hours(span: tuple[int, int]) -> npt.NDArray[np.int64]:
    """Start times of the epoch-aligned hours that ``span`` touches (at least one)."""
    start_ms, end_ms = span
    first = start_ms // MS_PER_HOUR
    last = max(first + 1, -(-end_ms // MS_PER_HOUR))
    return np.arange(first, last, dtype=np.int64) * MS_PER_HOUR


def _cut(frame: HourFrame, column: int, lo: int, hi: int) -> npt.NDArray[np.intp]:
    """Keep only the samples in ``[lo, hi)`` of the hour in ``column``: an hour whose
    samples all lie inside stays, one whose samples all lie outside is emptied; the rows
    whose hour holds samples on both sides are returned (to be read raw)."""
    held = frame.count[:, column] > 0
    first, last = frame.first_ms[:, column], frame.last_ms[:, column]
    inside = (first >= lo) & (last < hi)
    outside = (last < lo) | (first >= hi)
    frame.count[held & outside, column] = 0
    return np.flatnonzero(held & ~inside & ~outside)


def _set(frame: HourFrame, row: int, column: int, hour: rollups.Buckets) -> None:
    """Put the one bucket of ``hour`` (or nothing, when it is empty) at a cell."""
    if not len(hour):
        frame.count[row, column] = 0
        return
    frame.count[row, column] = hour.count[0]
    frame.min[row, column], frame.max[row, column] = hour.min[0], hour.max[0]
    frame.first_ms[row, column], frame.last_ms[row, column] = hour.first_ms[0], hour.last_ms[0]


def _sooner(a: int | None, b: int | None) -> int | None:
    """The earlier of two times a read's samples could change (``None``: never)."""
    return b if a is None else a if b is None else min(a, b)


def _add(total: ReadStats, part: ReadStats) -> None:
    """Add one batch's read to the whole answer's."""
    total.upstream_requests += part.upstream_requests
    total.fetched_samples += part.fetched_samples
    total.fetched_ms += part.fetched_ms
    total.needed_ms += part.needed_ms
    total.sources |= part.sources
    total.stale = total.stale or part.stale
    total.healed += part.healed
