"""Chunks of cached upstream data: objects in the object store, rows in the chunk index.

A chunk is one point's raw samples for one UTC day, or for one UTC month once settled
(written whole when a settled month is fetched at once, or compacted from final days).

Writes **merge, never replace**: a fetch is folded into what the period already holds
(a union of samples keyed by time, the newest value winning), its trusted span is added
to the period's coverage (``series.periods``), and the period's state is worked out
again. Objects are named by their content's checksum, written before the index row that
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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from tsgate.core import extents, rollups
from tsgate.core.codec import CodecError, decode_series, encode_series
from tsgate.core.kinds import observed_mode
from tsgate.core.model import MS_PER_DAY, Series, concat
from tsgate.series import offload, periods
from tsgate.series.index import FINAL, PROVISIONAL, RAW, ChunkIndex, ChunkRow, Range
from tsgate.series.memory import LRU, series_bytes
from tsgate.series.periods import Profile, Target
from tsgate.series.rollupcache import COARSE_LEVELS_MS, LEVELS_MS, Period, RollupBlobs, RollupCache

if TYPE_CHECKING:
    from tsgate.object_store.base import ObjectStore
    from tsgate.series.catalog import ObservedModeRows, PointRows

__all__ = [
    "COARSE_LEVELS_MS",
    "LEVELS_MS",
    "RAW",
    "ChunkStore",
    "Fetched",
    "WriteReport",
    "object_prefix",
]

log = logging.getLogger("tsgate.chunks")

_LOAD_CONCURRENCY = 32


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
class StoreCounters:
    damaged: int = 0  # objects found missing or corrupt (and refetched)
    repaired: int = 0  # late samples merged into covered ranges


@dataclass
class _Draft:
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


@dataclass(frozen=True)
class Loaded:
    series: dict[str, Series]
    sources: set[str]
    damaged: list[ChunkRow]


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
        self.index = index
        self.objects = objects
        self._catalog = points
        self._modes = modes
        self.rollup_cache = RollupCache(rollup_blobs, memory_bytes=memory_bytes // 2)
        # decoded objects by key; keys name their content, so an entry never goes stale
        self.memory: LRU[str, Series] = LRU(memory_bytes // 2, series_bytes)
        self.counters = StoreCounters()
        self._gate = asyncio.Semaphore(_LOAD_CONCURRENCY)

    def forget(self, site: str, points: Sequence[str] | None = None) -> int:
        """Drop this process's decoded chunks and rollups of ``points`` (``None``: every
        point) of ``site``; return how many entries went."""
        prefixes = tuple(object_prefix(site, p) for p in (points if points is not None else [None]))
        dropped = self.memory.drop_where(lambda key: key.startswith(prefixes))
        return dropped + self.rollup_cache.forget(site, points)

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
        return await self.index.overlapping(site, names, RAW, start_ms, end_ms)

    async def load(
        self, site: str, names: Sequence[str], rows: Sequence[ChunkRow], start_ms: int, end_ms: int
    ) -> Loaded:
        """Each point's samples in ``[start_ms, end_ms)`` from ``rows``, the layers used,
        and the rows whose object was missing or damaged (their samples are absent)."""
        sources: set[str] = set()
        wanted = [r for r in rows if r.object_key]
        # decoded objects in memory are taken at once; only the others cost a task each
        parts: list[Series | None] = [self.memory.get(r.object_key) for r in wanted]
        if any(p is not None for p in parts):
            sources.add("MEMORY")
        misses = [i for i, p in enumerate(parts) if p is None]
        if misses:
            read = await asyncio.gather(*(self._object(wanted[i], sources) for i in misses))
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

    async def heal(self, damaged: Sequence[ChunkRow]) -> int:
        """Drop the index rows of damaged objects (unless a writer already replaced them),
        so the next plan fetches those periods again; return how many rows went."""
        dropped = 0
        for row in damaged:
            if await self.index.drop_if(row):
                dropped += 1
                log.warning(
                    "chunk object %s of %s/%s is missing or damaged: dropped, refetching",
                    row.object_key,
                    row.site,
                    row.point,
                )
        self.counters.damaged += len(damaged)
        return dropped

    async def _object(self, row: ChunkRow, sources: set[str] | None = None) -> Series | None:
        """The samples of ``row``'s object; ``None`` when it is missing or damaged."""
        if not row.object_key:
            return Series.empty(row.point)
        hit = self.memory.get(row.object_key)
        if hit is not None:
            if sources is not None:
                sources.add("MEMORY")
            return hit
        async with self._gate:
            data = await self.objects.get(row.object_key)
        if data is None or checksum_of(data) != row.checksum:
            return None
        try:
            series = decode_series(row.point, data)
        except CodecError:
            return None
        self.memory.put(row.object_key, series)
        if sources is not None:
            sources.add("STORE")
        return series

    async def rollups(
        self, site: str, names: Sequence[str], level: str, start_ms: int, end_ms: int
    ) -> dict[str, rollups.Buckets]:
        return await self.rollup_cache.read(
            site, names, level, start_ms, end_ms, rebuild=self.month_periods
        )

    async def month_periods(self, site: str, months: Sequence[tuple[str, int]]) -> list[Period]:
        """The stored samples of each (point, month) as a whole-month period (rollup blobs
        of an older format are rebuilt from them)."""
        out = []
        profiles = await self.profiles(site, sorted({p for p, _ in months}))
        for point, month in months:
            end = extents.next_month(month)
            rows = await self.rows(site, [point], month, end)
            loaded = await self.load(site, [point], rows, month, end)
            gap = periods.gap_limit_ms(profiles.get(point, Profile()))
            out.append(Period(point, month, end, loaded.series[point], gap))
        return out

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
        report = WriteReport(samples=sum(len(f.series) for f in fetched))
        if not fetched:
            return report
        points = sorted({f.point for f in fetched})
        lo = extents.month_floor(min(f.span[0] for f in fetched))
        hi = extents.next_month(max(f.span[1] for f in fetched) - 1)
        layout: dict[str, list[ChunkRow]] = defaultdict(list)
        for row in await self.rows(site, points, lo, hi):
            layout[row.point].append(row)
        drafts: dict[tuple[str, int], _Draft] = {}
        for f in sorted(fetched, key=lambda f: (f.point, f.span)):
            for target in periods.targets(
                layout[f.point], f.span, now_ms=now_ms, settle_ms=settle_ms
            ):
                key = (f.point, target.start_ms)
                draft = drafts.get(key)
                if draft is None:
                    draft = await self._draft(f.point, target, report)
                    drafts[key] = draft
                    replaced = {r.period_start_ms for r in target.replaces}
                    layout[f.point] = [
                        r for r in layout[f.point] if r.period_start_ms not in replaced
                    ] + [draft.placeholder(site)]
                report.repaired += _apply(draft, f, now_ms, lookback_ms)
        rows = await self._commit(site, list(drafts.values()), profiles, now_ms, schedule_ms)
        report.periods = len(rows)
        for row in rows:
            report.changed.setdefault(row.point, []).append(
                (row.period_start_ms, row.period_end_ms)
            )
        self.counters.repaired += report.repaired
        await self._compact_finished(site, layout, rows, now_ms, settle_ms)
        return report

    async def _draft(self, point: str, target: Target, report: WriteReport | None = None) -> _Draft:
        parts: list[Series] = []
        coverage: list[Range] = []
        tail: Range | None = None
        fetched_at = 0
        for row in target.replaces:
            series = await self._object(row)
            if series is None:
                self.counters.damaged += 1
                if report is not None:
                    report.damaged += 1
                continue  # lost: what it covered is covered no more (the reader refetches)
            parts.append(series)
            coverage.extend(row.coverage)
            if row.tail_end_ms > row.tail_start_ms and row.fetched_at_ms >= fetched_at:
                tail, fetched_at = (row.tail_start_ms, row.tail_end_ms), row.fetched_at_ms
        return _Draft(
            point,
            target.start_ms,
            target.end_ms,
            concat(point, parts),
            extents.merge(coverage),
            tail,
            fetched_at,
            list(target.replaces),
        )

    async def _commit(
        self,
        site: str,
        drafts: Sequence[_Draft],
        profiles: dict[str, Profile],
        now_ms: int,
        schedule_ms: Sequence[int],
    ) -> list[ChunkRow]:
        """Objects first, then the index rows in one swap, then old objects and rollups."""
        size = sum(len(d.series) for d in drafts)  # encoding a site's day is seconds of CPU
        finished = await offload.run(size, _finish_all, site, drafts, profiles, now_ms, schedule_ms)
        rows = [row for row, _ in finished]
        blobs = {row.object_key: blob for row, blob in finished if blob}
        old = [r for d in drafts for r in d.replaces]
        old_keys = {r.object_key for r in old if r.object_key}
        # one batch; no fsync: a torn object fails its checksum and is fetched again
        await self.objects.put_many(
            [(k, b) for k, b in blobs.items() if k not in old_keys], durable=False
        )
        await self.index.swap(old, rows)
        doomed = old_keys - set(blobs)
        await asyncio.gather(*(self.objects.delete(k) for k in doomed))
        for d, row in zip(drafts, rows, strict=True):
            if row.object_key:
                self.memory.put(row.object_key, d.series)
        await self.rollup_cache.update(
            site,
            [
                Period(
                    d.point,
                    d.start_ms,
                    d.end_ms,
                    d.series,
                    periods.gap_limit_ms(profiles.get(d.point, Profile())),
                )
                for d in drafts
            ],
            now_ms,
            rebuild=self.month_periods,  # a month whose blob is damaged is rebuilt whole
        )
        observed = {d.point: observed_mode(d.series.t_ms, d.series.v) for d in drafts}
        await self._modes.put(site, {p: m for p, m in observed.items() if m}, now_ms)
        return rows

    # ---- compaction ---------------------------------------------------------------------

    async def _compact_finished(
        self,
        site: str,
        layout: dict[str, list[ChunkRow]],
        written: Sequence[ChunkRow],
        now_ms: int,
        settle_ms: int,
    ) -> None:
        """Fold settled months whose every day is final into one month chunk each."""
        current = {(r.point, r.period_start_ms): r for rows in layout.values() for r in rows}
        current |= {(r.point, r.period_start_ms): r for r in written}
        months = {
            (r.point, extents.month_floor(r.period_start_ms))
            for r in written
            if r.final and r.period_end_ms - r.period_start_ms == MS_PER_DAY
        }
        for point, month in sorted(months):
            end = extents.next_month(month)
            if not extents.is_settled(end, now_ms, settle_ms):
                continue
            days = [
                current.get((point, day)) for day in range(month, end, MS_PER_DAY)
            ]  # every day of the month, or None where missing
            if all(d is not None and d.final for d in days):
                await self.compact(site, point, [d for d in days if d is not None], now_ms)

    async def compact(self, site: str, point: str, days: Sequence[ChunkRow], now_ms: int) -> bool:
        """Fold final day rows (a whole month) into one final month row."""
        draft = await self._draft(
            point, Target(days[0].period_start_ms, days[-1].period_end_ms, tuple(days))
        )
        if extents.merge(draft.coverage) != [(draft.start_ms, draft.end_ms)]:
            return False  # an object went missing: leave the days to be refetched
        draft.force_final = True
        await self._commit(site, [draft], {}, now_ms, ())
        return True


def _apply(draft: _Draft, f: Fetched, now_ms: int, lookback_ms: int) -> int:
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
    drafts: Sequence[_Draft],
    profiles: dict[str, Profile],
    now_ms: int,
    schedule_ms: Sequence[int],
) -> list[tuple[ChunkRow, bytes]]:
    return [_finish(site, d, profiles.get(d.point, Profile()), now_ms, schedule_ms) for d in drafts]


def _finish(
    site: str, d: _Draft, profile: Profile, now_ms: int, schedule_ms: Sequence[int]
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
