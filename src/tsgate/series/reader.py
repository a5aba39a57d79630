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
- Upstream requests are planned by their measured cost (``series/fetching.py``):
  batches of points, a point's month in windows, or the site's paginated stream when it
  is no slower; they are fetched month by month and each month is written as soon as
  all of it arrived, while the next months are in flight.
- A failed fetch leaves the months already whole stored (and claimed), nothing else.
  When upstream fails (or its circuit is open) and some of the range was cached, the
  cached part is served marked ``STALE``; with nothing cached the error propagates, and
  so it does for a ``whole`` read (the drop-in's: its clients see no ``STALE`` header).
  Access is checked beside the index read and the first requests, and must pass before
  anything is stored or served: only a token whose grant is cached is served while
  upstream is down.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from tsgate.clock import wall_clock_ms
from tsgate.core.model import Series
from tsgate.errors import StorageError, UpstreamError
from tsgate.series import fetching
from tsgate.series.access import UNKNOWN_SITE, AccessCheck
from tsgate.series.chunkstore import ChunkStore, Fetched, Loaded, StoreCounters, WriteReport
from tsgate.series.index import ChunkRow
from tsgate.series.invalidation import Invalidated, invalidate
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
from tsgate.upstream.costs import RequestCosts

if TYPE_CHECKING:
    from tsgate.cache.base import Cache
    from tsgate.core.rollups import Buckets

log = logging.getLogger("tsgate.reader")

_HEAL_ROUNDS = 2  # reads again after dropping damaged objects, at most this often
T = TypeVar("T")


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
    # the upstream error the stale answer stands in for (what a read without a cache
    # would have raised); ``None`` unless ``stale``
    failure: UpstreamError | None = None
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
    Kept in the shared cache, read through a one-second local copy.

    The copy is refreshed by one read per site however many requests find it expired
    (the others await that read, and a caller that leaves does not cancel it): under a
    thousand concurrent cached requests, a read each would hold the event loop once a
    second. A bump made while a read is in flight wins over what that read brings back.
    """

    _LOCAL_S = 1.0

    def __init__(self, cache: Cache | None) -> None:
        self._cache = cache
        self._local: dict[str, tuple[float, str]] = {}
        self._reading: dict[str, asyncio.Task[str]] = {}

    async def get(self, site: str) -> str:
        hit = self._local.get(site)
        if hit is not None and time.monotonic() - hit[0] < self._LOCAL_S:
            return hit[1]
        task = self._reading.get(site)
        if task is None or task.get_loop() is not asyncio.get_running_loop():
            task = asyncio.create_task(self._refresh(site), name=f"data version of {site}")
            self._reading[site] = task
        return await asyncio.shield(task)

    async def _refresh(self, site: str) -> str:
        now = time.monotonic()
        try:
            value = await self._read(site)
        finally:
            current = self._reading.get(site) is asyncio.current_task()
            if current:
                del self._reading[site]
        if current:  # else a bump came meanwhile: its value is the newer
            self._local[site] = (now, value)
            return value
        return self._local[site][1] if site in self._local else value

    async def _read(self, site: str) -> str:
        """The site's version as published (``"0"`` when none is, or it cannot be read)."""
        if self._cache is None:
            return "0"
        try:
            raw = await self._cache.get(f"gen:{site}")
        except StorageError:
            return "0"
        return raw.decode() if raw else "0"

    async def _publish(self, site: str, value: str) -> None:
        if self._cache is not None:
            await self._cache.set(f"gen:{site}", value.encode())

    async def bump(self, site: str) -> None:
        value = f"{time.time_ns():x}"
        self._local[site] = (time.monotonic(), value)
        self._reading.pop(site, None)  # a read in flight brings an older value back
        try:
            await self._publish(site, value)
        except StorageError as exc:
            log.warning("could not publish the new data version of %s: %s", site, exc)


class SeriesReads(Protocol):
    """What the API, the chart and the quality tables ask of the reader
    (:class:`SeriesReader` is it; handlers see only this)."""

    clock_ms: Callable[[], int]

    async def generation(self, site: str) -> str: ...

    async def invalidate(
        self, site: str, points: Sequence[str] | None, start_ms: int | None, end_ms: int | None
    ) -> Invalidated: ...

    def store_counters(self) -> StoreCounters: ...

    def request_cost_known(self) -> tuple[fetching.RequestCost, bool]: ...

    async def check_site(self, site: str, token: str) -> None: ...

    async def rows(
        self, site: str, names: Sequence[str], start_ms: int, end_ms: int
    ) -> list[ChunkRow]: ...

    async def load(
        self, site: str, names: Sequence[str], rows: Sequence[ChunkRow], start_ms: int, end_ms: int
    ) -> Loaded: ...

    async def profiles(self, site: str, names: Sequence[str]) -> dict[str, Profile]: ...

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
        whole: bool = False,
    ) -> tuple[dict[str, Series], ReadStats]: ...

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
    ) -> tuple[dict[str, Buckets], ReadStats]: ...

    async def missing_samples(
        self, site: str, names: Sequence[str], start_ms: int, end_ms: int, *, token: str
    ) -> int: ...

    async def stored(
        self, site: str, names: Sequence[str], start_ms: int, end_ms: int, *, token: str
    ) -> tuple[list[ChunkRow], int]: ...

    async def prepare(
        self,
        site: str,
        names: Sequence[str],
        start_ms: int,
        end_ms: int,
        *,
        token: str,
        earlier_ms: int = 0,
    ) -> PreparedRead: ...

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
        whole: bool = False,
    ) -> list[ChunkRow]: ...


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

    async def invalidate(
        self, site: str, points: Sequence[str] | None, start_ms: int | None, end_ms: int | None
    ) -> Invalidated:
        """Drop what is cached of ``points`` (``None``: all of the site) in the periods
        overlapping the range, and move the site's data version past every kept answer."""
        dropped = await invalidate(
            self.store, site, points, start_ms, end_ms, now_ms=self.clock_ms()
        )
        await self.generations.bump(site)
        return dropped

    def store_counters(self) -> StoreCounters:
        """Damaged objects refetched and late samples repaired, since the process began."""
        return self.store.counters

    async def check_site(self, site: str, token: str) -> None:
        """The token may read the site (checked with upstream when not cached), else the
        access error."""
        await self.access.check(site, token)

    async def load(
        self, site: str, names: Sequence[str], rows: Sequence[ChunkRow], start_ms: int, end_ms: int
    ) -> Loaded:
        """Each point's samples in ``[start_ms, end_ms)`` from its stored ``rows`` (no
        fetch, no access check: the rows came from a read that made them)."""
        return await self.store.load(site, names, rows, start_ms, end_ms)

    async def profiles(self, site: str, names: Sequence[str]) -> dict[str, Profile]:
        """Each catalogued point's collect flag and reporting interval."""
        return await self.store.profiles(site, names)

    async def rows(
        self, site: str, names: Sequence[str], start_ms: int, end_ms: int
    ) -> list[ChunkRow]:
        """The chunk index rows of ``names`` overlapping ``[start_ms, end_ms)``."""
        return await self.store.rows(site, names, start_ms, end_ms)

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
        whole: bool = False,
    ) -> tuple[dict[str, Series], ReadStats]:
        """Raw samples of ``names`` in ``[start_ms, end_ms)``; unknown points come back empty.

        ``prepared``: this read as :meth:`prepare` made it ready (used if it is of the
        same span and fresh). ``open_ttl_ms`` overrides the policy's open TTL for this read
        (a live poll passes 0: the tail is fetched again, from its look-back on, whatever
        its age); a prepared read, planned with the policy's, is then not used.
        ``whole``: the answer is the whole range or an error. When upstream fails and
        only part of the range is cached, upstream's own error is raised (as a read
        without a cache would get it) instead of the cached part marked stale."""
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
            _refuse_partial(stats, whole)
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
        rows: list[ChunkRow] = []
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
        # the chunk rows say which months hold samples: one whose blob is lost is rebuilt
        found = await self.store.rollups(site, names, level, start_ms, end_ms, rows)
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
        self,
        site: str,
        names: Sequence[str],
        start_ms: int,
        end_ms: int,
        *,
        token: str,
        earlier_ms: int = 0,
    ) -> PreparedRead:
        """Check the token's access, read the index rows of the span once and plan what
        a read of it would fetch. ``earlier_ms`` (< 0): the same span that much earlier
        (a comparison) is made ready too, as ``earlier``, under the same access check. The
        index is read while upstream answers the access check: both must pass, and
        nothing is planned for a token refused."""
        now = self.clock_ms()
        spans = [(start_ms, end_ms)]
        if earlier_ms:
            spans.append((start_ms + earlier_ms, end_ms + earlier_ms))
        ready = await _beside_access(
            self._check_access(site, names, token),
            lambda _: asyncio.gather(*(self._plan(site, names, lo, hi, now) for lo, hi in spans)),
        )
        if not earlier_ms:
            return ready[0]
        return dataclasses.replace(ready[0], earlier=ready[1])

    async def _plan(
        self, site: str, names: Sequence[str], start_ms: int, end_ms: int, now: int
    ) -> PreparedRead:
        """The index rows of the span and what a read of it would fetch (no access
        check: :meth:`prepare` makes it beside)."""
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
        whole: bool = False,
    ) -> list[ChunkRow]:
        """Make the chunks of ``names`` cover ``[start_ms, end_ms)``; return their index rows.

        The token's access is checked alongside the index read and the first requests,
        and must pass before anything is stored or returned: cached data is served only
        to tokens upstream lets read the site. ``on_page`` sees each page of a site stream as it
        arrives (before anything of it is stored). ``whole`` as for :meth:`read`: upstream's
        error, not the cached part, when upstream fails and only part is cached.
        """
        ttl_ms = self.policy.open_ttl_ms if open_ttl_ms is None else open_ttl_ms
        rows = await self._ensure_metered(
            site, names, start_ms, end_ms, token, stats, None, ttl_ms, on_page
        )
        _refuse_partial(stats, whole)
        return rows

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
            return await self._ensure_checked(
                site, names, (start_ms, end_ms), token, stats, ready.rows, ready.plan, ttl_ms,
                None, on_page,
            )  # fmt: skip

        # the token's access is asked of upstream while the index is read and the first
        # requests go out (nothing of them stored or shown before it has passed: the
        # check is their gate); the rows are returned only once it has passed, also
        # when upstream failed and the cached part would be served
        async def index_and_fetch(checked: Awaitable[None]) -> list[ChunkRow]:
            now = self.clock_ms()
            rows = await self.store.rows(site, names, start_ms, end_ms)
            plan = plan_fetches(names, rows, start_ms, end_ms, now, ttl_ms)
            return await self._ensure_checked(
                site, names, (start_ms, end_ms), token, stats, rows, plan, ttl_ms, checked,
                on_page,
            )  # fmt: skip

        return await _beside_access(self._check_access(site, names, token), index_and_fetch)

    async def _ensure_checked(
        self,
        site: str,
        names: Sequence[str],
        span: Range,
        token: str,
        stats: ReadStats,
        rows: list[ChunkRow],
        plan: dict[str, list[Range]],
        ttl_ms: int,
        checked: Awaitable[None] | None,
        on_page: fetching.PageSink | None,
    ) -> list[ChunkRow]:
        start_ms, end_ms = span
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
                    site, names, plan, rows, span, now, token, stats, on_page, checked
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
        gate: Awaitable[None] | None = None,
    ) -> tuple[list[ChunkRow], int]:
        """Fetch ``plan`` and return the fresh rows and how many stored objects the write
        found damaged; on an upstream failure, the cached ``rows`` when there are any (a
        partial picture beats none while upstream is down)."""
        try:
            report = await self.fetch_and_store(
                site, plan, token=token, now_ms=now_ms, on_page=on_page, gate=gate
            )
        except UpstreamError as exc:
            if not rows:
                raise
            log.warning("upstream failed, %s has only the cached part: %s", site, exc.detail)
            stats.stale = True
            stats.failure = exc
            # the months fetched before the failure are stored: served too
            return await self.store.rows(site, names, *span), 0
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
        gate: Awaitable[None] | None = None,
        background: bool = False,
    ) -> WriteReport:
        """Fetch ``plan`` from upstream and merge it into the store (the caller holds the
        fetch locks of the planned points): month by month as it arrives (see
        ``series/fetching.py``), nothing before ``gate`` (the caller's access check, run
        alongside the first requests) has passed. On an upstream failure the months
        already whole stay written and the error is raised. ``background`` work (the
        re-checks) asks upstream with the fewest requests, not the quickest plan."""
        report = WriteReport()
        names = sorted(plan)
        profiles = await self.store.profiles(site, names)

        async def write(fetched: list[Fetched]) -> None:
            known = {f.point for f in fetched} - profiles.keys()
            if known:  # points the catalog did not know when the fetch began
                profiles.update(await self.store.profiles(site, sorted(known)))
            part = await self.store.write(
                site,
                fetched,
                profiles=profiles,
                now_ms=now_ms,
                lookback_ms=self.policy.lookback_ms,
                settle_ms=self.policy.settle_ms,
                schedule_ms=self.policy.recheck_schedule_ms,
            )
            _add(report, part)

        try:
            await self._fetch(site, plan, profiles, write, token, on_page, gate, background)
        finally:
            if report.repaired:
                log.info("%s: %d late samples merged into cached ranges", site, report.repaired)
                await self.generations.bump(site)
        return report

    async def _fetch(
        self,
        site: str,
        plan: dict[str, list[Range]],
        profiles: dict[str, Profile],
        write: fetching.MonthWriter,
        token: str,
        on_page: fetching.PageSink | None,
        gate: Awaitable[None] | None,
        background: bool,
    ) -> None:
        """:meth:`fetch_and_store`'s fetch: the site stream when it pays, written while
        the points it left out are read per point (which the pages shown wait for, not
        for the stream's points to be stored); one write at a time."""
        storing: asyncio.Future[None] | None = None  # the stream's points, being written
        writes = _Writes(write, on_page)
        try:
            left = plan
            site_points = 0
            if site != UNKNOWN_SITE and len(plan) >= self.policy.site_stream_min_points:
                site_points = await self.store.collecting_points(site)
            # a stream shown page by page (the drop-in) keeps the page-count rule
            cost = None if on_page is not None else self.request_cost()
            if fetching.site_stream_pays(plan, site_points, self.policy, cost):
                if gate is not None:
                    await gate  # its pages are shown as they arrive: access first
                    gate = None
                streamed, left = await fetching.site_stream(
                    self.upstream,
                    site,
                    plan,
                    token=token,
                    page_size=self.policy.site_page_size,
                    on_page=on_page,
                    site_points=site_points,
                    concurrency=self.policy.upstream_concurrency,
                    cost=self.request_cost(),
                )
                # written while the points it left out are read, once the pages shown
                # from it have been answered
                storing = asyncio.ensure_future(writes.streamed(streamed))
            if left:
                cadences = {n: p.cadence_ms for n, p in profiles.items() if p.cadence_ms}
                cost = self.request_cost()
                by_month = fetching.request_plan(
                    left, self.policy, cost, cadences, fewest=background
                )
                await fetching.pipelined(
                    self.upstream,
                    by_month,
                    token=token,
                    concurrency=self.policy.upstream_concurrency,
                    write=writes.alone,
                    gate=gate,
                )
            elif gate is not None:
                await gate
            if storing is not None:
                await storing
        except BaseException as exc:
            if on_page is not None and isinstance(exc, Exception):
                on_page.failed(exc)  # the pages waiting are answered now, not after a write
            if storing is not None:
                # cancelled: so is the write; failed: the stream's points are whole and
                # their write ends first
                await fetching.ended(storing, cancel=isinstance(exc, asyncio.CancelledError))
            raise

    def request_cost(self) -> fetching.RequestCost:
        """What one upstream request costs: as measured, else the policy's figures."""
        return self.request_cost_known()[0]

    def request_cost_known(self) -> tuple[fetching.RequestCost, bool]:
        """:meth:`request_cost`, and whether it is measured (not the policy's figures)."""
        measured = getattr(self.upstream, "costs", None) if self.policy.measure_costs else None
        estimate = measured.estimate() if isinstance(measured, RequestCosts) else None
        if estimate is not None:
            return fetching.RequestCost(*estimate), True
        figures = fetching.RequestCost(
            self.policy.upstream_latency_ms / 1000, self.policy.upstream_sample_us / 1e6
        )
        return figures, False


class _Writes:
    """The writes of one fetch, one at a time: the site stream's points once the pages
    shown from it have been answered, the points it left out as they arrive (shown to
    the pages waiting for them first)."""

    def __init__(self, write: fetching.MonthWriter, sink: fetching.PageSink | None) -> None:
        self._write = write
        self._sink = sink
        self._one_at_a_time = asyncio.Lock()

    async def _one(self, fetched: list[Fetched]) -> None:
        async with self._one_at_a_time:
            await self._write(fetched)

    async def streamed(self, fetched: list[Fetched]) -> None:
        if self._sink is not None:
            await self._sink.quiet()
        await self._one(fetched)

    async def alone(self, fetched: list[Fetched]) -> None:
        if self._sink is not None:
            self._sink.read_alone(fetched)
        await self._one(fetched)


def _refuse_partial(stats: ReadStats, whole: bool) -> None:
    """A ``whole`` read that could serve only the cached part raises upstream's error
    (the access check has passed by then: a refused token gets its refusal first)."""
    if whole and stats.failure is not None:
        raise stats.failure


def _add(report: WriteReport, part: WriteReport) -> None:
    report.periods += part.periods
    report.samples += part.samples
    report.repaired += part.repaired
    report.damaged += part.damaged
    for point, spans in part.changed.items():
        report.changed.setdefault(point, []).extend(spans)


async def _beside_access(
    check: Awaitable[None], work: Callable[[Awaitable[None]], Awaitable[T]]
) -> T:
    """Run ``work(gate)`` while ``check`` asks upstream for access, and return its result
    only once the check has passed. ``gate`` is the check itself, for the work to await
    before it stores or shows anything (a fetch's first requests may go out before).

    When the check refuses, its error is raised and the work is cancelled at once,
    whatever it was doing; when the work fails, its error is raised once the check has
    passed (a refused token gets its refusal, nothing else). Cancelling the caller
    cancels both."""
    checking = asyncio.ensure_future(check)
    working = asyncio.ensure_future(work(checking))
    try:
        await checking
        return await working
    finally:
        pending = [task for task in (checking, working) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        for task in (checking, working):
            if not task.cancelled():
                task.exception()  # retrieved: neither is logged as never retrieved
