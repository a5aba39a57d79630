"""Rollup blobs kept in step with the chunks: rebuilt for every period a write changes,
read through a decoded in-memory copy keyed by the blob's version."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

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
# levels added after release: a month without a blob at such a level, but with an hourly
# one, was written before; it is built from the chunks when first read
_ADDED_LEVELS = frozenset({"15m"})


@dataclass(frozen=True, slots=True)
class Period:
    """All of one point's samples in ``[start_ms, end_ms)`` (a stored chunk period)."""

    point: str
    start_ms: int
    end_ms: int
    series: Series
    gap_ms: int = rollups.DEFAULT_GAP_MS  # samples further apart are not joined by lines


@dataclass(frozen=True, slots=True)
class RollupRow:
    """One packed blob of one point's buckets at one level for one UTC month."""

    site: str
    point: str
    level: str  # "15m" | "1h" | "1d"
    period_start_ms: int  # the UTC month start
    blob: bytes  # series.rollups.pack
    updated_at_ms: int


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
        decoded month blobs are re-read only when their row changed. A month blob that
        cannot be read (another format, or damaged) is rebuilt from ``rebuild``'s
        samples and read again; without ``rebuild`` it counts as absent. ``held``: the
        (point, month start) whose chunks hold samples (as the index says): such a month
        without a blob at ``level`` lost it (a row deleted, a write that stopped between
        its chunks and its rollups) and is rebuilt from ``rebuild``'s samples too, never
        read as a month without samples."""
        versions = await self._blobs.versions(site, names, level, start_ms, end_ms)
        months: dict[tuple[str, int], rollups.Buckets] = {}
        stale: list[tuple[str, int, int]] = []
        for point, month, updated in versions:
            hit = self.decoded.get((site, point, level, month, updated))
            if hit is None:
                stale.append((point, month, updated))
            else:
                months[(point, month)] = hit
        unreadable: list[tuple[str, int]] = []
        present = {(p, m) for p, m, _ in versions}
        if rebuild is not None:
            wanted = set(names)
            lo, hi = extents.month_floor(start_ms), end_ms
            unreadable.extend(
                (p, m) for p, m in sorted(set(held) - present) if p in wanted and lo <= m < hi
            )
        if level in _ADDED_LEVELS and rebuild is not None:
            # months written before this level existed have hourly blobs only
            hourly = await self._blobs.versions(site, names, "1h", start_ms, end_ms)
            known = present | set(unreadable)
            unreadable.extend((p, m) for p, m, _ in hourly if (p, m) not in known)
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
                    unreadable.append((row.point, row.period_start_ms))
                    log.warning("rollup %s/%s/%s: %s", site, row.point, level, exc)
                    continue
                months[(row.point, row.period_start_ms)] = buckets
                self.decoded.put(
                    (site, row.point, level, row.period_start_ms, row.updated_at_ms), buckets
                )
        if unreadable and rebuild is not None:
            # rebuilt in the current format from the samples behind them, then read again
            periods = await rebuild(site, sorted(unreadable))
            # a month whose chunks hold nothing keeps what it has (nothing to build from)
            periods = [p for p in periods if len(p.series)]
            # the wall clock stamps only the blobs' versions (keys of decoded copies, in
            # every process): no answer depends on it, and it never repeats a version a
            # deleted row had in another process's memory
            await self.update(site, periods, int(time.time() * 1000))
            # read again, without rebuilding: a month whose chunks held nothing to build
            # from is read as it is (unreadable: absent), not rebuilt over and over
            return await self.read(site, names, level, start_ms, end_ms)
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
        samples (the chunks, written before), so no bucket of the month is lost. Returns
        the blobs written."""
        if not periods:
            return 0
        names = sorted({p.point for p in periods})
        lo = min(p.start_ms for p in periods)
        hi = max(p.end_ms for p in periods)
        written = 0
        periods = list(periods)
        whole: set[tuple[str, int]] = set()  # months rebuilt whole from their samples
        async with self._writing.hold(site):  # one rewrite of a site's blobs at a time
            for level, width in LEVELS_MS.items():
                existing = await self._blobs.get(site, names, level, lo, hi)
                samples = sum(len(p.series) for p in periods)
                packed, damaged = await offload.run(samples, _rebuilt, existing, periods, width)
                todo = sorted(set(damaged) - whole)
                if todo and rebuild is not None:
                    whole.update(todo)
                    periods.extend(p for p in await rebuild(site, todo) if len(p.series))
                    samples = sum(len(p.series) for p in periods)
                    packed, _ = await offload.run(samples, _rebuilt, existing, periods, width)
                # a blob's version is what keys its decoded copies here and in every other
                # process: it only grows, so two writes in one millisecond (or a clock
                # that stands still or steps back) never leave a stale copy its version
                was = {(r.point, r.period_start_ms): r.updated_at_ms for r in existing}
                await self._blobs.put(
                    [
                        RollupRow(site, p, level, month, blob, next_version(was, p, month, now_ms))
                        for p, month, blob in packed
                    ]
                )
                written += len(packed)
            # and this process's copies of what was just replaced go
            self.forget(site, names)
        return written


def next_version(was: dict[tuple[str, int], int], point: str, month: int, now_ms: int) -> int:
    """The version a rewritten blob gets: now, and always above the one it replaces."""
    old = was.get((point, month))
    return now_ms if old is None else max(now_ms, old + 1)


def _rebuilt(
    existing: Sequence[RollupRow], periods: Sequence[Period], width: int
) -> tuple[list[tuple[str, int, bytes]], list[tuple[str, int]]]:
    """The month blobs (point, month, packed buckets) of one level that ``periods`` change:
    what ``existing`` held outside the periods, and the periods' samples bucketed anew;
    and the (point, month) of the ``existing`` blobs that could not be read."""
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
    return [(point, month, rollups.pack(b)) for (point, month), b in changed.items()], damaged
