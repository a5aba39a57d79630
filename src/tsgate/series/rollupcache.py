"""Rollup blobs kept in step with the chunks: rebuilt for every period a write changes,
read through a decoded in-memory copy keyed by the blob's version.

The hourly and daily levels are written with every write. The 15-minute level (about 3×
the hourly blob) is lazy: a month's 15-minute blob is built from its chunks the first
time a read asks for it, and from then on kept in step by every write like the others;
a month no read asked for stays without one. A built blob is stored only if the month's
hourly blob still has the version it had before the chunks were read (checked and
stored in one transaction that locks the hourly rows): a write updates the hourly blob
before it reads the 15-minute one, so a write that landed meanwhile either finds the
built blob and brings it in step, or makes the build be dropped."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from tsgate.core import extents, rollups
from tsgate.core.codec import CodecError
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE, Series
from tsgate.keylocks import KeyLocks
from tsgate.lru import LRU
from tsgate.series import offload
from tsgate.series.memory import buckets_bytes

# every stored level; 15-minute buckets serve the local days of zones whose offset is not
# whole hours (Asia/Kolkata +5:30, Asia/Kathmandu +5:45), which no hourly bucket tiles
LEVELS_MS = {"15m": 15 * MS_PER_MINUTE, "1h": MS_PER_HOUR, "1d": MS_PER_DAY}
# the levels downsampling and PromQL windows read
COARSE_LEVELS_MS = {"1h": MS_PER_HOUR, "1d": MS_PER_DAY}

log = logging.getLogger(__name__)
# the level every write writes first, and whose version a built blob is guarded by
BASIS_LEVEL = "1h"
# levels built for a month only when a read asks for one (a month with an hourly blob
# but none at such a level was never asked for, or written before the level existed);
# once built, writes keep them in step
LAZY_LEVELS = frozenset({"15m"})
# the order a write rewrites the levels in: the basis first (see the module docstring)
_WRITE_ORDER = (BASIS_LEVEL, *sorted(set(LEVELS_MS) - {BASIS_LEVEL}))


@dataclass(frozen=True, slots=True)
class Period:
    """All of one point's samples in ``[start_ms, end_ms)`` (a stored chunk period)."""

    point: str
    start_ms: int
    end_ms: int
    series: Series
    gap_ms: int = rollups.DEFAULT_GAP_MS  # samples further apart are not joined by lines
    whole: bool = True  # False: some of its chunks could not be read (samples are missing)


@dataclass(frozen=True, slots=True)
class RollupRow:
    """One packed blob of one point's buckets at one level for one UTC month."""

    site: str
    point: str
    level: str  # "15m" | "1h" | "1d"
    period_start_ms: int  # the UTC month start
    blob: bytes  # series.rollups.pack
    updated_at_ms: int


@dataclass(frozen=True, slots=True)
class BuiltRow:
    """A blob built from a month's chunks, to store only if nothing was written since:
    the month's hourly blob still has version ``basis`` and the row at ``row``'s key
    still has version ``replaces`` (``None``: there is none, for either)."""

    row: RollupRow
    basis: int | None
    replaces: int | None


class RollupBlobs(Protocol):
    """The rollup blobs' store (``tsgate.database.rollups`` implements it in SQL); a
    blob is bytes in, bytes out, its layout is ``core.rollups``'."""

    async def put(self, rows: Sequence[RollupRow]) -> None:
        """Insert or replace ``rows`` (by site, point, level, month) in one transaction."""

    async def versions(
        self, site: str, points: Sequence[str], level: str, start_ms: int, end_ms: int
    ) -> list[tuple[str, int, int]]:
        """``(point, month, updated_at_ms)`` of the rows ``get`` would return, without blobs."""

    async def get(
        self,
        site: str,
        points: Sequence[str],
        level: str,
        start_ms: int,
        end_ms: int,
        *,
        months: Sequence[int] | None = None,
    ) -> list[RollupRow]:
        """Rows of ``points`` whose month overlaps ``[start_ms, end_ms)``, by point then
        month; ``months`` narrows it to those month starts."""

    async def put_built(self, site: str, rows: Sequence[BuiltRow]) -> list[RollupRow]:
        """In one transaction that locks the hourly rows it checks: store each of
        ``site``'s built rows whose guard holds (see ``BuiltRow``); return those stored."""

    async def delete(
        self, site: str, points: Sequence[str] | None, start_ms: int, end_ms: int
    ) -> int:
        """Remove rows (every level) whose month overlaps the range (``points=None``:
        every point of ``site``); return how many."""


# the samples of (point, month) pairs of a site, as whole-month periods (from the chunks)
Rebuild = Callable[[str, Sequence[tuple[str, int]]], Awaitable[list["Period"]]]


class RollupCache:
    def __init__(self, blobs: RollupBlobs, *, memory_bytes: int) -> None:
        self._blobs = blobs
        self.decoded: LRU[tuple[str, str, str, int, int], rollups.Buckets] = LRU(
            memory_bytes, buckets_bytes
        )
        self._writing: KeyLocks[str] = KeyLocks()

    def forget(self, site: str, points: Sequence[str] | None) -> int:
        wanted = None if points is None else set(points)
        return self.decoded.drop_where(
            lambda key: key[0] == site and (wanted is None or key[1] in wanted)
        )

    async def read(
        self,
        site: str,
        names: Sequence[str],
        level: str,
        start_ms: int,
        end_ms: int,
        *,
        rebuild: Rebuild | None = None,
        held: Collection[tuple[str, int]] = (),
    ) -> dict[str, rollups.Buckets]:
        """Each point's buckets at ``level`` whose start lies in ``[start_ms, end_ms)``;
        decoded month blobs are re-read only when their row changed. With ``rebuild``
        (the months' samples, from the chunks), a month blob that cannot be read
        (another format, or damaged) is rebuilt, and so is a month's blob of a lazy level
        that was never built (the month has an hourly blob but none at ``level``); each is
        stored unless a write came meanwhile (``BuiltRow``) and answers either way.
        ``held``: the (point, month start) whose chunks hold samples (as the index says):
        such a month without a blob at ``level`` lost it (a row deleted, a write that
        stopped between its chunks and its rollups) and is built from ``rebuild``'s
        samples too, never read as a month without samples. Without ``rebuild`` such
        months count as absent."""
        versions = await self._blobs.versions(site, names, level, start_ms, end_ms)
        months: dict[tuple[str, int], rollups.Buckets] = {}
        stale: list[tuple[str, int, int]] = []
        for point, month, updated in versions:
            hit = self.decoded.get((site, point, level, month, updated))
            if hit is None:
                stale.append((point, month, updated))
            else:
                months[(point, month)] = hit
        # (point, month) to build → the version of the row it replaces (None: no row)
        todo: dict[tuple[str, int], int | None] = {}
        if stale:
            rows = await self._blobs.get(
                site,
                sorted({p for p, _, _ in stale}),
                level,
                start_ms,
                end_ms,
                months=[m for _, m, _ in stale],
            )
            for row in rows:
                try:
                    buckets = rollups.unpack(row.blob)
                except CodecError as exc:
                    todo[(row.point, row.period_start_ms)] = row.updated_at_ms
                    log.warning("rollup %s/%s/%s: %s", site, row.point, level, exc)
                    continue
                months[(row.point, row.period_start_ms)] = buckets
                self.decoded.put(
                    (site, row.point, level, row.period_start_ms, row.updated_at_ms), buckets
                )
        present = {(p, m) for p, m, _ in versions}
        if rebuild is not None:
            for key in _lost(held, present, names, start_ms, end_ms):
                todo.setdefault(key, None)
        if rebuild is not None and (todo or level in LAZY_LEVELS):
            # the hourly versions guard what is built: read before the chunks are (at the
            # hourly level, each row guards itself: its version then, None when absent)
            basis: dict[tuple[str, int], int | None] = (
                dict(todo)
                if level == BASIS_LEVEL
                else {
                    (p, m): v
                    for p, m, v in await self._blobs.versions(
                        site, names, BASIS_LEVEL, start_ms, end_ms
                    )
                }
            )
            if level in LAZY_LEVELS:
                todo.update((k, None) for k in basis if k not in present and k not in todo)
            if todo:
                months.update(await self._build(site, level, todo, basis, rebuild))
        grouped: dict[str, list[rollups.Buckets]] = defaultdict(list)
        for (point, _), buckets in sorted(months.items()):
            grouped[point].append(buckets)
        width = LEVELS_MS[level]
        return {
            n: rollups.crop(rollups.concat(grouped[n]), start_ms, end_ms)
            if grouped.get(n)
            else rollups.Buckets.empty(width)
            for n in names
        }

    async def _build(
        self,
        site: str,
        level: str,
        todo: dict[tuple[str, int], int | None],
        basis: dict[tuple[str, int], int | None],
        rebuild: Rebuild,
    ) -> dict[tuple[str, int], rollups.Buckets]:
        """The ``level`` buckets of the ``todo`` months, from their samples; those built
        from every chunk of a month that holds samples, and whose month has an hourly
        blob, are stored if nothing was written since ``basis`` was read."""
        periods = await rebuild(site, sorted(todo))
        samples = sum(len(p.series) for p in periods)
        built = await offload.run(samples, _bucketed, periods, LEVELS_MS[level])
        now_ms = int(time.time() * 1000)
        keep = [
            BuiltRow(
                RollupRow(
                    site,
                    point,
                    level,
                    month,
                    blob,
                    next_version(_was(point, month, todo[(point, month)]), point, month, now_ms),
                ),
                basis[(point, month)],
                todo[(point, month)],
            )
            for (point, month), (buckets, blob, whole) in built.items()
            if whole and len(buckets) and (point, month) in basis and (point, month) in todo
        ]
        if keep:
            async with self._writing.hold(site):
                stored = await self._blobs.put_built(site, keep)
            for row in stored:
                self.decoded.put(
                    (site, row.point, level, row.period_start_ms, row.updated_at_ms),
                    built[(row.point, row.period_start_ms)][0],
                )
            if len(stored) < len(keep):
                log.info(
                    "rollup %s/%s: %d built blobs not stored (written meanwhile)",
                    site,
                    level,
                    len(keep) - len(stored),
                )
        return {key: buckets for key, (buckets, _, _) in built.items() if key in todo}

    async def delete(self, site: str, points: Sequence[str] | None) -> int:
        """Remove every rollup blob of ``points`` (``None``: all) of ``site``."""
        self.forget(site, points)
        return await self._blobs.delete(site, points, 0, extents.END_OF_TIME_MS)

    async def update(
        self,
        site: str,
        periods: Sequence[Period],
        now_ms: int,
        *,
        rebuild: Rebuild | None = None,
    ) -> int:
        """Rebuild the buckets of each period from its samples (buckets it no longer has
        go too); buckets outside the periods are kept. A month whose blob cannot be read
        keeps nothing outside the periods: with ``rebuild`` it is rebuilt whole from its
        samples (the chunks, written before), so no bucket of the month is lost. A lazy
        level is rewritten only for the months that have a blob at it; the hourly level
        is written first (see the module docstring). Returns the blobs written."""
        if not periods:
            return 0
        names = sorted({p.point for p in periods})
        lo = min(p.start_ms for p in periods)
        hi = max(p.end_ms for p in periods)
        written = 0
        periods = list(periods)
        whole: set[tuple[str, int]] = set()  # months rebuilt whole from their samples
        fresh: list[tuple[tuple[str, str, str, int, int], rollups.Buckets]] = []
        async with self._writing.hold(site):  # one rewrite of a site's blobs at a time
            for level in _WRITE_ORDER:
                width = LEVELS_MS[level]
                existing = await self._blobs.get(site, names, level, lo, hi)
                level_periods = periods
                if level in LAZY_LEVELS:  # only the months a read had built
                    built = {(r.point, r.period_start_ms) for r in existing}
                    level_periods = [p for p in periods if _touches(p, built)]
                    if not level_periods:
                        continue
                samples = sum(len(p.series) for p in level_periods)
                packed, damaged = await offload.run(
                    samples, _rebuilt, existing, level_periods, width
                )
                todo = sorted(set(damaged) - whole)
                if todo and rebuild is not None:
                    whole.update(todo)
                    periods.extend(p for p in await rebuild(site, todo) if len(p.series))
                    if level in LAZY_LEVELS:
                        level_periods = [p for p in periods if _touches(p, built)]
                    else:
                        level_periods = periods
                    samples = sum(len(p.series) for p in level_periods)
                    packed, _ = await offload.run(samples, _rebuilt, existing, level_periods, width)
                if level in LAZY_LEVELS:
                    packed = [(p, m, blob, b) for p, m, blob, b in packed if (p, m) in built]
                # a blob's version is what keys its decoded copies here and in every other
                # process: it only grows, so two writes in one millisecond (or a clock
                # that stands still or steps back) never leave a stale copy its version
                was = {(r.point, r.period_start_ms): r.updated_at_ms for r in existing}
                rows = [
                    RollupRow(site, p, level, month, blob, next_version(was, p, month, now_ms))
                    for p, month, blob, _ in packed
                ]
                await self._blobs.put(rows)
                fresh.extend(
                    ((site, r.point, level, r.period_start_ms, r.updated_at_ms), b)
                    for r, (_, _, _, b) in zip(rows, packed, strict=True)
                )
                written += len(packed)
            # this process's copies of what was just replaced go, and those of what was
            # written come: the read that follows a write does not decode them again
            self.forget(site, names)
            for key, buckets in fresh:
                self.decoded.put(key, buckets)
        return written


def _lost(
    held: Collection[tuple[str, int]],
    present: set[tuple[str, int]],
    names: Sequence[str],
    start_ms: int,
    end_ms: int,
) -> list[tuple[str, int]]:
    """The (point, month) of ``names`` in the range whose chunks hold samples (``held``)
    but which have no blob (``present``: those that have one)."""
    wanted, lo = set(names), extents.month_floor(start_ms)
    return [(p, m) for p, m in sorted(set(held) - present) if p in wanted and lo <= m < end_ms]


def next_version(was: dict[tuple[str, int], int], point: str, month: int, now_ms: int) -> int:
    """The version a rewritten blob gets: now, and always above the one it replaces."""
    old = was.get((point, month))
    return now_ms if old is None else max(now_ms, old + 1)


def _touches(period: Period, months: set[tuple[str, int]]) -> bool:
    """Whether ``period`` overlaps one of the (point, month) ``months``."""
    return any(
        (period.point, m) in months for m in extents.months_covering(period.start_ms, period.end_ms)
    )


def _was(point: str, month: int, version: int | None) -> dict[tuple[str, int], int]:
    return {} if version is None else {(point, month): version}


def _bucketed(
    periods: Sequence[Period], width: int
) -> dict[tuple[str, int], tuple[rollups.Buckets, bytes, bool]]:
    """Each whole-month period's buckets, packed, and whether all its chunks were read."""
    out: dict[tuple[str, int], tuple[rollups.Buckets, bytes, bool]] = {}
    for p in periods:
        buckets = rollups.crop(
            rollups.bucketize(p.series, width, gap_ms=p.gap_ms), p.start_ms, p.end_ms
        )
        out[(p.point, p.start_ms)] = (buckets, rollups.pack(buckets), p.whole)
    return out


def _rebuilt(
    existing: Sequence[RollupRow], periods: Sequence[Period], width: int
) -> tuple[list[tuple[str, int, bytes, rollups.Buckets]], list[tuple[str, int]]]:
    """The month blobs (point, month, packed buckets, buckets) of one level that ``periods`` change:
    what ``existing`` held outside the periods, and the periods' samples bucketed anew;
    and the (point, month) of the ``existing`` blobs that could not be read."""
    return _rebuilt_each(existing, joined_periods(periods), width)


def joined_periods(periods: Sequence[Period]) -> list[Period]:
    """``periods`` with each run of them that follow one another (in the order given) for
    one point within one UTC month, built with the same gap limit, joined into one period.
    Their buckets are the same at every level: a period starts and ends on a UTC day, so
    on a bucket edge, and no bucket holds a pair of samples across its edge. Bucketing a
    month at once costs about what bucketing one of its days did."""
    out: list[Period] = []
    run: list[Period] = []

    def close() -> None:
        if len(run) == 1:
            out.append(run[0])
        elif run:
            first, last = run[0], run[-1]
            series = Series(
                first.series.name,
                np.concatenate([p.series.t_ms for p in run]),
                np.concatenate([p.series.v for p in run]),
            )
            whole = all(p.whole for p in run)
            out.append(
                Period(first.point, first.start_ms, last.end_ms, series, first.gap_ms, whole)
            )
        run.clear()

    for p in periods:
        month = extents.month_floor(p.start_ms)
        if run and not (
            p.point == run[-1].point
            and p.start_ms == run[-1].end_ms
            and p.gap_ms == run[-1].gap_ms
            and month == extents.month_floor(run[0].start_ms)
            and extents.month_floor(p.end_ms - 1) == month
        ):
            close()
        run.append(p)
    close()
    return out


def _rebuilt_each(
    existing: Sequence[RollupRow], periods: Sequence[Period], width: int
) -> tuple[list[tuple[str, int, bytes, rollups.Buckets]], list[tuple[str, int]]]:
    """:func:`_rebuilt`, bucketing each period on its own."""
    blobs: dict[tuple[str, int], rollups.Buckets] = {}
    damaged: list[tuple[str, int]] = []
    for r in existing:
        try:
            blobs[(r.point, r.period_start_ms)] = rollups.unpack(r.blob)
        except CodecError:
            damaged.append((r.point, r.period_start_ms))  # nothing of it is kept
    changed: dict[tuple[str, int], rollups.Buckets] = {}
    for p in periods:
        fresh = rollups.bucketize(p.series, width, gap_ms=p.gap_ms)
        for month in extents.months_covering(p.start_ms, p.end_ms):
            key = (p.point, month)
            old = changed.get(key, blobs.get(key, rollups.Buckets.empty(width, p.gap_ms)))
            kept = rollups.concat(
                [
                    rollups.crop(old, month, p.start_ms),
                    rollups.crop(old, p.end_ms, extents.next_month(month)),
                ]
            )
            fresh_part = rollups.crop(fresh, month, extents.next_month(month))
            changed[key] = rollups.merge(kept, fresh_part)
    return [(point, month, rollups.pack(b), b) for (point, month), b in changed.items()], damaged
