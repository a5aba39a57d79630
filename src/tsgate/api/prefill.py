"""What the drop-in site pages are cut from: a span of a paged read made whole first.

A paged read's next stretch (as far as one bounded fetch reaches) is made whole in the
cache once and its pages cut from it, instead of every page fetching and rewriting its
own window of every point's chunks. Warm, that costs one index query and the decoded
chunks held in memory (and the next pages of the read reuse them without one).

Cold, the fetch runs in the background, shared by every page of the read that arrives
meanwhile (single-flight), and a page is answered as soon as the site stream has
carried the part of the range it needs (``series/streamfill.py``): the first page does
not wait for the whole range, let alone for it to be written. The fetch goes on when
the caller disconnects, and is written as any other. A page cut from the stream is kept
in the response cache at once but briefly (until the fill is stored, a cut of the stream
gives the same bytes); once stored, the fill decides how long it stays (or forgets it).
A fetch that fails fails the pages still waiting for it, forgets the pages kept from it,
and stores nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.requests import Request

from tsgate.api.auth import token_of
from tsgate.api.limits import check_fetch_budget, refuse_over_fetch_budget
from tsgate.api.services import services_of
from tsgate.background import stop_all
from tsgate.core.model import Series
from tsgate.lru import LRU
from tsgate.series.access import UNKNOWN_SITE
from tsgate.series.index import PROVISIONAL, ChunkRow
from tsgate.series.reader import ReadStats
from tsgate.series.streamfill import StreamFill
from tsgate.services import Services

log = logging.getLogger("tsgate.dropin")

FIVE_MIN_MS = 300_000
# a paged read fetches at most about this many samples ahead of the page it serves
PREFILL_SAMPLES = 2_000_000
HELD_FILLS = 2  # settled prefilled spans held for the next pages of their reads
BACKGROUND_FILLS = 4  # cold fills fetched in the background at once (more: inline)
HELD_TTL_S = 3600.0  # a held fill is kept at most this long
STOP_GRACE_S = 30.0  # at shutdown, background fills get this long to be stored
LATER_PAGES = 64  # pages answered from a stream kept once it is stored, at most
# a page of settled history cut from a stream is kept this long at first: until its fill
# is stored, a cut of the stream answers the same bytes; once stored the fill decides
# (kept on, or forgotten). A page that may still change waits for the fill's decision.
STREAMED_KEEP_S = 60.0

# keeps a page in the response cache for so many seconds; 0 or less: forgets it
Keep = Callable[[float], Awaitable[None]]


def _token(request: Request) -> str:
    return token_of(request, services_of(request).settings.upstream_token)


@dataclass(frozen=True)
class Filled:
    """What ``prefill`` made whole: each point's samples over ``[start_ms, end_ms)``."""

    series: list[Series]
    start_ms: int
    end_ms: int
    rows: list[ChunkRow]
    stale: bool

    async def window(self, lo: int, hi: int) -> list[Series] | None:
        """The samples of ``[lo, hi)``, or None when this fill does not reach ``hi``."""
        return [s.crop(lo, hi) for s in self.series] if hi <= self.end_ms else None

    async def keep(self, names: list[str], lo: int, hi: int, request: Request, keep: Keep) -> None:
        """Keep a page over ``[lo, hi)`` (``keep``) for as long as it stays what it is."""
        services = services_of(request)
        keep_s = self.unchanged_for_s(
            names, lo, hi, services.clock_ms(), services.policy.open_ttl_ms
        )
        if keep_s > 0:
            await keep(keep_s)

    def unchanged_for_s(
        self, names: list[str], lo: int, hi: int, now_ms: int, open_ttl_ms: int
    ) -> float:
        """How long a page over ``[lo, hi)`` stays what a read would cut now, unless the
        site's data version moves (late data merged, damaged objects refetched).

        Final periods do not change; a provisional one is read again when its re-check
        is due, a period whose last fetch reached "now" when its open TTL ends (as the
        planner decides, ``series/planning.py``); anything else is cut again each time.
        """
        if self.stale or not (self.start_ms <= lo and hi <= self.end_ms):
            return 0.0
        until = now_ms + 10 * HELD_TTL_S * 1000
        seen: set[str] = set()
        for r in self.rows:
            if r.period_end_ms <= lo or r.period_start_ms >= hi:
                continue
            seen.add(r.point)
            if r.final:
                continue
            if r.tail_end_ms > r.tail_start_ms:
                until = min(until, r.fetched_at_ms + open_ttl_ms)
            elif r.state != PROVISIONAL:
                return 0.0  # open without a recent fetch: partly uncovered
            if r.recheck_at_ms is not None:
                until = min(until, r.recheck_at_ms)
        if any(n not in seen for n in names):
            return 0.0
        return max(0.0, (until - now_ms) / 1000)


@dataclass
class Streaming:
    """A cold fill being fetched in the background: pages are cut from its stream as it
    arrives, and from ``result`` once it is fetched and stored."""

    names: list[str]
    generation: str
    start_ms: int
    end_ms: int
    stream: StreamFill
    result_clock: tuple[Callable[[], int], int]  # the reader's clock and open TTL (ms)
    settled_before_ms: int  # windows ending before this are settled history
    result: Filled | None = None
    error: Exception | None = None
    later: list[tuple[list[str], int, int, Keep]] = field(default_factory=list)

    async def window(self, lo: int, hi: int) -> list[Series] | None:
        if hi > self.end_ms:
            return None
        if await self.stream.wait(self.names, hi):
            return self.stream.cut(self.names, lo, hi)
        if self.stream.error is not None:  # failed: not waiting for its write to end
            raise self.stream.error
        await self.stream.until_finished()
        if self.error is not None:
            raise self.error
        return None if self.result is None else await self.result.window(lo, hi)

    async def keep(self, names: list[str], lo: int, hi: int, request: Request, keep: Keep) -> None:
        if self.result is not None:  # stored: the fill decides at once
            await self.settle(names, lo, hi, keep)
            return
        if self.stream.finished or len(self.later) >= LATER_PAGES:
            return  # failed, or enough pages wait to be kept: this one is not kept
        self.later.append((names, lo, hi, keep))  # the fill decides once it is stored
        if hi > self.settled_before_ms:
            return  # may still change upstream: not kept before the fill decides
        await keep(STREAMED_KEEP_S)
        if self.decided():  # it was decided meanwhile: decide again, after this keep
            await self.settle(names, lo, hi, keep)

    def decided(self) -> bool:
        """Whether the fetch is over (stored, or failed)."""
        return self.stream.finished

    async def settle(self, names: list[str], lo: int, hi: int, keep: Keep) -> None:
        """Keep a page of ``[lo, hi)`` as long as the stored fill stays as it is (not at
        all when it does not, or when the fetch failed)."""
        if self.result is None:
            await keep(0)
            return
        clock, open_ttl_ms = self.result_clock
        await keep(self.result.unchanged_for_s(names, lo, hi, clock(), open_ttl_ms))


Fill = Filled | Streaming


@dataclass(frozen=True)
class _Read:
    """One paged read's fill: whose, of what, at which data version."""

    services: Services
    state: _State
    key: tuple[str, bytes]  # site, hash of the points
    generation: str
    site: str
    names: list[str]


async def prefill(request: Request, site: str, names: list[str], lo: int, end_ms: int) -> Fill:
    """The samples of ``[lo, hi)``, the rest of a paged read as far as one bounded fetch
    reaches (the inline fetch budget and ``PREFILL_SAMPLES``, so memory stays bounded;
    later pages fill what follows), made whole in the cache."""
    services = services_of(request)
    reader = services.reader
    token = _token(request)
    budget = services.settings.inline_fetch_samples
    cap = min(budget, PREFILL_SAMPLES) if budget > 0 else PREFILL_SAMPLES
    hi = min(end_ms, lo + max(FIVE_MIN_MS, cap // max(1, len(names)) * FIVE_MIN_MS))
    if hi <= lo:
        return Filled([], lo, lo, [], stale=True)
    key = (site, hashlib.blake2b("\x1f".join(names).encode(), digest_size=16).digest())
    read = _Read(services, _state(request), key, await reader.generation(site), site, names)
    kept = read.state.held.get(key)
    now_ms = reader.clock_ms()
    known = site != UNKNOWN_SITE
    if kept is not None and kept[0] == read.generation and now_ms < kept[1] and known:
        fill = kept[2]
        if fill.start_ms <= lo and hi <= fill.end_ms:
            await services.access.check(site, token)  # the caller may read the site
            return Filled([x.crop(lo, hi) for x in fill.series], lo, hi, fill.rows, stale=False)
    running = read.state.running.get(key)
    if (
        running is not None  # a fetch of this read already under way
        and running.generation == read.generation
        and known
        and running.start_ms <= lo
        and hi <= running.end_ms
    ):
        await services.access.check(site, token)  # the caller may read the site
        return running
    rows, missing = await reader.stored(site, names, lo, hi, token=token)
    stats = ReadStats()
    if missing:
        refuse_over_fetch_budget(services.settings, missing)
        if not rows and known and len(read.state.running) < BACKGROUND_FILLS:
            return _start(read, lo, hi, token)  # cold: fetched in the background
        rows = await reader.ensure(site, names, lo, hi, token=token, stats=stats, whole=True)
    filled = await _filled(read, lo, hi, rows, stats)
    if filled is None:  # lost or corrupt objects: the reader drops and refetches them
        return Filled(await read_series(request, site, names, lo, hi), lo, hi, [], stale=True)
    return filled


async def _filled(
    read: _Read, lo: int, hi: int, rows: list[ChunkRow], stats: ReadStats
) -> Filled | None:
    """The fill of ``[lo, hi)`` from its index ``rows``, held while it stays as it is;
    None when some of its objects are lost or damaged."""
    services = read.services
    loaded = await services.reader.load(read.site, read.names, rows, lo, hi)
    if loaded.damaged:
        return None
    series = [loaded.series.get(n, Series.empty(n)) for n in read.names]
    filled = Filled(series, lo, hi, rows, stale=stats.stale)
    now_ms = services.clock_ms()
    keep_s = filled.unchanged_for_s(read.names, lo, hi, now_ms, services.policy.open_ttl_ms)
    if keep_s > 0:
        # what a read would cut until then (or until the site's data version moves): the
        # next pages of this read are cut from it without an index query
        read.state.held.put(read.key, (read.generation, now_ms + int(keep_s * 1000), filled))
    return filled


def _start(read: _Read, lo: int, hi: int, token: str) -> Streaming:
    """Fetch and store ``[lo, hi)`` in the background; its pages are cut as it arrives."""
    services = read.services
    stream = StreamFill((lo, min(hi, services.clock_ms() + 1)))
    clock = (services.clock_ms, services.policy.open_ttl_ms)
    settled_before = services.clock_ms() - services.policy.settle_ms
    streaming = Streaming(read.names, read.generation, lo, hi, stream, clock, settled_before)
    state = read.state

    async def run() -> None:
        stats = ReadStats()
        try:
            rows = await services.reader.ensure(
                read.site,
                read.names,
                lo,
                hi,
                token=token,
                stats=stats,
                on_page=stream,
                whole=True,
            )
            # no result when objects were damaged: the pages still waiting read inline
            streaming.result = await _filled(read, lo, hi, rows, stats)
        except Exception as exc:  # every page still waiting for it answers this error
            log.warning("background fill of %s failed: %s", read.site, exc)
            streaming.error = exc
        finally:
            if state.running.get(read.key) is streaming:
                del state.running[read.key]
            stream.finish()
        later, streaming.later = streaming.later, []
        for names, page_lo, page_hi, keep in later:
            await streaming.settle(names, page_lo, page_hi, keep)

    state.running[read.key] = streaming
    task = asyncio.create_task(run(), name=f"tsgate-dropin-fill-{read.site}")
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)
    return streaming


async def read_series(
    request: Request, site: str, names: list[str], start_ms: int, end_ms: int
) -> list[Series]:
    """Raw samples of ``names`` read through the reader (fetch budget checked first)."""
    services = services_of(request)
    token = _token(request)
    await check_fetch_budget(services, site, names, start_ms, end_ms, token)
    # a drop-in client sees no X-Cache-Status and would take a missing rest for no data:
    # with upstream failing and only part cached, upstream's own error (as uncached)
    found, _ = await services.reader.read(site, names, start_ms, end_ms, token=token, whole=True)
    return [found.get(n, Series.empty(n)) for n in names]


_Held = LRU[tuple[str, bytes], tuple[str, int, Filled]]  # generation, until (ms), fill


@dataclass
class _State:
    """This app's fills: the unchanged ones held (a few paged reads at once) and the
    cold ones being fetched in the background, by site and points."""

    held: _Held
    running: dict[tuple[str, bytes], Streaming] = field(default_factory=dict)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


def _state(request: Request) -> _State:
    app_state = request.app.state
    state: _State | None = getattr(app_state, "dropin_fills", None)
    if state is None:
        state = _State(LRU.counted(HELD_FILLS))
        app_state.dropin_fills = state
    return state


async def settled(app_state: object) -> None:
    """Wait for this app's background fills to be fetched and stored."""
    state: _State | None = getattr(app_state, "dropin_fills", None)
    while state is not None and state.tasks:
        await asyncio.gather(*state.tasks, return_exceptions=True)


async def stop(app_state: object, grace_s: float = STOP_GRACE_S) -> None:
    """The app is shutting down: let its background fills finish (their first pages were
    served, the rest is about to be stored) for up to ``grace_s``, then cancel them."""
    state: _State | None = getattr(app_state, "dropin_fills", None)
    if state is not None:
        await stop_all(list(state.tasks), grace_s=grace_s)
