"""Chunk objects and their index: keys, object I/O, the decoded-chunk cache.

Objects are named by their content's checksum, written before the index row that
points at them, and the old object is deleted only after the row moved on, so a reader
never sees a row without its object. A missing or damaged object is *not cached*: the
reader drops its row (only if the row still names that object) and fetches the period
again (``heal``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tsgate.core.codec import CodecError, decode_series
from tsgate.core.model import Series, concat
from tsgate.lru import LRU
from tsgate.series.index import RAW, ChunkIndex, ChunkRow
from tsgate.series.memory import series_bytes

if TYPE_CHECKING:
    from tsgate.object_store.base import ObjectStore

log = logging.getLogger("tsgate.chunks")

_LOAD_CONCURRENCY = 32
_DELETE_BATCH = 32  # object deletions in flight at once


def _digest(*parts: str) -> str:
    return hashlib.blake2b("\x00".join(parts).encode(), digest_size=16).hexdigest()


def checksum_of(blob: bytes) -> str:
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


def object_prefix(site: str, point: str | None = None) -> str:
    """Where the objects of a site's point (``None``: of every point of the site) live.
    Keys come from hashes, never from raw names (no path tricks, bounded length)."""
    site_h = _digest(site)
    return f"chunks/{site_h[:2]}/{site_h}/" + (f"{_digest(site, point)}/" if point else "")


def object_key(site: str, point: str, start_ms: int, end_ms: int, checksum: str) -> str:
    return f"{object_prefix(site, point)}{start_ms}-{end_ms}-{checksum[:16]}.tsgc"


@dataclass
class StoreCounters:
    damaged: int = 0  # objects found missing or corrupt (and refetched)
    repaired: int = 0  # late samples merged into covered ranges


@dataclass(frozen=True)
class Loaded:
    series: dict[str, Series]
    sources: set[str]
    damaged: list[ChunkRow]


class ChunkObjects:
    """The raw chunks: index rows, their objects, and the decoded copies of this process."""

    def __init__(self, index: ChunkIndex, objects: ObjectStore, *, memory_bytes: int) -> None:
        self._index = index
        self._objects = objects
        # decoded objects by key; keys name their content, so an entry never goes stale
        self._memory: LRU[str, Series] = LRU(memory_bytes, series_bytes)
        self._gate = asyncio.Semaphore(_LOAD_CONCURRENCY)
        self.counters = StoreCounters()

    def forget(self, site: str, points: Sequence[str] | None = None) -> int:
        """Drop this process's decoded chunks of ``points`` (``None``: every point) of
        ``site``; return how many entries went."""
        prefixes = tuple(object_prefix(site, p) for p in (points if points is not None else [None]))
        return self._memory.drop_where(lambda key: key.startswith(prefixes))

    # ---- the index ----------------------------------------------------------------------

    async def rows(
        self, site: str, names: Sequence[str], start_ms: int, end_ms: int
    ) -> list[ChunkRow]:
        return await self._index.overlapping(site, names, RAW, start_ms, end_ms)

    async def due(self, now_ms: int, limit: int) -> list[ChunkRow]:
        """Provisional rows whose re-check is due, oldest first."""
        return await self._index.due(now_ms, limit)

    # ---- reading ----------------------------------------------------------------------

    async def load(
        self, site: str, names: Sequence[str], rows: Sequence[ChunkRow], start_ms: int, end_ms: int
    ) -> Loaded:
        """Each point's samples in ``[start_ms, end_ms)`` from ``rows``, the layers used,
        and the rows whose object was missing or damaged (their samples are absent)."""
        sources: set[str] = set()
        wanted = [r for r in rows if r.object_key]
        # decoded objects in memory are taken at once; only the others cost a task each
        parts: list[Series | None] = [self._memory.get(r.object_key) for r in wanted]
        if any(p is not None for p in parts):
            sources.add("MEMORY")
        misses = [i for i, p in enumerate(parts) if p is None]
        if misses:
            read = await asyncio.gather(*(self.read(wanted[i], sources) for i in misses))
            for i, part in zip(misses, read, strict=True):
                parts[i] = part
        grouped: dict[str, list[Series]] = defaultdict(list)
        damaged: list[ChunkRow] = []
        for row, part in zip(wanted, parts, strict=True):
            if part is None:
                damaged.append(row)
            else:
                grouped[row.point].append(part)
        found = {n: concat(n, grouped.get(n, ())).crop(start_ms, end_ms) for n in names}
        return Loaded(found, sources, damaged)

    async def read(self, row: ChunkRow, sources: set[str] | None = None) -> Series | None:
        """The samples of ``row``'s object; ``None`` when it is missing or damaged."""
        if not row.object_key:
            return Series.empty(row.point)
        hit = self._memory.get(row.object_key)
        if hit is not None:
            if sources is not None:
                sources.add("MEMORY")
            return hit
        series = await self.read_stored(row)
        if series is None:
            return None
        self._memory.put(row.object_key, series)
        if sources is not None:
            sources.add("STORE")
        return series

    async def read_stored(self, row: ChunkRow) -> Series | None:
        """``row``'s object as stored, past this process's decoded copies; ``None`` when
        it is missing, its checksum differs or it does not decode."""
        if not row.object_key:
            return Series.empty(row.point)
        async with self._gate:
            data = await self._objects.get(row.object_key)
        if data is None or checksum_of(data) != row.checksum:
            return None
        try:
            return decode_series(row.point, data)
        except CodecError:
            return None

    async def heal(self, damaged: Sequence[ChunkRow]) -> int:
        """Drop the index rows of damaged objects (unless a writer already replaced them),
        so the next plan fetches those periods again; return how many rows went."""
        dropped = 0
        for row in damaged:
            if await self._index.drop_if(row):
                dropped += 1
                log.warning(
                    "chunk object %s of %s/%s is missing or damaged: dropped, refetching",
                    row.object_key,
                    row.site,
                    row.point,
                )
        self.counters.damaged += len(damaged)
        return dropped

    # ---- writing ----------------------------------------------------------------------

    async def replace(
        self,
        old: Sequence[ChunkRow],
        new: Sequence[ChunkRow],
        blobs: dict[str, bytes],
        decoded: Sequence[tuple[ChunkRow, Series]],
    ) -> None:
        """Swap ``old`` rows for ``new`` ones: objects first, then the index rows in one
        swap, then the old objects; the decoded series of the new rows are kept."""
        old_keys = {r.object_key for r in old if r.object_key}
        # one batch; no fsync: a torn object fails its checksum and is fetched again
        await self._objects.put_many(
            [(k, b) for k, b in blobs.items() if k not in old_keys], durable=False
        )
        await self._index.swap(old, new)
        doomed = old_keys - set(blobs)
        await asyncio.gather(*(self._objects.delete(k) for k in doomed))
        for row, series in decoded:
            # days (recent data: what dashboards read next) are kept as written; whole
            # months (history a long cold read writes) only once read, so one cold year
            # does not push every other caller's working set out of memory
            if row.object_key and row.day:
                self._memory.put(row.object_key, series)

    async def delete(
        self, site: str, points: Sequence[str] | None, start_ms: int, end_ms: int
    ) -> tuple[list[ChunkRow], int]:
        """Drop the rows of ``points`` (``None``: every point) overlapping the range and
        their objects; return the rows and how many objects went."""
        # index rows first: from then on no reader looks for the objects about to go
        rows = await self._index.delete(site, points, start_ms, end_ms)
        keys = sorted({r.object_key for r in rows if r.object_key})
        for i in range(0, len(keys), _DELETE_BATCH):
            await asyncio.gather(*(self._objects.delete(k) for k in keys[i : i + _DELETE_BATCH]))
        self.forget(site, points)
        return rows, len(keys)
