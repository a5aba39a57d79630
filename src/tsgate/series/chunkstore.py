"""Chunks of cached upstream data: objects in the object store, rows in the chunk index,
and the rollups kept up to date as chunks are written.

A chunk is one point's raw samples for one UTC day while recent, or one UTC month once
settled (written directly when a whole settled month is fetched, or compacted from its
days). Each chunk is written whole: object first, then its index row, so a reader never
sees a row whose object is missing. Empty settled chunks have a row and no object.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tsgate.series import extents, rollups
from tsgate.series.codec import decode_series, encode_series
from tsgate.series.memory import LRU, buckets_bytes, series_bytes
from tsgate.series.model import MS_PER_DAY, MS_PER_HOUR, Series, concat

if TYPE_CHECKING:
    from tsgate.database import Database
    from tsgate.database.chunks import ChunkRow
    from tsgate.object_store.base import ObjectStore

RAW = "raw"
LEVELS_MS = {"1h": MS_PER_HOUR, "1d": MS_PER_DAY}
_LOAD_CONCURRENCY = 32


def _digest(*parts: str) -> str:
    return hashlib.blake2b("\x00".join(parts).encode(), digest_size=16).hexdigest()


def object_key(site: str, point: str, start_ms: int, end_ms: int) -> str:
    """Keys come from hashes, never from raw names (no path tricks, bounded length)."""
    return f"{object_prefix(site, point)}{start_ms}-{end_ms}.tsgc"


def object_prefix(site: str, point: str | None = None) -> str:
    """Where the objects of a site's point (``None``: of every point of the site) live."""
    site_h = _digest(site)
    return f"raw/{site_h[:2]}/{site_h}/" + (f"{_digest(site, point)}/" if point else "")


@dataclass(frozen=True)
class Written:
    """One period of one point, ready to store."""

    point: str
    start_ms: int
    end_ms: int
    series: Series
    covered_end_ms: int
    sealed: bool


class ChunkStore:
    def __init__(
        self, db: Database, objects: ObjectStore, *, memory_bytes: int = 256 << 20
    ) -> None:
        self.db = db
        self.objects = objects
        self.memory: LRU[tuple[str, int], Series] = LRU(memory_bytes // 2, series_bytes)
        self.decoded_rollups: LRU[tuple[str, str, str, int, int], rollups.Buckets] = LRU(
            memory_bytes // 2, buckets_bytes
        )
        self._gate = asyncio.Semaphore(_LOAD_CONCURRENCY)

    def forget(self, site: str, points: Sequence[str] | None = None) -> int:
        """Drop this process's decoded chunks and rollups of ``points`` (``None``: every
        point) of ``site``; return how many entries went. Other processes need no call:
        their entries are keyed by fetch/update time, which a refetch always moves."""
        prefixes = tuple(object_prefix(site, p) for p in (points if points is not None else [None]))
        wanted = None if points is None else set(points)
        dropped = self.memory.drop_where(lambda key: key[0].startswith(prefixes))
        return dropped + self.decoded_rollups.drop_where(
            lambda key: key[0] == site and (wanted is None or key[1] in wanted)
        )

    # ---- reading ----------------------------------------------------------------------

    async def rows(
        self, site: str, names: Sequence[str], start_ms: int, end_ms: int
    ) -> list[ChunkRow]:
        return await self.db.chunks.overlapping(site, names, RAW, start_ms, end_ms)

    async def load(
        self, site: str, names: Sequence[str], rows: Sequence[ChunkRow], start_ms: int, end_ms: int
    ) -> tuple[dict[str, Series], set[str]]:
        """Each point's samples in ``[start_ms, end_ms)`` from ``rows``; and the layers used."""
        sources: set[str] = set()
        wanted = [r for r in rows if r.object_key and r.samples]
        parts = await asyncio.gather(*(self._load_one(r, sources) for r in wanted))
        grouped: dict[str, list[Series]] = defaultdict(list)
        for row, part in zip(wanted, parts, strict=True):
            grouped[row.point].append(part)
        return {n: concat(n, grouped.get(n, ())).crop(start_ms, end_ms) for n in names}, sources

    async def _load_one(self, row: ChunkRow, sources: set[str]) -> Series:
        cache_key = (row.object_key, row.fetched_at_ms)
        hit = self.memory.get(cache_key)
        if hit is not None:
            sources.add("MEMORY")
            return hit
        async with self._gate:
            data = await self.objects.get(row.object_key)
        if data is None:
            # the index says it exists: a lost object is treated as never cached
            return Series.empty(row.point)
        series = decode_series(row.point, data)
        self.memory.put(cache_key, series)
        sources.add("STORE")
        return series

    async def rollups(
        self, site: str, names: Sequence[str], level: str, start_ms: int, end_ms: int
    ) -> dict[str, rollups.Buckets]:
        """Each point's buckets at ``level``; decoded month blobs are kept in memory and
        re-read only when their row changed (its ``updated_at`` moved)."""
        versions = await self.db.rollups.versions(site, names, level, start_ms, end_ms)
        months: dict[tuple[str, int], rollups.Buckets] = {}
        stale: list[tuple[str, int, int]] = []
        for point, month, updated in versions:
            hit = self.decoded_rollups.get((site, point, level, month, updated))
            if hit is None:
                stale.append((point, month, updated))
            else:
                months[(point, month)] = hit
        if stale:
            rows = await self.db.rollups.get(
                site,
                sorted({p for p, _, _ in stale}),
                level,
                start_ms,
                end_ms,
                months=[m for _, m, _ in stale],
            )
            for row in rows:
                buckets = rollups.unpack(row.blob)
                months[(row.point, row.period_start_ms)] = buckets
                self.decoded_rollups.put(
                    (site, row.point, level, row.period_start_ms, row.updated_at_ms), buckets
                )
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

    # ---- writing ----------------------------------------------------------------------

    async def write(self, site: str, periods: Sequence[Written], *, now_ms: int) -> None:
        """Store whole periods: objects, then index rows, then the rollups they change."""
        from tsgate.database.chunks import ChunkRow

        blobs = [(p, encode_series(p.series)) if len(p.series) else (p, b"") for p in periods]
        keyed = [
            (p, object_key(site, p.point, p.start_ms, p.end_ms) if blob else "", blob)
            for p, blob in blobs
        ]
        await asyncio.gather(*(self._put(key, blob) for _, key, blob in keyed if blob))
        rows = [
            ChunkRow(
                site=site,
                point=p.point,
                resolution=RAW,
                period_start_ms=p.start_ms,
                period_end_ms=p.end_ms,
                object_key=key,
                sealed=p.sealed,
                covered_end_ms=p.end_ms if p.sealed else p.covered_end_ms,
                samples=len(p.series),
                size_bytes=len(blob),
                first_ms=int(p.series.t_ms[0]) if len(p.series) else None,
                last_ms=int(p.series.t_ms[-1]) if len(p.series) else None,
                fetched_at_ms=now_ms,
            )
            for p, key, blob in keyed
        ]
        await self.db.chunks.upsert(rows)
        for p, key, _ in keyed:
            if key:
                self.memory.put((key, now_ms), p.series)
        await self._update_rollups(site, periods, now_ms)

    async def _put(self, key: str, blob: bytes) -> None:
        async with self._gate:
            await self.objects.put(key, blob)

    async def _update_rollups(self, site: str, periods: Sequence[Written], now_ms: int) -> None:
        from tsgate.database.rollups import RollupRow

        if not periods:
            return
        names = sorted({p.point for p in periods})
        lo = min(p.start_ms for p in periods)
        hi = max(p.end_ms for p in periods)
        for level, width in LEVELS_MS.items():
            existing = await self.db.rollups.get(site, names, level, lo, hi)
            blobs = {(r.point, r.period_start_ms): rollups.unpack(r.blob) for r in existing}
            changed: dict[tuple[str, int], rollups.Buckets] = {}
            for p in periods:
                fresh = rollups.bucketize(p.series, width)
                for month in extents.months_covering(p.start_ms, p.end_ms):
                    key = (p.point, month)
                    old = changed.get(key, blobs.get(key, rollups.Buckets.empty(width)))
                    # the period replaces every bucket it covers, including ones now empty
                    kept = rollups.concat(
                        [
                            rollups.crop(old, month, p.start_ms),
                            rollups.crop(old, p.end_ms, extents.next_month(month)),
                        ]
                    )
                    changed[key] = rollups.merge(
                        kept, rollups.crop(fresh, month, extents.next_month(month))
                    )
            await self.db.rollups.put(
                [
                    RollupRow(site, point, level, month, rollups.pack(b), now_ms)
                    for (point, month), b in changed.items()
                ]
            )

    async def compact(self, site: str, point: str, month_ms: int, now_ms: int) -> bool:
        """Fold a settled month's sealed day chunks into one month chunk; True if done."""
        end = extents.next_month(month_ms)
        rows = [r for r in await self.rows(site, [point], month_ms, end) if r.point == point]
        days = [r for r in rows if r.period_end_ms - r.period_start_ms == MS_PER_DAY]
        expected = (end - month_ms) // MS_PER_DAY
        if len(days) != expected or len(rows) != expected or not all(r.sealed for r in days):
            return False
        loaded, _ = await self.load(site, [point], days, month_ms, end)
        series = loaded[point]
        blob = encode_series(series) if len(series) else b""
        key = object_key(site, point, month_ms, end) if blob else ""
        if blob:
            await self._put(key, blob)
        from tsgate.database.chunks import ChunkRow

        month_row = ChunkRow(
            site,
            point,
            RAW,
            month_ms,
            end,
            key,
            True,
            end,
            len(series),
            len(blob),
            int(series.t_ms[0]) if len(series) else None,
            int(series.t_ms[-1]) if len(series) else None,
            now_ms,
        )
        await self.db.chunks.replace(site, point, RAW, [r.period_start_ms for r in days], month_row)
        await asyncio.gather(*(self.objects.delete(r.object_key) for r in days if r.object_key))
        return True


def split_periods(
    point: str,
    series: Series,
    fetch_start_ms: int,
    fetch_end_ms: int,
    previous: Mapping[int, Series],
    *,
    now_ms: int,
    settle_ms: int,
) -> list[Written]:
    """Cut one fetched span into storable periods.

    Whole settled months inside the span become month chunks; everything else becomes day
    chunks. ``previous`` holds the cached samples of open days the span continues (delta
    fetches), so the rewritten day chunk is whole.
    """
    out: list[Written] = []
    day = extents.day_floor(fetch_start_ms)
    while day < fetch_end_ms:
        month = extents.month_floor(day)
        month_end = extents.next_month(month)
        whole_month = (
            day == month
            and month_end <= fetch_end_ms
            and extents.is_settled(month_end, now_ms, settle_ms)
        )
        end = month_end if whole_month else day + MS_PER_DAY
        part = series.crop(day, end)
        if not whole_month and day in previous:
            part = concat(point, [previous[day].crop(day, fetch_start_ms), part])
        covered = min(end, fetch_end_ms)
        sealed = covered >= end and extents.is_settled(end, now_ms, settle_ms)
        out.append(Written(point, day, end, part, covered, sealed))
        day = end
    return out


def monotonic_ms() -> int:
    return int(time.time() * 1000)


def months_of(periods: Iterable[Written]) -> set[tuple[str, int]]:
    return {
        (p.point, extents.month_floor(p.start_ms))
        for p in periods
        if p.sealed and p.end_ms - p.start_ms == MS_PER_DAY
    }
