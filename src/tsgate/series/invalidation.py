"""Dropping cached data so the next read refetches it from upstream.

Any point set and any time range: every stored period (a day, or a compacted month)
overlapping the range is dropped whole, with its object, and the rollup buckets of that
period are removed with it (buckets of other periods in the same month blob stay, so
they keep agreeing with the chunks beside them).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tsgate.clock import wall_clock_ms
from tsgate.core.extents import END_OF_TIME_MS
from tsgate.series.chunkstore import ChunkStore


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
    rows, objects, rollups = await store.drop(
        site,
        points,
        lo,
        hi,
        whole=start_ms is None and end_ms is None,
        now_ms=now_ms if now_ms is not None else wall_clock_ms(),
    )
    dropped_lo = min((r.period_start_ms for r in rows), default=lo)
    dropped_hi = max((r.period_end_ms for r in rows), default=hi)
    return Invalidated(len(rows), objects, rollups, dropped_lo, dropped_hi)
