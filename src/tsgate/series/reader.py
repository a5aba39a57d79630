"""The read policy: answer (site, points, range) from chunks, fetching only what is missing.

- A range is served from the chunk index + object store; only what the stored periods do
  not cover goes upstream (delta caching: a sliding 24 h refresh fetches just its new
  minutes plus the look-back, where late-visible samples are picked up).
- Writes merge into what is stored (``series/chunkstore.py``); a period is final once
  its samples keep the point's cadence, else provisional and re-checked on a schedule
  (``series/periods.py``); answers say which of their spans are still provisional.
- A missing or damaged object is refetched within the same read, never served as empty.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tsgate.clock import wall_clock_ms
from tsgate.core.model import Series
from tsgate.errors import StorageError, UpstreamError
from tsgate.series import fetching
from tsgate.series.access import UNKNOWN_SITE, AccessCheck
from tsgate.series.chunkstore import ChunkStore, StoreCounters, WriteReport
from tsgate.series.index import ChunkRow
from tsgate.series.periods import Profile
from tsgate.series.planning import (
    PREPARED_FOR_MS,
    CachePolicy,
    PreparedRead,
    Range,
    changes_at,
    plan_fetches,
    provisional_spans,
)
from tsgate.series.singleflight import FetchLocks
from tsgate.upstream import metering
from tsgate.upstream.base import Upstream

if TYPE_CHECKING:
    from tsgate.cache.base import Cache
    from tsgate.core.rollups import Buckets

log = logging.getLogger("tsgate.reader")

_HEAL_ROUNDS = 2  # reads again after dropping damaged objects, at most this often


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
    healed: int = 0  # damaged objects found and fetched again
    # per point, the spans of the answer that are not final yet (may still change upstream)
    provisional: dict[str, list[Range]] = field(default_factory=dict)
    # the earliest time the samples read could change without the site's generation
    # moving (see :func:`~tsgate.series.planning.changes_at`); ``None``: every period
    # read is final. Rollup reads work it out; 0, the default, means at once
    changes_at_ms: int | None = 0

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

    @property
    def final(self) -> bool:
        return not self.stale and not self.provisional


class Generations:
    """A version per site that moves whenever samples already served change (late data
    repaired, damaged objects refetched, invalidation); response-cache keys include it.
    Kept in the shared cache, read through a one-second local copy."""

    _LOCAL_S = 1.0

    def __init__(self, cache: Cache | None) -> None:
        self._cache = cache
        self._local: dict[str, tuple[float, str]] = {}

    async def get(self, site: str) -> str:
        hit = self._local.get(site)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self._LOCAL_S:
            return hit[1]
        value = "0"
        if self._cache is not None:
            try:
                raw = await self._cache.get(f"gen:{site}")
            except StorageError:
                raw = None
            value = raw.decode() if raw else "0"
        self._local[site] = (now, value)
        return value

    async def bump(self, site: str) -> None:
        value = f"{time.time_ns():x}"
        self._local[site] = (time.monotonic(), value)
        if self._cache is not None:
            try:
                await self._cache.set(f"gen:{site}", value.encode())
            except StorageError as exc:
                log.warning("could not publish the new data version of %s: %s", site, exc)


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
        self.clock_ms = clock_ms or wall_clock_ms
        # without a cache (tests, tools) fetches are single-flight within this process only
        self.locks = FetchLocks(cache, ttl_s=self.policy.fetch_lock_ttl_s)
        self.generations = Generations(cache)

    async def aclose(self) -> None:
        return None

    # ---- public reads -------------------------------------------------------------------

    async def generation(self, site: str) -> str:
        """The site's data version: it moves whenever what is cached of the site changes."""
        return await self.generations.get(site)

    def store_counters(self) -> StoreCounters:
        """Damaged objects refetched and late samples repaired, since the process began."""
        return self.store.counters

    async def rows(
        self, site: str, names: Sequence[str], start_ms: int, end_ms: int
    ) -> list[ChunkRow]:
        """The chunk index rows of ``names`` overlapping ``[start_ms, end_ms)``."""
        return await self.store.rows(site, names, start_ms, end_ms)

    async def profiles(self, site: str, names: Sequence[str]) -> dict[str, Profile]:
        """Collect flag and reporting interval of each point the catalog knows."""
        return await self.store.profiles(site, names)

    async def read(
        self,
        site: str,
        names: Sequence[str],
        start_ms: int,
        end_ms: int,
        *,
        token: str,
        prepared: PreparedRead | None = None,
        open_ttl_ms: int | None = None,
    ) -> tuple[dict[str, Series], ReadStats]:
        """Raw samples of ``names`` in ``[start_ms, end_ms)``; unknown points come back empty.

        ``prepared``: this read as :meth:`prepare` made it ready (used if it is of the
        same span and fresh). ``open_ttl_ms`` overrides the policy's open TTL for this read
        (a live poll passes 0: the tail is fetched again, from its look-back on, whatever
        its age); a prepared read, planned with the policy's, is then not used."""
        stats = ReadStats()
        ttl_ms = self.policy.open_ttl_ms if open_ttl_ms is None else open_ttl_ms
        ready = (
            None
            if open_ttl_ms is not None
            else self._usable(prepared, site, names, start_ms, end_ms)
        )
        end_ms = min(end_ms, (ready.planned_at_ms if ready else self.clock_ms()) + 1)
        if end_ms <= start_ms:  # nothing exists after now
            return {n: Series.empty(n) for n in names}, stats
        for _ in range(_HEAL_ROUNDS + 1):
            rows = await self._ensure_metered(
                site, names, start_ms, end_ms, token, stats, ready, ttl_ms
            )
            ready = None  # a second round (objects were damaged) plans afresh
            loaded = await self.store.load(site, names, rows, start_ms, end_ms)
            if not loaded.damaged or stats.stale:
                break
            # lost or corrupt objects are not cached data: drop them and fetch again
            stats.healed += len(loaded.damaged)
            await self.store.heal(loaded.damaged)
            await self.generations.bump(site)
        else:
            raise StorageError(f"chunk objects of {site} keep failing to read back")
        stats.sources |= loaded.sources or {"MEMORY"}
        stats.samples = sum(len(s) for s in loaded.series.values())
        stats.provisional = provisional_spans(names, rows, start_ms, end_ms)
        return loaded.series, stats

    async def read_rollups(
        self,
        site: str,
        names: Sequence[str],
        level: str,
        start_ms: int,
        end_ms: int,
        *,
        token: str,
        prepared: PreparedRead | None = None,
    ) -> tuple[dict[str, Buckets], ReadStats]:
        """Rollup buckets of ``names`` (``level`` 1h or 1d), the chunks behind them made
        whole; ``prepared`` as for :meth:`read`."""
        stats = ReadStats()
        ready = self._usable(prepared, site, names, start_ms, end_ms)
        now = ready.planned_at_ms if ready else self.clock_ms()
        capped = min(end_ms, now + 1)
        if capped > start_ms:
            ttl_ms = self.policy.open_ttl_ms
            rows = await self._ensure_metered(
                site, names, start_ms, capped, token, stats, ready, ttl_ms
            )
            stats.provisional = provisional_spans(names, rows, start_ms, capped)
            if not stats.stale:  # served while upstream fails: read again next time
                final = not stats.provisional and end_ms <= now
                at = None if final else changes_at(names, rows, start_ms, capped, now, ttl_ms)
                stats.changes_at_ms = at
        found = await self.store.rollups(site, names, level, start_ms, end_ms)
        stats.sources.add("ROLLUP")
        return found, stats

    async def missing_samples(
        self, site: str, names: Sequence[str], start_ms: int, end_ms: int, *, token: str
    ) -> int:
        """About how many samples a read would have to fetch from upstream (cache-aware)."""
        return (await self.prepare(site, names, start_ms, end_ms, token=token)).missing_samples

    async def stored(
        self, site: str, names: Sequence[str], start_ms: int, end_ms: int, *, token: str
    ) -> tuple[list[ChunkRow], int]:
        """The index rows of ``[start_ms, end_ms)`` as stored now, and about how many
        samples a read would still have to fetch (0: the rows answer it whole). The
        token's access is checked first."""
        ready = await self.prepare(site, names, start_ms, end_ms, token=token)
        return ready.rows, ready.missing_samples

    async def prepare(
        self, site: str, names: Sequence[str], start_ms: int, end_ms: int, *, token: str
    ) -> PreparedRead:
        """Check the token's access, read the index rows of the span once and plan what
        a read of it would fetch."""
        await self._check_access(site, names, token)
        now = self.clock_ms()
        capped = min(end_ms, now + 1)
        rows: list[ChunkRow] = []
        plan: dict[str, list[Range]] = {}
        if capped > start_ms:
            rows = await self.store.rows(site, names, start_ms, capped)
            plan = plan_fetches(names, rows, start_ms, capped, now, self.policy.open_ttl_ms)
        return PreparedRead(site, tuple(names), start_ms, end_ms, rows, plan, now)

    def _usable(
        self,
        prepared: PreparedRead | None,
        site: str,
        names: Sequence[str],
        start_ms: int,
        end_ms: int,
    ) -> PreparedRead | None:
        if prepared is None or not prepared.serves(site, names, start_ms, end_ms):
            return None
        if self.clock_ms() - prepared.planned_at_ms > PREPARED_FOR_MS:
            return None
        return prepared

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
        open_ttl_ms: int | None = None,
        on_page: fetching.PageSink | None = None,
    ) -> list[ChunkRow]:
        """Make the chunks of ``names`` cover ``[start_ms, end_ms)``; return their index rows.

        The token's access is checked first: cached data is served only to tokens
        upstream lets read the site. ``on_page`` sees each page of a site stream as it
        arrives (before anything of it is stored).
        """
        ttl_ms = self.policy.open_ttl_ms if open_ttl_ms is None else open_ttl_ms
        return await self._ensure_metered(
            site, names, start_ms, end_ms, token, stats, None, ttl_ms, on_page
        )

    async def _ensure_metered(
        self,
        site: str,
        names: Sequence[str],
        start_ms: int,
        end_ms: int,
        token: str,
        stats: ReadStats,
        ready: PreparedRead | None,
        ttl_ms: int,
        on_page: fetching.PageSink | None = None,
    ) -> list[ChunkRow]:
        with metering.metered() as meter:  # this read's own requests, whoever runs beside
            try:
                return await self._ensure(
                    site, names, start_ms, end_ms, token, stats, ready, ttl_ms, on_page
                )
            finally:
                stats.upstream_requests += meter.requests

    async def _ensure(
        self,
        site: str,
        names: Sequence[str],
        start_ms: int,
        end_ms: int,
        token: str,
        stats: ReadStats,
        ready: PreparedRead | None,
        ttl_ms: int,
        on_page: fetching.PageSink | None = None,
    ) -> list[ChunkRow]:
        if ready is not None:  # checked, read and planned once already
            rows, plan = ready.rows, ready.plan
        else:
            await self._check_access(site, names, token)
            now = self.clock_ms()
            rows = await self.store.rows(site, names, start_ms, end_ms)
            plan = plan_fetches(names, rows, start_ms, end_ms, now, ttl_ms)
        stats.needed_ms = (end_ms - start_ms) * len(names)
        if not plan:
            return rows
        async with self.locks.hold(site, sorted(plan)):
            # another reader may have fetched while we waited: plan again under the locks;
            # and again after a write that found stored objects damaged (what they held is
            # no longer covered, so it is fetched too)
            for _ in range(_HEAL_ROUNDS + 1):
                rows = await self.store.rows(site, names, start_ms, end_ms)
                now = self.clock_ms()
                plan = plan_fetches(names, rows, start_ms, end_ms, now, ttl_ms)
                if not plan:
                    break
                rows, damaged = await self._fetch_or_stale(
                    site, names, plan, rows, (start_ms, end_ms), now, token, stats, on_page
                )
                if not damaged:
                    break
                stats.healed += damaged
                await self.generations.bump(site)
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
        on_page: fetching.PageSink | None = None,
    ) -> tuple[list[ChunkRow], int]:
        """Fetch ``plan`` and return the fresh rows and how many stored objects the write
        found damaged; on an upstream failure, the cached ``rows`` when there are any (a
        partial picture beats none while upstream is down)."""
        try:
            report = await self.fetch_and_store(
                site, plan, token=token, now_ms=now_ms, on_page=on_page
            )
        except UpstreamError as exc:
            if not rows:
                raise
            log.warning("serving %s from the cache only (stale): %s", site, exc.detail)
            stats.stale = True
            return rows, 0
        stats.fetched_ms += sum(e - s for spans in plan.values() for s, e in spans)
        stats.fetched_samples += report.samples
        stats.sources.add("ORIGIN")
        return await self.store.rows(site, names, *span), report.damaged

    # ---- fetching -----------------------------------------------------------------------

    async def fetch_and_store(
        self,
        site: str,
        plan: dict[str, list[Range]],
        *,
        token: str,
        now_ms: int,
        on_page: fetching.PageSink | None = None,
    ) -> WriteReport:
        """Fetch ``plan`` from upstream and merge it into the store (the caller holds the
        fetch locks of the planned points)."""
        site_points = 0
        if site != UNKNOWN_SITE and len(plan) >= self.policy.site_stream_min_points:
            site_points = await self.store.collecting_points(site)
        if fetching.site_stream_pays(plan, site_points, self.policy):
            fetched, left = await fetching.site_stream(
                self.upstream,
                site,
                plan,
                token=token,
                page_size=self.policy.site_page_size,
                on_page=on_page,
            )
            if left:
                fetched += await fetching.per_point(self.upstream, left, token=token)
        else:
            fetched = await fetching.per_point(self.upstream, plan, token=token)
        profiles = await self.store.profiles(site, sorted({f.point for f in fetched}))
        report = await self.store.write(
            site,
            fetched,
            profiles=profiles,
            now_ms=now_ms,
            lookback_ms=self.policy.lookback_ms,
            settle_ms=self.policy.settle_ms,
            schedule_ms=self.policy.recheck_schedule_ms,
        )
        if report.repaired:
            log.info("%s: %d late samples merged into cached ranges", site, report.repaired)
            await self.generations.bump(site)
        return report
