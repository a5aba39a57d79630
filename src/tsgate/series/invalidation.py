"""Dropping cached data so the next read refetches it from upstream.

Any point set and any time range: every stored period (a day, or a compacted month)
overlapping the range is dropped whole, with its object, and the rollup buckets of that
period are removed with it (buckets of other periods in the same month blob stay, so
they keep agreeing with the chunks beside them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from tsgate.clock import wall_clock_ms
from tsgate.core.model import Series
from tsgate.series.chunkstore import ChunkStore
from tsgate.series.rollupcache import Period

# the year 10000: "no end given" (well inside int64 and the month arithmetic)
END_OF_TIME_MS = 253_402_300_800_000
_DELETE_BATCH = 32  # object deletions in flight at once


@dataclass(frozen=True)
class Invalidated:
    chunks: int
    objects: int
    rollups: int  # rollup blobs rewritten or removed
    start_ms: int  # the periods actually dropped (whole days or months)
    end_ms: int


async def invalidate(
    store: ChunkStore,
    site: str,
    points: Sequence[str] | None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    *,
    now_ms: int | None = None,
) -> Invalidated:
    """Drop the index rows, objects, rollups and decoded copies of ``points`` (``None``:
    every point of ``site``) in the periods overlapping the range."""
    lo = 0 if start_ms is None else start_ms
    hi = END_OF_TIME_MS if end_ms is None else end_ms
    # index rows first: from then on no reader looks for the objects about to go
    rows = await store.index.delete(site, points, lo, hi)
    keys = sorted({r.object_key for r in rows if r.object_key})
    for i in range(0, len(keys), _DELETE_BATCH):
        await asyncio.gather(*(store.objects.delete(k) for k in keys[i : i + _DELETE_BATCH]))
    if start_ms is None and end_ms is None:
        rollups = await store.rollup_cache.delete(site, points)
    else:
        emptied = [
            Period(r.point, r.period_start_ms, r.period_end_ms, Series.empty(r.point)) for r in rows
        ]
        rollups = await store.rollup_cache.update(
            site,
            emptied,
            now_ms if now_ms is not None else wall_clock_ms(),
            rebuild=store.month_periods,  # a damaged blob's month: from the chunks left
        )
    store.forget(site, points)
    dropped_lo = min((r.period_start_ms for r in rows), default=lo)
    dropped_hi = max((r.period_end_ms for r in rows), default=hi)
    return Invalidated(len(rows), len(keys), rollups, dropped_lo, dropped_hi)
