"""The read policy: answer (site, points, range) from chunks, fetching only what is missing.

- A range is served from the chunk index + object store; only the parts no earlier read
  fetched go upstream (delta caching: a sliding 24 h refresh fetches just the new minutes).
- Sealed chunks (their period ended more than ``settle_ms`` ago) are never refetched; an
  open day is refetched after ``open_ttl_ms``, and only after its last cached sample.
- Fetches of the same point are single-flight, within the process and across processes
  sharing a cache (``series/singleflight.py``): concurrent readers wait for the one fetch
  and then read what it stored.
- Few points are read per point in parallel; many points of one site use the site's
  paginated stream, whose pages feed the chunks of every point they carry.
- Nothing is stored from a failed fetch. When upstream fails (or its circuit is open)
  and some of the range is cached, the cached part is served marked ``STALE``; with
  nothing cached the error propagates. Access is still checked first: only a token
  whose grant is cached is served while upstream is down.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tsgate.errors import UpstreamError
from tsgate.series import extents
from tsgate.series.access import UNKNOWN_SITE, AccessCheck
from tsgate.series.chunkstore import ChunkStore, Written, months_of, split_periods
from tsgate.series.model import MS_PER_DAY, Series, concat
from tsgate.series.singleflight import FetchLocks
from tsgate.upstream.ace import POINT_WINDOW_MS
from tsgate.upstream.base import Upstream

if TYPE_CHECKING:
    from tsgate.cache.base import Cache
    from tsgate.database.chunks import ChunkRow
    from tsgate.series.rollups import Buckets

log = logging.getLogger("tsgate.reader")

Range = tuple[int, int]
SAMPLE_MS = 300_000  # points report about every 5 minutes


@dataclass(frozen=True)
class CachePolicy:
    settle_ms: int = 2 * 3_600_000
    open_ttl_ms: int = 60_000
    site_stream_min_points: int = 40  # from this many points, read the site's stream
    site_page_size: int = 50000
    upstream_concurrency: int = 8
    fetch_lock_ttl_s: float = 120.0  # a shared fetch lock lapses after this (crashed holder)


@dataclass
class ReadStats:
    """What one read cost, for response headers and statistics."""

    upstream_requests: int = 0
    fetched_samples: int = 0
    samples: int = 0
    needed_ms: int = 0  # point-milliseconds asked for
    fetched_ms: int = 0  # point-milliseconds that had to come from upstream
    sources: set[str] = field(default_factory=set)
    stale: bool = False  # upstream failed: only what was cached is served

    @property
    def cache_status(self) -> str:
        if self.stale:
            return "STALE"
        if self.fetched_ms == 0:
            return "HIT"
        return "MISS" if self.fetched_ms >= self.needed_ms else "PARTIAL"

    @property
    def cache_source(self) -> str:
        for layer in ("ORIGIN", "STORE", "ROLLUP", "MEMORY"):
            if layer in self.sources:
                return layer
        return "MEMORY"


class SeriesReader:
    def __init__(
        self,
        upstream: Upstream,
        store: ChunkStore,
        access: AccessCheck,
        policy: CachePolicy | None = None,
        *,
        cache: Cache | None = None,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self.upstream = upstream
        self.store = store
        self.access = access
        self.policy = policy or CachePolicy()
        self.clock_ms = clock_ms or (lambda: int(time.time() * 1000))
        # without a cache (tests, tools) fetches are single-flight within this process only
        self.locks = FetchLocks(cache, ttl_s=self.policy.fetch_lock_ttl_s)

    async def aclose(self) -> None:
        return None

    # ---- public reads -------------------------------------------------------------------

    async def read(
        self, site: str, names: Sequence[str], start_ms: int, end_ms: int, *, token: str
    ) -> tuple[dict[str, Series], ReadStats]:
        """Raw samples of ``names`` in ``[start_ms, end_ms)``; unknown points come back empty."""
        stats = ReadStats()
        end_ms = min(end_ms, self.clock_ms() + 1)  # nothing exists after now
        if end_ms <= start_ms:
            return {n: Series.empty(n) for n in names}, stats
        rows = await self.ensure(site, names, start_ms, end_ms, token=token, stats=stats)
        found, sources = await self.store.load(site, names, rows, start_ms, end_ms)
        stats.sources |= sources or {"MEMORY"}
        stats.samples = sum(len(s) for s in found.values())
        return found, stats

    async def read_rollups(
        self, site: str, names: Sequence[str], level: str, start_ms: int, end_ms: int, *, token: str
    ) -> tuple[dict[str, Buckets], ReadStats]:
        """Rollup buckets of ``names`` (``level`` 1h or 1d), the chunks behind them made whole."""
        stats = ReadStats()
        capped = min(end_ms, self.clock_ms() + 1)
        if capped > start_ms:
            await self.ensure(site, names, start_ms, capped, token=token, stats=stats)
        found = await self.store.rollups(site, names, level, start_ms, end_ms)
        stats.sources.add("ROLLUP")
        return found, stats

    async def missing_samples(
        self, site: str, names: Sequence[str], start_ms: int, end_ms: int, *, token: str
    ) -> int:
        """About how many samples a read would have to fetch from upstream (cache-aware)."""
        await self._check_access(site, names, token)
        now = self.clock_ms()
        end_ms = min(end_ms, now + 1)
        if end_ms <= start_ms:
            return 0
        rows = await self.store.rows(site, names, start_ms, end_ms)
        plan = self._plan(names, rows, start_ms, end_ms, now)
        return sum(e - s for spans in plan.values() for s, e in spans) // SAMPLE_MS

    async def _check_access(self, site: str, names: Sequence[str], token: str) -> None:
        if site == UNKNOWN_SITE:
            for name in names:
                await self.access.check(site, token, point=name)
        else:
            await self.access.check(site, token)

    async def ensure(
        self,
        site: str,
        names: Sequence[str],
        start_ms: int,
        end_ms: int,
        *,
        token: str,
        stats: ReadStats,
    ) -> list[ChunkRow]:
        """Make the chunks of ``names`` cover ``[start_ms, end_ms)``; return their index rows.

        The token's access is checked first: cached data is served only to tokens
        upstream lets read the site.
        """
        before = self.upstream.counters.requests
        await self._check_access(site, names, token)
        now = self.clock_ms()
        rows = await self.store.rows(site, names, start_ms, end_ms)
        plan = self._plan(names, rows, start_ms, end_ms, now)
        stats.needed_ms = (end_ms - start_ms) * len(names)
        if not plan:
            stats.upstream_requests = self.upstream.counters.requests - before
            return rows
        async with self.locks.hold(site, sorted(plan)):
            # another reader may have fetched while we waited: plan again under the locks
            rows = await self.store.rows(site, names, start_ms, end_ms)
            now = self.clock_ms()
            plan = self._plan(names, rows, start_ms, end_ms, now)
            if plan:
                rows = await self._fetch_or_stale(
                    site, names, plan, rows, (start_ms, end_ms), now, token, stats
                )
        stats.upstream_requests = self.upstream.counters.requests - before
        return rows

    async def _fetch_or_stale(
        self,
        site: str,
        names: Sequence[str],
        plan: dict[str, list[Range]],
        rows: list[ChunkRow],
        span: Range,
        now_ms: int,
        token: str,
        stats: ReadStats,
    ) -> list[ChunkRow]:
        """Fetch ``plan`` and return the fresh rows; on an upstream failure, the cached
        ``rows`` when there are any (a partial picture beats none while upstream is down)."""
        try:
            written = await self._fetch_and_store(site, plan, rows, token=token, now_ms=now_ms)
        except UpstreamError as exc:
            if not rows:
                raise
            log.warning("serving %s from the cache only (stale): %s", site, exc.detail)
            stats.stale = True
            return rows
        stats.fetched_ms = sum(e - s for spans in plan.values() for s, e in spans)
        stats.fetched_samples = sum(len(p.series) for p in written)
        stats.sources.add("ORIGIN")
        return await self.store.rows(site, names, *span)

    # ---- planning -----------------------------------------------------------------------

    def _plan(
        self,
        names: Sequence[str],
        rows: Sequence[ChunkRow],
        start_ms: int,
        end_ms: int,
        now_ms: int,
    ) -> dict[str, list[Range]]:
        """Per point, the spans to fetch (whole days, or the tail of a stale open day)."""
        by_point: dict[str, list[ChunkRow]] = defaultdict(list)
        for row in rows:
            by_point[row.point].append(row)
        plan: dict[str, list[Range]] = {}
        for name in names:
            spans = list(self._missing(by_point.get(name, []), start_ms, end_ms, now_ms))
            if spans:
                plan[name] = extents.merge(spans)
        return plan

    def _missing(
        self, rows: Sequence[ChunkRow], start_ms: int, end_ms: int, now_ms: int
    ) -> Iterator[Range]:
        """Spans to fetch. A chunk covers ``[period_start, covered_end)``; one fetched up to
        "now" less than ``open_ttl`` ago counts as covering its whole period (bounded
        staleness for live dashboards). A fetch continues a chunk from its covered end, so
        chunks stay contiguous, and stops where the request stops (delta fetches)."""
        have: list[Range] = []
        partial: dict[int, ChunkRow] = {}
        for r in rows:
            live = (
                r.covered_end_ms >= r.fetched_at_ms
                and now_ms - r.fetched_at_ms <= self.policy.open_ttl_ms
            )
            have.append(
                (r.period_start_ms, r.period_end_ms if r.sealed or live else r.covered_end_ms)
            )
            if not r.sealed:
                partial[r.period_start_ms] = r
        for gap_start, gap_end in extents.subtract((start_ms, end_ms), extents.merge(have)):
            for day in extents.days_covering(gap_start, gap_end):
                row = partial.get(day)
                begin = row.covered_end_ms if row is not None else day
                stop = min(day + MS_PER_DAY, gap_end, now_ms + 1)
                if stop > begin:
                    yield (begin, stop)

    # ---- fetching -----------------------------------------------------------------------

    async def _fetch_and_store(
        self,
        site: str,
        plan: dict[str, list[Range]],
        rows: Sequence[ChunkRow],
        *,
        token: str,
        now_ms: int,
    ) -> list[Written]:
        previous = await self._open_days(site, plan, rows)
        if await self._site_stream_pays(site, plan):
            fetched = await self._fetch_site_stream(site, plan, token=token)
        else:
            fetched = await self._fetch_per_point(plan, token=token)
        written: list[Written] = []
        for name, spans in fetched.items():
            for (span_start, span_end), series in spans:
                written.extend(
                    split_periods(
                        name,
                        series,
                        span_start,
                        span_end,
                        previous.get(name, {}),
                        now_ms=now_ms,
                        settle_ms=self.policy.settle_ms,
                    )
                )
        await self.store.write(site, written, now_ms=now_ms)
        for point, month in months_of(written):
            await self.store.compact(site, point, month, now_ms)
        return written

    async def _site_stream_pays(self, site: str, plan: dict[str, list[Range]]) -> bool:
        """Whether the site's paginated stream beats per-point reads for this plan.

        The stream carries every point of the site, one page after another; per-point reads
        carry only the asked points, ``concurrency`` at a time, one month per request. The
        site's size comes from the cached catalog; unknown size means per-point reads.
        """
        if site == UNKNOWN_SITE or len(plan) < self.policy.site_stream_min_points:
            return False
        site_points = len(await self.store.db.points.names(site))
        if not site_points:
            return False
        span_ms = sum(
            e - s for s, e in extents.merge([r for spans in plan.values() for r in spans])
        )
        site_pages = -(-site_points * (span_ms // SAMPLE_MS + 1) // self.policy.site_page_size)
        windows = sum(
            len(spans) + sum((e - s) // POINT_WINDOW_MS for s, e in spans)
            for spans in plan.values()
        )
        rounds = -(-windows // max(1, self.policy.upstream_concurrency))
        return site_pages < rounds

    async def _open_days(
        self, site: str, plan: dict[str, list[Range]], rows: Sequence[ChunkRow]
    ) -> dict[str, dict[int, Series]]:
        """Cached samples of the open days a delta fetch continues."""
        continuing = [
            r
            for r in rows
            if r.point in plan
            and not r.sealed
            and any(s == r.covered_end_ms for s, _ in plan[r.point])
        ]
        if not continuing:
            return {}
        previous: dict[str, dict[int, Series]] = defaultdict(dict)
        for r in continuing:
            loaded, _ = await self.store.load(
                site, [r.point], [r], r.period_start_ms, r.period_end_ms
            )
            previous[r.point][r.period_start_ms] = loaded[r.point]
        return previous

    async def _fetch_per_point(
        self, plan: dict[str, list[Range]], *, token: str
    ) -> dict[str, list[tuple[Range, Series]]]:
        # points that miss the same spans (the usual dashboard) share one batch of reads
        groups: dict[tuple[Range, ...], list[str]] = defaultdict(list)
        for name, spans in plan.items():
            groups[tuple(spans)].append(name)
        out: dict[str, list[tuple[Range, Series]]] = defaultdict(list)

        async def fetch(span: Range, names: list[str]) -> None:
            found = await self.upstream.points_series(names, span[0], span[1], token=token)
            for name in names:
                out[name].append((span, found.get(name, Series.empty(name))))

        await asyncio.gather(
            *(fetch(span, names) for spans, names in groups.items() for span in spans)
        )
        return out

    async def _fetch_site_stream(
        self, site: str, plan: dict[str, list[Range]], *, token: str
    ) -> dict[str, list[tuple[Range, Series]]]:
        """One stream of the site's pages per missing span; every point in a page is kept."""
        spans = extents.merge([span for spans in plan.values() for span in spans])
        out: dict[str, list[tuple[Range, Series]]] = defaultdict(list)
        for span in spans:
            parts: dict[str, list[Series]] = defaultdict(list)
            pages = self.upstream.site_pages(
                site, span[0], span[1], token=token, raw=True, page_size=self.policy.site_page_size
            )
            async for page in pages:
                for name, series in page.items():
                    parts[name].append(series)
            for name in set(parts) | {n for n, s in plan.items() if _overlaps(s, span)}:
                out[name].append((span, concat(name, parts.get(name, ())).crop(*span)))
        return out


def _overlaps(spans: Sequence[Range], span: Range) -> bool:
    return any(s < span[1] and e > span[0] for s, e in spans)
