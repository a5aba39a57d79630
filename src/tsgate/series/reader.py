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

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tsgate.errors import UpstreamError
from tsgate.series import fetching
from tsgate.series.access import UNKNOWN_SITE, AccessCheck
from tsgate.series.chunkstore import ChunkStore, Written, months_of, split_periods
from tsgate.series.model import Series
from tsgate.series.planning import SAMPLE_MS, CachePolicy, Range, plan_fetches
from tsgate.series.singleflight import FetchLocks
from tsgate.upstream.base import Upstream

if TYPE_CHECKING:
    from tsgate.cache.base import Cache
    from tsgate.database.chunks import ChunkRow
    from tsgate.series.rollups import Buckets

log = logging.getLogger("tsgate.reader")


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
        plan = plan_fetches(names, rows, start_ms, end_ms, now, self.policy.open_ttl_ms)
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
        plan = plan_fetches(names, rows, start_ms, end_ms, now, self.policy.open_ttl_ms)
        stats.needed_ms = (end_ms - start_ms) * len(names)
        if not plan:
            stats.upstream_requests = self.upstream.counters.requests - before
            return rows
        async with self.locks.hold(site, sorted(plan)):
            # another reader may have fetched while we waited: plan again under the locks
            rows = await self.store.rows(site, names, start_ms, end_ms)
            now = self.clock_ms()
            plan = plan_fetches(names, rows, start_ms, end_ms, now, self.policy.open_ttl_ms)
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
        site_points = 0
        if site != UNKNOWN_SITE and len(plan) >= self.policy.site_stream_min_points:
            site_points = len(await self.store.db.points.names(site))
        if fetching.site_stream_pays(plan, site_points, self.policy):
            fetched = await fetching.site_stream(
                self.upstream, site, plan, token=token, page_size=self.policy.site_page_size
            )
        else:
            fetched = await fetching.per_point(self.upstream, plan, token=token)
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
