"""The chunk store: what the reader, re-checks, invalidation and verification use of the
cached raw data and its rollups, composed from the modules that own each part:

- ``series.chunkobjects``: keys, index rows, object I/O and the decoded-chunk cache;
- ``series.chunkwriter``: fetches merged into their day or month periods;
- ``series.rollupkeeper``: the rollup levels kept in step with the chunks;
- ``series.compaction``: settled months of final days folded into one chunk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tsgate.core import rollups
from tsgate.core.model import Series
from tsgate.series import periods
from tsgate.series.chunkobjects import ChunkObjects, Loaded, StoreCounters, object_prefix
from tsgate.series.chunkwriter import ChunkWriter, Fetched, WriteReport
from tsgate.series.compaction import Compactor
from tsgate.series.index import RAW, ChunkIndex, ChunkRow
from tsgate.series.periods import Profile
from tsgate.series.rollupcache import COARSE_LEVELS_MS, LEVELS_MS, RollupBlobs
from tsgate.series.rollupkeeper import RollupKeeper

if TYPE_CHECKING:
    from tsgate.object_store.base import ObjectStore
    from tsgate.series.catalog import ObservedModeRows, PointRows

__all__ = [
    "COARSE_LEVELS_MS",
    "LEVELS_MS",
    "RAW",
    "ChunkStore",
    "Fetched",
    "Loaded",
    "StoreCounters",
    "WriteReport",
    "object_prefix",
]


class ChunkStore:
    def __init__(
        self,
        index: ChunkIndex,
        points: PointRows,
        rollup_blobs: RollupBlobs,
        modes: ObservedModeRows,
        objects: ObjectStore,
        *,
        memory_bytes: int = 256 << 20,
    ) -> None:
        self._catalog = points
        self._chunks = ChunkObjects(index, objects, memory_bytes=memory_bytes // 2)
        self._rollups = RollupKeeper(
            rollup_blobs, self._chunks, self.profiles, memory_bytes=memory_bytes // 2
        )
        self._writer = ChunkWriter(self._chunks, self._rollups, modes)
        self._compactor = Compactor(self._writer)

    @property
    def counters(self) -> StoreCounters:
        return self._chunks.counters

    def forget(self, site: str, points: Sequence[str] | None = None) -> int:
        """Drop this process's decoded chunks and rollups of ``points`` (``None``: every
        point) of ``site``; return how many entries went."""
        return self._chunks.forget(site, points) + self._rollups.forget(site, points)

    # ---- the catalog's view of points ---------------------------------------------------

    async def profiles(self, site: str, names: Sequence[str]) -> dict[str, Profile]:
        """Collect flag and reporting interval of each point the catalog knows."""
        found = await self._catalog.profiles(site, names)
        return {
            name: Profile(collecting, interval_s * 1000 if interval_s else None)
            for name, (collecting, interval_s) in found.items()
        }

    async def collecting_points(self, site: str) -> int:
        return len(await self._catalog.names(site))

    # ---- reading ----------------------------------------------------------------------

    async def rows(
        self, site: str, names: Sequence[str], start_ms: int, end_ms: int
    ) -> list[ChunkRow]:
        return await self._chunks.rows(site, names, start_ms, end_ms)

    async def due(self, now_ms: int, limit: int) -> list[ChunkRow]:
        """Provisional rows whose re-check is due, oldest first."""
        return await self._chunks.due(now_ms, limit)

    async def load(
        self, site: str, names: Sequence[str], rows: Sequence[ChunkRow], start_ms: int, end_ms: int
    ) -> Loaded:
        """Each point's samples in ``[start_ms, end_ms)`` from ``rows``, the layers used,
        and the rows whose object was missing or damaged (their samples are absent)."""
        return await self._chunks.load(site, names, rows, start_ms, end_ms)

    async def read_stored(self, row: ChunkRow) -> Series | None:
        """``row``'s object as stored (never a decoded copy); ``None`` when it is missing,
        damaged or does not decode."""
        return await self._chunks.read_stored(row)

    async def heal(self, damaged: Sequence[ChunkRow]) -> int:
        """Drop the index rows of damaged objects (unless a writer already replaced them),
        so the next plan fetches those periods again; return how many rows went."""
        return await self._chunks.heal(damaged)

    async def rollups(
        self,
        site: str,
        names: Sequence[str],
        level: str,
        start_ms: int,
        end_ms: int,
        rows: Sequence[ChunkRow] = (),
    ) -> dict[str, rollups.Buckets]:
        """The rollup buckets of ``names``; ``rows``: the chunk index rows of the range,
        so a month whose chunks hold samples but whose blob is lost is rebuilt, not read
        as empty."""
        return await self._rollups.read(site, names, level, start_ms, end_ms, rows)

    # ---- writing ----------------------------------------------------------------------

    async def write(
        self,
        site: str,
        fetched: Sequence[Fetched],
        *,
        profiles: dict[str, Profile],
        now_ms: int,
        lookback_ms: int,
        settle_ms: int,
        schedule_ms: Sequence[int] = periods.DEFAULT_RECHECKS_MS,
    ) -> WriteReport:
        """Merge fetched spans into their periods, then compact months made final."""
        report, layout, written = await self._writer.merge(
            site,
            fetched,
            profiles=profiles,
            now_ms=now_ms,
            lookback_ms=lookback_ms,
            settle_ms=settle_ms,
            schedule_ms=schedule_ms,
        )
        await self._compactor.compact_finished(site, layout, written, now_ms, settle_ms)
        return report

    async def drop(
        self,
        site: str,
        points: Sequence[str] | None,
        start_ms: int,
        end_ms: int,
        *,
        whole: bool,
        now_ms: int,
    ) -> tuple[list[ChunkRow], int, int]:
        """Drop the periods of ``points`` (``None``: every point) overlapping the range:
        index rows first, then their objects, then their rollups (``whole``: every rollup
        blob of the points); return the rows, the objects and the rollup blobs that went."""
        rows, objects = await self._chunks.delete(site, points, start_ms, end_ms)
        blobs = await self._rollups.drop(site, points, None if whole else rows, now_ms)
        return rows, objects, blobs
