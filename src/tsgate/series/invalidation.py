"""Dropping cached data so the next read refetches it from upstream.

The range is widened to whole UTC months: rollups are kept one blob per point-month and
settled months are one chunk, so a month is the smallest unit that can be dropped
without leaving rollups that disagree with the chunks beside them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from tsgate.series import extents
from tsgate.series.chunkstore import ChunkStore

# the year 10000: "no end given" (well inside int64 and the month arithmetic)
END_OF_TIME_MS = 253_402_300_800_000
_DELETE_BATCH = 32  # object deletions in flight at once


@dataclass(frozen=True)
class Invalidated:
    chunks: int
    objects: int
    rollups: int
    start_ms: int  # the range actually dropped (whole months)
    end_ms: int


def month_span(start_ms: int | None, end_ms: int | None) -> tuple[int, int]:
    """``[start, end)`` widened to whole UTC months; open ends reach all of time."""
    lo = 0 if start_ms is None else extents.month_floor(start_ms)
    if end_ms is None:
        return lo, END_OF_TIME_MS
    hi = extents.month_floor(end_ms)
    return lo, hi if hi == end_ms else extents.next_month(end_ms)


async def invalidate(
    store: ChunkStore,
    site: str,
    points: Sequence[str] | None,
    start_ms: int | None = None,
    end_ms: int | None = None,
) -> Invalidated:
    """Drop the index rows, objects, rollups and decoded copies of ``points`` (``None``:
    every point of ``site``) in the months overlapping the range."""
    lo, hi = month_span(start_ms, end_ms)
    # index rows first: from then on no reader looks for the objects about to go
    rows = await store.db.chunks.delete(site, points, lo, hi)
    keys = sorted({r.object_key for r in rows if r.object_key})
    for i in range(0, len(keys), _DELETE_BATCH):
        await asyncio.gather(*(store.objects.delete(k) for k in keys[i : i + _DELETE_BATCH]))
    rollups = await store.db.rollups.delete(site, points, lo, hi)
    store.forget(site, points)
    return Invalidated(len(rows), len(keys), rollups, lo, hi)
