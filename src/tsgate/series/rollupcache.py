"""Rollup blobs kept in step with the chunks: rebuilt for every period a write changes,
read through a decoded in-memory copy keyed by the blob's version."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tsgate.series import extents, offload, rollups
from tsgate.series.codec import CodecError
from tsgate.series.memory import LRU, buckets_bytes
from tsgate.series.model import MS_PER_DAY, MS_PER_HOUR, Series

if TYPE_CHECKING:
    from tsgate.database.rollups import RollupRow, RollupStore

LEVELS_MS = {"1h": MS_PER_HOUR, "1d": MS_PER_DAY}
_END_OF_TIME_MS = 253_402_300_800_000


@dataclass(frozen=True, slots=True)
class Period:
    """All of one point's samples in ``[start_ms, end_ms)`` (a stored chunk period)."""

    point: str
    start_ms: int
    end_ms: int
    series: Series


class RollupCache:
    def __init__(self, blobs: RollupStore, *, memory_bytes: int) -> None:
        self._blobs = blobs
        self.decoded: LRU[tuple[str, str, str, int, int], rollups.Buckets] = LRU(
            memory_bytes, buckets_bytes
        )

    def forget(self, site: str, points: Sequence[str] | None) -> int:
        wanted = None if points is None else set(points)
        return self.decoded.drop_where(
            lambda key: key[0] == site and (wanted is None or key[1] in wanted)
        )

    async def read(
        self, site: str, names: Sequence[str], level: str, start_ms: int, end_ms: int
    ) -> dict[str, rollups.Buckets]:
        """Each point's buckets at ``level`` whose start lies in ``[start_ms, end_ms)``;
        decoded month blobs are re-read only when their row changed."""
        versions = await self._blobs.versions(site, names, level, start_ms, end_ms)
        months: dict[tuple[str, int], rollups.Buckets] = {}
        stale: list[tuple[str, int, int]] = []
        for point, month, updated in versions:
            hit = self.decoded.get((site, point, level, month, updated))
            if hit is None:
                stale.append((point, month, updated))
            else:
                months[(point, month)] = hit
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
                except CodecError:
                    continue  # unreadable: treated as absent until its chunks are rewritten
                months[(row.point, row.period_start_ms)] = buckets
                self.decoded.put(
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

    async def delete(self, site: str, points: Sequence[str] | None) -> int:
        """Remove every rollup blob of ``points`` (``None``: all) of ``site``."""
        self.forget(site, points)
        return await self._blobs.delete(site, points, 0, _END_OF_TIME_MS)

    async def update(self, site: str, periods: Sequence[Period], now_ms: int) -> int:
        """Rebuild the buckets of each period from its samples (buckets it no longer has
        go too); buckets outside the periods are kept. Returns the blobs written."""
        from tsgate.database.rollups import RollupRow

        if not periods:
            return 0
        names = sorted({p.point for p in periods})
        # other processes see the new version in updated_at; this one also drops its
        # copies in case two writes share a millisecond
        self.forget(site, names)
        lo = min(p.start_ms for p in periods)
        hi = max(p.end_ms for p in periods)
        written = 0
        samples = sum(len(p.series) for p in periods)
        for level, width in LEVELS_MS.items():
            existing = await self._blobs.get(site, names, level, lo, hi)
            packed = await offload.run(samples, _rebuilt, existing, periods, width)
            await self._blobs.put(
                [RollupRow(site, p, level, month, blob, now_ms) for p, month, blob in packed]
            )
            written += len(packed)
        return written


def _rebuilt(
    existing: Sequence[RollupRow], periods: Sequence[Period], width: int
) -> list[tuple[str, int, bytes]]:
    """The month blobs (point, month, packed buckets) of one level that ``periods`` change:
    what ``existing`` held outside the periods, and the periods' samples bucketed anew."""
    blobs: dict[tuple[str, int], rollups.Buckets] = {}
    for r in existing:
        try:
            blobs[(r.point, r.period_start_ms)] = rollups.unpack(r.blob)
        except CodecError:
            continue  # rebuilt below from what the write knows
    changed: dict[tuple[str, int], rollups.Buckets] = {}
    bucketed = rollups.bucketize_many([p.series for p in periods], width)
    for p, fresh in zip(periods, bucketed, strict=True):
        for month in extents.months_covering(p.start_ms, p.end_ms):
            key = (p.point, month)
            old = changed.get(key, blobs.get(key, rollups.Buckets.empty(width)))
            kept = rollups.concat(
                [
                    rollups.crop(old, month, p.start_ms),
                    rollups.crop(old, p.end_ms, extents.next_month(month)),
                ]
            )
            fresh_part = rollups.crop(fresh, month, extents.next_month(month))
            changed[key] = rollups.merge(kept, fresh_part)
    return [(point, month, rollups.pack(b)) for (point, month), b in changed.items()]
