"""Writing fetched samples into their chunks.

A chunk is one point's raw samples for one UTC day, or for one UTC month once settled
(written whole when a settled month is fetched at once, or compacted from final days:
``series.compaction``).

Writes **merge, never replace**: a fetch is folded into what the period already holds
(a union of samples keyed by time, the newest value winning), its trusted span is added
to the period's coverage (``series.periods``), and the period's state is worked out
again. The objects, index rows and rollups of the rewritten periods are then replaced
in that order (``ChunkObjects.replace``, ``RollupKeeper.update``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from tsgate.core import extents
from tsgate.core.codec import encode_series
from tsgate.core.kinds import PeriodMode, observed_pattern
from tsgate.core.model import Series, concat
from tsgate.series import offload, periods
from tsgate.series.chunkobjects import ChunkObjects, checksum_of, object_key
from tsgate.series.index import FINAL, PROVISIONAL, RAW, ChunkRow, Range
from tsgate.series.periods import Profile, Target
from tsgate.series.rollupkeeper import RollupKeeper, period_of

if TYPE_CHECKING:
    from tsgate.series.catalog import ObservedModeRows


@dataclass(frozen=True, slots=True)
class Fetched:
    """What one upstream read returned for one point over ``span``."""

    point: str
    span: Range
    series: Series


@dataclass
class WriteReport:
    periods: int = 0
    samples: int = 0  # samples the fetches carried
    repaired: int = 0  # samples new to ranges already covered: late data
    damaged: int = 0  # stored objects found missing or damaged while merging
    changed: dict[str, list[Range]] = field(default_factory=dict)  # periods rewritten


@dataclass
class Draft:
    """A period being rewritten: what it held plus what this write adds."""

    point: str
    start_ms: int
    end_ms: int
    series: Series
    coverage: list[Range]
    tail: Range | None
    fetched_at_ms: int
    replaces: list[ChunkRow]
    force_final: bool = False

    def placeholder(self, site: str) -> ChunkRow:
        return ChunkRow(
            site, self.point, RAW, self.start_ms, self.end_ms, "", "", (), 0, 0, "open", (),
            0, None, 0, 0, None, None, 0,
        )  # fmt: skip


Layout = dict[str, list[ChunkRow]]  # each point's rows around a write, as it left them


class ChunkWriter:
    """Merges fetches into their periods and replaces the periods' chunks and rollups."""

    def __init__(
        self, chunks: ChunkObjects, rollups: RollupKeeper, modes: ObservedModeRows
    ) -> None:
        self._chunks = chunks
        self._rollups = rollups
        self._modes = modes

    async def merge(
        self,
        site: str,
        fetched: Sequence[Fetched],
        *,
        profiles: dict[str, Profile],
        now_ms: int,
        lookback_ms: int,
        settle_ms: int,
        schedule_ms: Sequence[int],
    ) -> tuple[WriteReport, Layout, list[ChunkRow]]:
        """Merge fetched spans into their periods; return the report, the layout the
        write left and the rows it wrote."""
        report = WriteReport(samples=sum(len(f.series) for f in fetched))
        layout: Layout = defaultdict(list)
        if not fetched:
            return report, layout, []
        points = sorted({f.point for f in fetched})
        lo = extents.month_floor(min(f.span[0] for f in fetched))
        hi = extents.next_month(max(f.span[1] for f in fetched) - 1)
        for row in await self._chunks.rows(site, points, lo, hi):
            layout[row.point].append(row)
        drafts: dict[tuple[str, int], Draft] = {}
        spans: dict[str, list[Range]] = defaultdict(list)  # each point's, in this write
        for f in fetched:
            spans[f.point].append(f.span)
        for f in sorted(fetched, key=lambda f: (f.point, f.span)):
            for target in periods.targets(
                layout[f.point], f.span, now_ms=now_ms, settle_ms=settle_ms, fetched=spans[f.point]
            ):
                key = (f.point, target.start_ms)
                draft = drafts.get(key)
                if draft is None:
                    draft = await self.draft(f.point, target, report)
                    drafts[key] = draft
                    replaced = {r.period_start_ms for r in target.replaces}
                    layout[f.point] = [
                        r for r in layout[f.point] if r.period_start_ms not in replaced
                    ] + [draft.placeholder(site)]
                report.repaired += _apply(draft, f, now_ms, lookback_ms)
        rows = await self.commit(site, list(drafts.values()), profiles, now_ms, schedule_ms)
        report.periods = len(rows)
        for row in rows:
            report.changed.setdefault(row.point, []).append(
                (row.period_start_ms, row.period_end_ms)
            )
        self._chunks.counters.repaired += report.repaired
        return report, layout, rows

    async def draft(self, point: str, target: Target, report: WriteReport | None = None) -> Draft:
        """What the periods ``target`` replaces hold, as one draft of its span."""
        parts: list[Series] = []
        coverage: list[Range] = []
        tail: Range | None = None
        fetched_at = 0
        for row in target.replaces:
            series = await self._chunks.read(row)
            if series is None:
                self._chunks.counters.damaged += 1
                if report is not None:
                    report.damaged += 1
                continue  # lost: what it covered is covered no more (the reader refetches)
            parts.append(series)
            coverage.extend(row.coverage)
            if row.tail_end_ms > row.tail_start_ms and row.fetched_at_ms >= fetched_at:
                tail, fetched_at = (row.tail_start_ms, row.tail_end_ms), row.fetched_at_ms
        return Draft(
            point,
            target.start_ms,
            target.end_ms,
            concat(point, parts),
            extents.merge(coverage),
            tail,
            fetched_at,
            list(target.replaces),
        )

    async def commit(
        self,
        site: str,
        drafts: Sequence[Draft],
        profiles: dict[str, Profile],
        now_ms: int,
        schedule_ms: Sequence[int],
    ) -> list[ChunkRow]:
        """Objects first, then the index rows in one swap, then old objects and rollups."""
        size = sum(len(d.series) for d in drafts)  # encoding a site's day is seconds of CPU
        finished = await offload.run(size, _finish_all, site, drafts, profiles, now_ms, schedule_ms)
        rows = [row for row, _ in finished]
        blobs = {row.object_key: blob for row, blob in finished if blob}
        await self._chunks.replace(
            [r for d in drafts for r in d.replaces],
            rows,
            blobs,
            [(row, d.series) for d, row in zip(drafts, rows, strict=True)],
        )
        changed = [
            period_of(d.point, d.start_ms, d.end_ms, d.series, profiles.get(d.point, Profile()))
            for d in drafts
        ]
        await self._rollups.update(site, changed, now_ms)
        observed = [
            PeriodMode(d.point, d.start_ms, d.end_ms, *observed_pattern(d.series.t_ms, d.series.v))
            for d in drafts
        ]
        await self._modes.put(site, observed, now_ms)
        return rows


def _apply(draft: Draft, f: Fetched, now_ms: int, lookback_ms: int) -> int:
    """Fold one fetch into a draft; return how many of its samples are late data (new
    samples inside ranges the draft already covered)."""
    span = (max(f.span[0], draft.start_ms), min(f.span[1], draft.end_ms))
    part = f.series.crop(*span)
    repaired = 0
    if len(part) and draft.coverage:
        inside = np.zeros(len(part), dtype=bool)
        for s, e in draft.coverage:
            inside |= (part.t_ms >= s) & (part.t_ms < e)
        new = ~np.isin(part.t_ms, draft.series.t_ms)
        repaired = int(np.count_nonzero(inside & new))
    draft.series = concat(draft.point, [draft.series, part])
    trusted, tail = periods.split_fetch(span, now_ms, lookback_ms)
    if trusted is not None:
        draft.coverage = extents.merge([*draft.coverage, trusted])
    if tail is not None:
        draft.tail, draft.fetched_at_ms = tail, now_ms
    return repaired


def _finish_all(
    site: str,
    drafts: Sequence[Draft],
    profiles: dict[str, Profile],
    now_ms: int,
    schedule_ms: Sequence[int],
) -> list[tuple[ChunkRow, bytes]]:
    return [_finish(site, d, profiles.get(d.point, Profile()), now_ms, schedule_ms) for d in drafts]


def _finish(
    site: str, d: Draft, profile: Profile, now_ms: int, schedule_ms: Sequence[int]
) -> tuple[ChunkRow, bytes]:
    period = (d.start_ms, d.end_ms)
    coverage = tuple(extents.merge(d.coverage))
    holes: tuple[Range, ...] = ()
    if d.force_final:
        state, done, due = FINAL, len(schedule_ms), None
    else:
        cadence = periods.cadence_of(d.series.t_ms, profile)
        found = periods.find_holes(d.series.t_ms, coverage, cadence)
        state, done, due = periods.settle(
            period, coverage, found, profile, now_ms=now_ms, schedule_ms=schedule_ms
        )
        if state == PROVISIONAL:
            holes = tuple(found)
    blob = encode_series(d.series) if len(d.series) else b""
    checksum = checksum_of(blob) if blob else ""
    tail = d.tail if d.tail is not None and state != FINAL else (d.start_ms, d.start_ms)
    row = ChunkRow(
        site=site,
        point=d.point,
        resolution=RAW,
        period_start_ms=d.start_ms,
        period_end_ms=d.end_ms,
        object_key=object_key(site, d.point, d.start_ms, d.end_ms, checksum) if blob else "",
        checksum=checksum,
        coverage=coverage,
        tail_start_ms=tail[0],
        tail_end_ms=tail[1],
        state=state,
        holes=holes,
        rechecks=done,
        recheck_at_ms=due,
        samples=len(d.series),
        size_bytes=len(blob),
        first_ms=int(d.series.t_ms[0]) if len(d.series) else None,
        last_ms=int(d.series.t_ms[-1]) if len(d.series) else None,
        fetched_at_ms=d.fetched_at_ms or now_ms,
    )
    return row, blob
