"""``GET /api/timeseries/stream``: a chart answer, then its new samples as they appear (SSE).

The query is ``/api/timeseries``'s (same parameters, checks and limits). Events:

- ``initial``: the chart answer, shaped as ``/api/timeseries`` answers it in JSON;
- ``samples``: ``{"series": [{name, t, v}]}`` (columnar JSON), per point only samples not
  sent before, each in time order; its ``id`` lets a reconnect (``Last-Event-ID``) resume;
- ``status``: ``{"upstream": "failing"|"ok", "detail"}`` when upstream fails or is back;
- ``error``: a problem object (access lost, the client reads too slowly, a fault): the
  stream ends;
- ``end``: ``{"reason": "closed"|"idle"|"max-duration"}``: the stream ends.

Comments (``: keepalive``) are sent when nothing else was for ``TSGATE_LIVE_HEARTBEAT_S``.
The polling is shared (``series/live.py``); this module holds the bounds of one stream.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tsgate.api.auth import token_of
from tsgate.api.chartquery import chart_request, check_raw_reads, resolve_zone
from tsgate.api.limits import check_fetch_budget
from tsgate.api.problems import status_of
from tsgate.api.services import services_of
from tsgate.api.timeseries import describe_answer
from tsgate.core.model import Series
from tsgate.errors import BadParameter, UpstreamBadAnswer, UpstreamError
from tsgate.series.access import UNKNOWN_SITE
from tsgate.series.chart import ChartQuery, ChartResult, answer_of, run_chart
from tsgate.series.live import LivePoller, Push, Viewer
from tsgate.series.planning import Range
from tsgate.services import Services
from tsgate.wire.chart import chart_body

log = logging.getLogger(__name__)
RETRY_MS = 5000  # how long an EventSource waits before it reconnects
_EVENT_ID = re.compile(r"([0-9a-f]{8})\.(\d{1,18})")


class LiveResponse(StreamingResponse):
    """An event stream whose viewer is released however the response ends."""

    def __init__(self, content: AsyncIterator[bytes], on_close: Callable[[], None]) -> None:
        super().__init__(
            content,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._on_close()


def event(name: str, data: Any, event_id: str | None = None) -> bytes:
    head = f"event: {name}\n" + (f"id: {event_id}\n" if event_id else "")
    return head.encode() + b"data: " + msgspec.json.encode(data) + b"\n\n"


async def stream(request: Request) -> Response:
    services = services_of(request)
    parsed = chart_request(request)
    if parsed.format not in (None, "json"):
        raise BadParameter("format", "an event stream is text: JSON only")
    token = token_of(request, services.settings.upstream_token)
    q = await resolve_zone(request, parsed.query, token)
    check_raw_reads(request, q)
    await _check_access(services, q, token)  # 401/403/404 before anything streams
    await _check_inline(services, q, token)
    scope = services.access.scope(token)
    hub = services.live
    viewer = hub.admit(scope)  # 429 beyond the caller's or the process's streams
    poller: LivePoller | None = None
    try:
        first: list[bytes] = [f"retry: {RETRY_MS}\n\n".encode()]
        if _closed(services, q):
            result = await run_chart(services.reader, q, token=token)
            first.append(event("initial", await _body(request, q, parsed.layout, result, token)))
            first.append(event("end", {"reason": "closed"}))
        else:
            # the catalog first: a new poller polls at its points' collect interval
            await _fresh_catalog(services, q.site, token)
            poller = await hub.poller_for(q.site, q.points, scope, token, viewer)
            replay = await _resume(request, poller, viewer)
            if replay is None:
                result = await _initial(services, poller, viewer, q, token)
                body = await _body(request, q, parsed.layout, result, token)
                first.append(event("initial", body, f"{poller.epoch}.{viewer.since}"))
            else:
                first.extend(e for p in replay if (e := _samples(poller, p, q)) is not None)
    except BaseException:
        hub.leave(poller, viewer)
        raise
    kept = poller
    return LiveResponse(
        _events(services, first, viewer, poller, q), on_close=lambda: hub.leave(kept, viewer)
    )


async def _check_access(services: Services, q: ChartQuery, token: str) -> None:
    if q.site == UNKNOWN_SITE:
        for name in q.points:
            await services.access.check(q.site, token, point=name)
    else:
        await services.access.check(q.site, token)


async def _fresh_catalog(services: Services, site: str, token: str) -> None:
    try:
        await services.catalog.fresh(site, token)
    except (UpstreamError, UpstreamBadAnswer) as exc:
        log.warning("point catalog of %s not refreshed: %s", site, exc)


async def _check_inline(services: Services, q: ChartQuery, token: str) -> None:
    """A stream does not become a job: a cold range too big to fetch inline is a 413."""
    await check_fetch_budget(
        services,
        q.site,
        q.points,
        q.start_ms,
        q.end_ms,
        token,
        hint="load the range first (GET /api/timeseries gives a job), or stream a shorter one",
    )


def _closed(services: Services, q: ChartQuery) -> bool:
    """Whether nothing in the range can still change: its end is a look-back ago."""
    return services.reader.clock_ms() >= q.end_ms + services.policy.lookback_ms


async def _resume(request: Request, poller: LivePoller, viewer: Viewer) -> list[Push] | None:
    """The batches a reconnecting client missed, or ``None`` (it gets a new ``initial``)."""
    match = _EVENT_ID.fullmatch(request.headers.get("last-event-id", "").strip())
    if match is None or match[1] != poller.epoch:
        return None
    return await poller.resume(viewer, int(match[2]))


async def _initial(
    services: Services, poller: LivePoller, viewer: Viewer, q: ChartQuery, token: str
) -> ChartResult:
    """The first answer. A raw query's is the poller's own read at the viewer's join, so
    the samples pushed after it are exactly those it lacks; a bucketed or downsampled one
    is computed right after the join from the cache as it then is."""
    if q.interval == "raw" and q.max_points is None and not q.compare_ms:
        found, stats = await poller.join(viewer, q.start_ms)
        series = [found[n].crop(q.start_ms, q.end_ms) for n in q.points]
        stats.provisional = {
            name: cut
            for name, spans in stats.provisional.items()
            if (cut := _clipped(spans, q.start_ms, q.end_ms))
        }
        stats.samples = sum(len(s) for s in series)
        return ChartResult(series, stats, stats.samples, "raw", "none")
    await poller.join(viewer, None)
    return await run_chart(services.reader, q, token=token)


def _clipped(spans: list[Range], start_ms: int, end_ms: int) -> list[Range]:
    cut = ((max(s, start_ms), min(e, end_ms)) for s, e in spans)
    return [(s, e) for s, e in cut if e > s]


async def _body(
    request: Request, q: ChartQuery, layout: str, result: ChartResult, token: str
) -> dict[str, Any]:
    body = chart_body(answer_of(q, result), layout, msgpack=False)
    await describe_answer(request, q, body, token)
    return body


def _samples(poller: LivePoller, push: Push, q: ChartQuery) -> bytes | None:
    """A batch as a ``samples`` event, cut to the viewer's range; ``None`` if that leaves
    nothing (a reconnect still resumes after it: later batches carry later numbers)."""
    series = []
    for name in q.points:
        part = push.samples.get(name, Series.empty(name)).crop(q.start_ms, q.end_ms)
        if len(part):
            series.append({"name": name, "t": part.t_ms.tolist(), "v": part.v.tolist()})
    return event("samples", {"series": series}, f"{poller.epoch}.{push.seq}") if series else None


def _problem(push: Push) -> dict[str, Any]:
    error = push.error
    if error is None:
        return {"status": 500, "title": "Internal error", "detail": "the stream failed"}
    status, title = status_of(error)
    return {"type": "about:blank", "title": title, "status": status, "detail": error.detail}


async def _events(
    services: Services,
    first: list[bytes],
    viewer: Viewer,
    poller: LivePoller | None,
    q: ChartQuery,
) -> AsyncIterator[bytes]:
    for chunk in first:
        yield chunk
    if poller is None:
        return
    settings = services.settings
    started = last_data = time.monotonic()
    while True:
        now = time.monotonic()
        if now - started >= settings.live_max_s:
            yield event("end", {"reason": "max-duration"})
            return
        if now - last_data >= settings.live_idle_s:
            yield event("end", {"reason": "idle"})
            return
        if _closed(services, q):
            yield event("end", {"reason": "closed"})
            return
        wait = min(
            settings.live_heartbeat_s,
            settings.live_max_s - (now - started),
            settings.live_idle_s - (now - last_data),
        )
        try:
            push = await asyncio.wait_for(viewer.queue.get(), timeout=max(0.001, wait))
        except TimeoutError:
            yield b": keepalive\n\n"
            continue
        if push.kind == "samples":
            pushed = _samples(poller, push, q) if push.seq > viewer.since else None
            if pushed is not None:
                yield pushed
                last_data = time.monotonic()
        elif push.kind == "status":
            yield event("status", push.detail)
        else:
            yield event("error", _problem(push))
            return


def routes() -> list[Route]:
    return [Route("/api/timeseries/stream", stream, methods=["GET"])]
