"""Live series: one shared poller per (site, point set, grant scope), however many viewers.

A poller reads its points through the reader, like any read, once per poll interval (the
points' collect interval, bounded below), with the open TTL set to 0 so that the tail is
fetched again from its look-back on: samples that became visible upstream late are
caught, and everything fetched is merged into the cache as by any read. It keeps the
times of the samples it has already announced in its window (from each point's newest
sample minus the look-back), and what a poll finds beyond them is a *batch*: numbered,
per point in time order, each sample in exactly one batch. Viewers receive the batches
through bounded queues; one that falls behind is dropped, not buffered. The last viewer
leaving stops the poller. Batches are kept in a short ring so that a viewer reconnecting
with the number of the last batch it saw gets the ones it missed, and nothing twice.

Pollers live in one process: servers started with several workers poll once per worker.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from tsgate.background import Background
from tsgate.core.model import Series, TimeArray
from tsgate.errors import (
    Forbidden,
    NotFound,
    QuotaExceeded,
    RateLimited,
    StorageError,
    TsgateError,
    Unauthorized,
    UpstreamBadAnswer,
    UpstreamError,
)
from tsgate.series.reader import ReadStats, SeriesReader

log = logging.getLogger("tsgate.live")

DEFAULT_CADENCE_MS = 300_000  # when the catalog has no collect interval for a point
_EMPTY = np.empty(0, dtype=np.int64)


@dataclass(frozen=True)
class Push:
    """What a viewer's queue receives: ``samples`` (a batch), ``status`` (upstream failing
    or back), ``error`` (the stream ends: access lost, too slow, or a fault)."""

    kind: str
    seq: int = 0
    samples: dict[str, Series] = field(default_factory=dict)
    detail: dict[str, str] = field(default_factory=dict)
    error: TsgateError | None = None  # why an ``error`` push ends the stream


@dataclass(frozen=True)
class LiveLimits:
    per_caller: int = 8  # open streams per caller
    total: int = 1000  # open streams in the process
    min_poll_ms: int = 10_000  # a poll interval is never shorter
    poll_ms: int = 0  # the poll interval; 0: the points' collect interval
    buffer: int = 64  # pushes a viewer may fall behind before it is dropped
    ring: int = 256  # batches kept for reconnecting viewers


class Viewer:
    """One open stream: its queue and the caller it counts against."""

    def __init__(self, caller: str, buffer: int) -> None:
        self.caller = caller
        self.queue: asyncio.Queue[Push] = asyncio.Queue(maxsize=buffer)
        self.closed = False
        self.left = False
        # batches up to this one are in what the viewer was first given: skipped
        self.since = 2**62

    def offer(self, push: Push) -> None:
        """Queue ``push``; a viewer whose queue is full is dropped (told so, if it reads)."""
        if self.closed:
            return
        try:
            self.queue.put_nowait(push)
        except asyncio.QueueFull:
            slow = RateLimited("the client reads the stream too slowly; reconnect", 0.0)
            self.close(Push("error", push.seq, error=slow))
        else:
            if push.kind == "error":
                self.closed = True

    def close(self, last: Push) -> None:
        """End the stream with ``last``: what is queued is dropped (memory stays bounded)."""
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(last)
        self.closed = True


class LivePoller:
    def __init__(
        self,
        reader: SeriesReader,
        site: str,
        points: Sequence[str],
        token: str,
        *,
        interval_ms: int,
        ring: int,
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.reader = reader
        self.site = site
        self.points = tuple(points)
        self.key: tuple[str, tuple[str, ...], str] = (site, self.points, "")
        self.interval_ms = interval_ms
        self.epoch = secrets.token_hex(4)  # batch numbers are of this poller only
        self.seq = 0
        self.viewers: set[Viewer] = set()
        self.lock = asyncio.Lock()
        self._token = token
        self._sleep = sleep
        self._known: dict[str, TimeArray] = {n: _EMPTY for n in self.points}
        self._ring: deque[Push] = deque(maxlen=ring)
        self._failing = False
        self._low = 0
        self._task = Background(f"live:{site}")

    def low_ms(self, now_ms: int) -> int:
        """Where the window starts: each point's newest sample minus the look-back (now
        minus the look-back without one), never more than two look-backs ago, and never
        earlier than it was."""
        lookback = self.reader.policy.lookback_ms
        newest = [int(k[-1]) if k.size else now_ms for k in self._known.values()]
        low = max(now_ms - 2 * lookback, min(newest, default=now_ms) - lookback)
        # it only moves on: samples before it were compared already, or never will be
        self._low = max(self._low, low)
        return self._low

    async def step(
        self, start_ms: int | None = None, *, fresh: bool
    ) -> tuple[dict[str, Series], ReadStats]:
        """One read of ``[min(start, window start), now]`` (the caller holds the lock);
        what the window holds beyond the announced samples goes to the viewers as one
        batch. Returns the read, so a joining viewer's first answer is this very read."""
        now = self.reader.clock_ms()
        low = self.low_ms(now)
        begin = low if start_ms is None else min(start_ms, low)
        found, stats = await self.reader.read(
            self.site,
            self.points,
            begin,
            now + 1,
            token=self._token,
            open_ttl_ms=0 if fresh else None,
        )
        new: dict[str, Series] = {}
        for name in self.points:
            window = found[name].crop(low, now + 1)
            known = self._known[name]
            known = known[known >= low]
            fresh_mask = ~np.isin(window.t_ms, known, assume_unique=True)
            if bool(fresh_mask.any()):
                us = window.us[fresh_mask] if window.us is not None else None
                new[name] = Series(name, window.t_ms[fresh_mask], window.v[fresh_mask], us)
            self._known[name] = np.union1d(known, window.t_ms)
        if new:
            self.seq += 1
            self._publish(Push("samples", self.seq, new))
        self._upstream_state(stats)
        return found, stats

    def _upstream_state(self, stats: ReadStats, detail: str = "") -> None:
        failing = stats.stale or bool(detail)
        if failing != self._failing:
            self._failing = failing
            state = "failing" if failing else "ok"
            text = detail or ("served from the cache only" if failing else "answering again")
            self._publish(Push("status", self.seq, detail={"upstream": state, "detail": text}))

    def _publish(self, push: Push) -> None:
        if push.kind == "samples":
            self._ring.append(push)
        for viewer in list(self.viewers):
            viewer.offer(push)
            if viewer.closed:  # dropped: it gets nothing more (its stream ends when it reads)
                self.viewers.discard(viewer)

    async def join(
        self, viewer: Viewer, start_ms: int | None
    ) -> tuple[dict[str, Series], ReadStats]:
        """``viewer``'s first answer: one read from ``start_ms`` (or the window start) on,
        under the lock; what it finds beyond the announced samples becomes a batch for the
        others, and ``viewer`` takes only the batches after it."""
        async with self.lock:
            found, stats = await self.step(start_ms, fresh=False)
            viewer.since = self.seq
        return found, stats

    async def resume(self, viewer: Viewer, seq: int) -> list[Push] | None:
        """The batches after ``seq`` for a reconnecting ``viewer`` (who then takes the later
        ones), or ``None`` when some of them are no longer kept."""
        async with self.lock:
            kept = [p for p in self._ring if p.seq > seq]
            if seq > self.seq or (seq < self.seq and (not kept or kept[0].seq != seq + 1)):
                return None
            viewer.since = self.seq
        return kept

    def start(self, on_end: Callable[[LivePoller], None]) -> None:
        self._task.start(lambda: self._run(on_end))

    def cancel(self) -> None:
        self._task.cancel()

    async def stop(self) -> None:
        await self._task.stop()

    async def _run(self, on_end: Callable[[LivePoller], None]) -> None:
        try:
            while True:
                await self._sleep(self.interval_ms / 1000)
                async with self.lock:
                    if not await self._poll() or not self.viewers:
                        return  # the stream is over, or every viewer was dropped
        finally:
            on_end(self)

    async def _poll(self) -> bool:
        """One fresh poll; ``False`` when the stream must end (access lost, a fault)."""
        try:
            await self.step(fresh=True)
        except (Unauthorized, Forbidden, NotFound) as exc:
            self._end(exc)
            return False
        except (UpstreamError, UpstreamBadAnswer, StorageError) as exc:
            # nothing cached to serve, or the store failed: say so, and poll again later
            self._upstream_state(ReadStats(), detail=exc.detail or type(exc).__name__)
        except Exception:
            log.exception("live poll of %s failed", self.site)
            self._end(TsgateError("the live poll failed; reconnect to start again"))
            return False
        return True

    def _end(self, error: TsgateError) -> None:
        for viewer in list(self.viewers):
            viewer.close(Push("error", self.seq, error=error))


class LiveHub:
    """The process's pollers, and the bounds on viewers."""

    def __init__(
        self,
        reader: SeriesReader,
        limits: LiveLimits | None = None,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.reader = reader
        self.limits = limits or LiveLimits()
        self.sleep = sleep
        self.pollers: dict[tuple[str, tuple[str, ...], str], LivePoller] = {}
        self._callers: Counter[str] = Counter()

    @property
    def viewers(self) -> int:
        return sum(self._callers.values())

    def admit(self, caller: str) -> Viewer:
        """A new viewer for ``caller``, or 429 beyond the per-caller or the total cap."""
        limits = self.limits
        if self._callers[caller] >= limits.per_caller:
            raise QuotaExceeded(
                "live_viewers_per_caller",
                f"at most {limits.per_caller} live streams per caller; close one first",
                retry_after_s=30.0,
            )
        if self.viewers >= limits.total:
            raise QuotaExceeded(
                "live_viewers", f"at most {limits.total} live streams at once", retry_after_s=30.0
            )
        self._callers[caller] += 1
        return Viewer(caller, limits.buffer)

    async def poller_for(
        self, site: str, points: Sequence[str], scope: str, token: str, viewer: Viewer
    ) -> LivePoller:
        """The poller of (site, point set, scope), started if there is none; ``viewer``
        is one of its viewers from now on (it is stopped only when its last one leaves)."""
        key = (site, tuple(sorted(points)), scope)
        if key not in self.pollers:
            interval_ms = await self._interval_ms(site, key[1])
            if key not in self.pollers:  # not made by another viewer meanwhile
                poller = LivePoller(
                    self.reader,
                    site,
                    key[1],
                    token,
                    interval_ms=interval_ms,
                    ring=self.limits.ring,
                    sleep=self.sleep,
                )
                poller.key = key
                self.pollers[key] = poller
                poller.start(self._ended)
        poller = self.pollers[key]
        poller.viewers.add(viewer)
        return poller

    async def _interval_ms(self, site: str, points: Sequence[str]) -> int:
        if self.limits.poll_ms > 0:
            return max(self.limits.min_poll_ms, self.limits.poll_ms)
        try:
            profiles = await self.reader.profiles(site, points)
        except TsgateError:
            profiles = {}
        cadences = [p.cadence_ms or DEFAULT_CADENCE_MS for p in profiles.values()]
        return max(self.limits.min_poll_ms, min(cadences, default=DEFAULT_CADENCE_MS))

    def _ended(self, poller: LivePoller) -> None:
        if self.pollers.get(poller.key) is poller:
            del self.pollers[poller.key]

    def leave(self, poller: LivePoller | None, viewer: Viewer) -> None:
        """``viewer`` is gone; the last viewer of a poller stops it (without waiting: this
        runs while the stream's task is being cancelled). Leaving twice counts once."""
        if viewer.left:
            return
        viewer.left = True
        self._callers[viewer.caller] -= 1
        if self._callers[viewer.caller] <= 0:
            del self._callers[viewer.caller]
        viewer.closed = True
        if poller is None:
            return
        poller.viewers.discard(viewer)
        if not poller.viewers:
            self._ended(poller)
            poller.cancel()

    async def aclose(self) -> None:
        for poller in list(self.pollers.values()):
            await poller.stop()
