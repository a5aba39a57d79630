"""The one wrapper around an upstream adapter: circuit breaker, counters, long reads.

Every typed read of the adapter (:class:`~tsgate.upstream.base.AceReads`, one upstream
request each after the adapter's retries) goes through one circuit breaker
(``upstream/breaker.py``), so an upstream that keeps failing is not asked again until
its reset time has passed; pass-through requests are only refused while it is open,
their answers never count. What each call cost (requests, bytes, retries, sample rows:
the adapter reports them to ``upstream.metering``) is added to the process counters
here, and to the meters open around the caller (its request's, its read's).

Long reads are fanned out here: a point's range in month windows read in parallel, a
short span of many points in batches of one POST each, a site's stream page by page.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from tsgate.errors import UpstreamUnavailable
from tsgate.samples import MS_PER_DAY, Series, concat
from tsgate.upstream import metering
from tsgate.upstream.base import AceReads, Forwarded, Page, SitePage, Upstream, UpstreamCounters
from tsgate.upstream.breaker import CircuitBreaker
from tsgate.upstream.costs import RequestCosts

T = TypeVar("T")
POINT_WINDOW_MS = 31 * MS_PER_DAY  # one per-point read never spans more than a month
BATCH_SPAN_MS = MS_PER_DAY  # spans up to this are read for many points in one POST
BATCH_POINTS = 100


class GuardedReads(Upstream, Protocol):
    """The typed reads with the circuit and the counters, as health and metrics see them
    (:class:`GuardedUpstream` is it)."""

    counters: UpstreamCounters

    def circuit_state(self) -> str: ...

    def circuit_opens(self) -> int: ...

    def check_circuit(self) -> None: ...


class GuardedUpstream:
    """An :class:`~tsgate.upstream.base.Upstream` over ``reads``, guarded by ``breaker``."""

    def __init__(
        self,
        reads: AceReads,
        breaker: CircuitBreaker | None = None,
        *,
        costs: RequestCosts | None = None,
    ) -> None:
        self.reads = reads
        self.breaker = breaker or CircuitBreaker()
        self.counters = UpstreamCounters()
        # what data requests cost, as the adapter measured them (for the request planner)
        self.costs = costs or RequestCosts()

    async def aclose(self) -> None:
        await self.reads.aclose()

    # ---- the circuit, for health and metrics --------------------------------------------

    def circuit_state(self) -> str:
        """``closed``, ``open`` or ``half_open``."""
        return self.breaker.state

    def circuit_opens(self) -> int:
        """How many times the circuit opened since the process started."""
        return self.breaker.opens

    def check_circuit(self) -> None:
        """Raise ``UpstreamCircuitOpen`` when a call now would be refused."""
        self.breaker.check()

    # ---- typed reads ----------------------------------------------------------------------

    async def sites_page(self, page: int, per_page: int, *, token: str) -> Page:
        return await self._guarded(lambda: self.reads.sites_page(page, per_page, token=token))

    async def site(self, site: str, *, token: str) -> dict[str, Any]:
        return await self._guarded(lambda: self.reads.site(site, token=token))

    async def point(self, name: str, *, token: str) -> dict[str, Any]:
        return await self._guarded(lambda: self.reads.point(name, token=token))

    async def configured_points_page(
        self, site: str, page: int, per_page: int, *, token: str
    ) -> Page:
        return await self._guarded(
            lambda: self.reads.configured_points_page(site, page, per_page, token=token)
        )

    async def site_pages(
        self, site: str, start_ms: int, end_ms: int, *, token: str, raw: bool, page_size: int
    ) -> AsyncIterator[dict[str, Series]]:
        seen: set[str] = set()

        def ask(cursor: str | None) -> asyncio.Task[SitePage]:
            read = functools.partial(
                self.reads.site_page,
                site,
                start_ms,
                end_ms,
                token=token,
                raw=raw,
                page_size=page_size,
                cursor=cursor,
            )
            return asyncio.ensure_future(self._guarded(read))

        # the next page is asked for as soon as this one's cursor is known, so upstream
        # prepares it while this one is used: one request at a time, none waiting on us
        pending: asyncio.Task[SitePage] | None = ask(None)
        try:
            while pending is not None:
                page = await pending
                pending = None
                if page.has_more:
                    cursor = page.next_cursor
                    if not cursor or cursor in seen:
                        # an upstream that says "more" without a new cursor would loop or
                        # cut short
                        raise UpstreamUnavailable(
                            f"upstream paginated {site}: has_more without a usable cursor"
                        )
                    seen.add(cursor)
                    pending = ask(cursor)
                yield page.series
        finally:
            if pending is not None:  # the reader stopped early (or failed): none left behind
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pending

    async def points_series(
        self, names: Sequence[str], start_ms: int, end_ms: int, *, token: str
    ) -> dict[str, Series]:
        unique = list(dict.fromkeys(names))
        if len(unique) > 1 and end_ms - start_ms <= BATCH_SPAN_MS:
            # short spans of many points (a dashboard's new minutes): one POST per batch
            batches = [unique[i : i + BATCH_POINTS] for i in range(0, len(unique), BATCH_POINTS)]
            found = await asyncio.gather(
                *(self._batch(b, start_ms, end_ms, token) for b in batches)
            )
            return {name: series for part in found for name, series in part.items()}
        windows = [
            (s, min(s + POINT_WINDOW_MS, end_ms)) for s in range(start_ms, end_ms, POINT_WINDOW_MS)
        ]
        jobs = [(name, w) for name in unique for w in windows]
        parts = await asyncio.gather(*(self._window(n, s, e, token) for n, (s, e) in jobs))
        grouped: dict[str, list[Series]] = {name: [] for name in unique}
        for (name, _), part in zip(jobs, parts, strict=True):
            grouped[name].append(part)
        return {name: concat(name, pieces) for name, pieces in grouped.items()}

    async def points_request(
        self, names: Sequence[str], start_ms: int, end_ms: int, *, token: str
    ) -> dict[str, Series]:
        unique = list(dict.fromkeys(names))
        if len(unique) == 1:
            return {unique[0]: await self._window(unique[0], start_ms, end_ms, token)}
        return await self._batch(unique, start_ms, end_ms, token)

    async def forward(
        self,
        method: str,
        path: str,
        *,
        token: str,
        query: str = "",
        body: bytes = b"",
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Forwarded:
        # the path is the caller's: its answers say nothing of upstream's health, so they
        # never count towards the breaker (which still fails fast while open)
        self.breaker.check()
        return await self._counted(
            lambda: self.reads.forward(
                method,
                path,
                token=token,
                query=query,
                body=body,
                content_type=content_type,
                headers=headers,
            )
        )

    # ---- internals ---------------------------------------------------------------------

    async def _batch(
        self, names: Sequence[str], start_ms: int, end_ms: int, token: str
    ) -> dict[str, Series]:
        return await self._guarded(
            lambda: self.reads.points_batch(names, start_ms, end_ms, token=token)
        )

    async def _window(self, name: str, start_ms: int, end_ms: int, token: str) -> Series:
        return await self._guarded(
            lambda: self.reads.point_window(name, start_ms, end_ms, token=token)
        )

    async def _guarded(self, call: Callable[[], Awaitable[T]]) -> T:
        return await self._counted(lambda: self.breaker.call(call))

    async def _counted(self, call: Callable[[], Awaitable[T]]) -> T:
        with metering.metered() as meter:
            try:
                return await call()
            finally:
                self.counters.requests += meter.requests
                self.counters.bytes += meter.bytes
                self.counters.retries += meter.retries
                self.counters.samples += meter.samples
