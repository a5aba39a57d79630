"""Compaction: a settled month whose every day is final is folded into one final month
chunk (one object, one index row instead of about thirty)."""

from __future__ import annotations

from collections.abc import Sequence

from tsgate.core import extents
from tsgate.core.model import MS_PER_DAY
from tsgate.series.chunkwriter import ChunkWriter, Layout
from tsgate.series.index import ChunkRow
from tsgate.series.periods import Target


def finished_months(
    layout: Layout, written: Sequence[ChunkRow], now_ms: int, settle_ms: int
) -> list[tuple[str, list[ChunkRow]]]:
    """Each (point, final day rows of a whole month) that a write made ready to compact:
    a settled month one of whose days ``written`` finalised, every day of it final."""
    current = {(r.point, r.period_start_ms): r for rows in layout.values() for r in rows}
    current |= {(r.point, r.period_start_ms): r for r in written}
    months = {
        (r.point, extents.month_floor(r.period_start_ms)) for r in written if r.final and r.day
    }
    ready = []
    for point, month in sorted(months):
        end = extents.next_month(month)
        if not extents.is_settled(end, now_ms, settle_ms):
            continue
        days = [current.get((point, day)) for day in range(month, end, MS_PER_DAY)]
        whole = [d for d in days if d is not None and d.final]
        if len(whole) == len(days):
            ready.append((point, whole))
    return ready


class Compactor:
    def __init__(self, writer: ChunkWriter) -> None:
        self._writer = writer

    async def compact_finished(
        self, site: str, layout: Layout, written: Sequence[ChunkRow], now_ms: int, settle_ms: int
    ) -> None:
        """Fold settled months whose every day is final into one month chunk each."""
        for point, days in finished_months(layout, written, now_ms, settle_ms):
            await self.compact(site, point, days, now_ms)

    async def compact(self, site: str, point: str, days: Sequence[ChunkRow], now_ms: int) -> bool:
        """Fold final day rows (a whole month) into one final month row."""
        draft = await self._writer.draft(
            point, Target(days[0].period_start_ms, days[-1].period_end_ms, tuple(days))
        )
        if extents.merge(draft.coverage) != [(draft.start_ms, draft.end_ms)]:
            return False  # an object went missing: leave the days to be refetched
        draft.force_final = True
        await self._writer.commit(site, [draft], {}, now_ms, ())
        return True
