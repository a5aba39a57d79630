"""Rollups kept in step with the raw chunks: rebuilt for the periods a write changed,
emptied for the periods an invalidation dropped, and built from the chunks of a month
whose blob is of an older format, damaged, or (the 15-minute level) not built yet when
read."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence

from tsgate.core import extents, rollups
from tsgate.core.model import Series
from tsgate.series import periods
from tsgate.series.chunkobjects import ChunkObjects
from tsgate.series.index import ChunkRow
from tsgate.series.periods import Profile
from tsgate.series.rollupcache import Period, RollupBlobs, RollupCache

Profiles = Callable[[str, Sequence[str]], Awaitable[dict[str, Profile]]]


def period_of(point: str, start_ms: int, end_ms: int, series: Series, profile: Profile) -> Period:
    """A stored period's samples, joined by lines no further than its profile's gap limit."""
    return Period(point, start_ms, end_ms, series, periods.gap_limit_ms(profile))


class RollupKeeper:
    """The rollup levels of every stored period, read and kept in step with the chunks."""

    def __init__(
        self, blobs: RollupBlobs, chunks: ChunkObjects, profiles: Profiles, *, memory_bytes: int
    ) -> None:
        self._cache = RollupCache(blobs, memory_bytes=memory_bytes)
        self._chunks = chunks
        self._profiles = profiles

    def forget(self, site: str, points: Sequence[str] | None = None) -> int:
        """Drop this process's decoded rollups of ``points`` (``None``: every point)."""
        return self._cache.forget(site, points)

    async def read(
        self,
        site: str,
        names: Sequence[str],
        level: str,
        start_ms: int,
        end_ms: int,
        rows: Sequence[ChunkRow] = (),
    ) -> dict[str, rollups.Buckets]:
        """The buckets of ``names`` at ``level``; a month that ``rows`` (the chunk index
        of the range) say holds samples but has no blob is rebuilt from its chunks."""
        held = {(r.point, extents.month_floor(r.period_start_ms)) for r in rows if r.samples}
        return await self._cache.read(
            site, names, level, start_ms, end_ms, rebuild=self._months, held=held
        )

    async def update(self, site: str, changed: Sequence[Period], now_ms: int) -> int:
        """Rebuild the buckets of the periods a write changed; return the blobs written."""
        # a month whose blob is damaged is rebuilt whole from its chunks (written before)
        return await self._cache.update(site, changed, now_ms, rebuild=self._months)

    async def drop(
        self, site: str, points: Sequence[str] | None, rows: Sequence[ChunkRow] | None, now_ms: int
    ) -> int:
        """Remove the buckets of the dropped periods ``rows`` (``None``: every blob of
        ``points``, ``None`` again: of the whole site); return the blobs rewritten or
        removed."""
        if rows is None:
            dropped = await self._cache.delete(site, points)
        else:
            emptied = [
                Period(r.point, r.period_start_ms, r.period_end_ms, Series.empty(r.point))
                for r in rows
            ]
            # a damaged blob's month: rebuilt from the chunks left
            dropped = await self._cache.update(site, emptied, now_ms, rebuild=self._months)
        self._cache.forget(site, points)
        return dropped

    async def _months(self, site: str, months: Sequence[tuple[str, int]]) -> list[Period]:
        """The stored samples of each (point, month) as a whole-month period (rollup blobs
        of an older format, damaged or not built yet are built from them): one index
        query, then one load of each point's chunks over its months."""
        out = []
        by_point: dict[str, list[int]] = defaultdict(list)
        for point, month in months:
            by_point[point].append(month)
        profiles = await self._profiles(site, sorted(by_point))
        lo = min(m for _, m in months)
        hi = extents.next_month(max(m for _, m in months))
        every = await self._chunks.rows(site, sorted(by_point), lo, hi)  # one query
        for point, starts in sorted(by_point.items()):
            lo, hi = min(starts), extents.next_month(max(starts))
            rows = [
                r
                for r in every
                if r.point == point and r.period_start_ms < hi and lo < r.period_end_ms
            ]
            loaded = await self._chunks.load(site, [point], rows, lo, hi)
            profile = profiles.get(point, Profile())
            damaged = loaded.damaged
            for month in sorted(starts):
                end = extents.next_month(month)
                series = loaded.series[point].crop(month, end)
                period = period_of(point, month, end, series, profile)
                # a lost or damaged chunk leaves samples out: such a month is not stored
                lost = any(r.period_start_ms < end and month < r.period_end_ms for r in damaged)
                out.append(dataclasses.replace(period, whole=not lost))
        return out
