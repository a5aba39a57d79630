"""Per-request telemetry as pure ASGI middleware (bodies keep streaming through it).

Each request gets an ``X-Request-ID`` (a sane incoming one is kept; every line logged
while serving it carries it, see ``tsgate.ops.logs``), one ``tsgate.access`` line when it
finishes (method, path without query, status, duration, bytes, cache status — never
headers, queries or tokens), Prometheus metrics, and, under ``/api/``, its count in
the request statistics (``tsgate.ops.recorder``). STALE answers are made uncacheable
here, for every route at once. The fast path (``tsgate.api.fastpath``) sits outside this
middleware and tells :class:`Telemetry` of the answers it serves itself.
"""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tsgate.api.metrics import Metrics
from tsgate.ops.logs import REQUEST_ID
from tsgate.ops.stats import RequestStat
from tsgate.services import Services

log = logging.getLogger("tsgate.access")

_TOLD = frozenset({b"x-cache-status", b"x-cache-source", b"x-data-samples"})
_SANE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# fresh ids: a random prefix per process and a counter (no system call per request)
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count(int.from_bytes(secrets.token_bytes(4)))


def request_id_of(raw_headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in raw_headers:
        if name == b"x-request-id":
            incoming = value.decode("latin-1")
            if _SANE_ID.fullmatch(incoming):
                return incoming
            break
    return f"{_ID_PREFIX}{next(_ID_COUNTER) & 0xFFFF_FFFF_FFFF_FFFF:016x}"


class _Exchange:
    """One request as telemetry follows it (a plain slotted class: one per request)."""

    __slots__ = ("bytes_out", "request_id", "started_s", "status", "told")

    def __init__(self, request_id: str) -> None:
        self.request_id = request_id
        self.started_s = time.perf_counter()
        self.status = 500
        self.bytes_out = 0
        # the X-Cache-*/X-Data-Samples headers of the answer, lower-cased names
        self.told: dict[bytes, str] = {}


def _uncacheable_if_stale(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """A STALE answer (upstream down, cache only) is a stopgap, whatever range it covers:
    no browser or proxy may keep it, or it would outlive the outage."""
    if (b"x-cache-status", b"STALE") not in headers:
        return headers
    return [(k, v) for k, v in headers if k != b"cache-control"] + [(b"cache-control", b"no-store")]


class Telemetry:
    """What is recorded of a finished request: its metrics, its access line and, under
    ``/api/``, its request statistics. The middleware below tells it of every request;
    the fast path (``tsgate.api.fastpath``) of the answers it serves itself."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def finished(
        self,
        scope: Scope,
        request_id: str,
        route: str,
        status: int,
        duration_s: float,
        bytes_out: int,
        samples: int,
        cache_status: str | None,
        cache_source: str | None,
    ) -> None:
        self.metrics.observe(
            route=route,
            method=scope["method"],
            status=status,
            duration_s=duration_s,
            bytes_out=bytes_out,
            samples=samples,
            cache_status=cache_status,
            cache_source=cache_source,
        )
        if log.isEnabledFor(logging.INFO):
            fields = {
                "method": scope["method"],
                "path": scope["path"],
                "route": route,
                "status": status,
                "duration_ms": round(duration_s * 1000, 2),
                "bytes": bytes_out,
                "cache": cache_status,
                "source": cache_source,
            }
            log.info(
                "%s %s %d",
                scope["method"],
                scope["path"],
                status,
                extra={
                    "request_id": request_id,
                    "fields": {k: v for k, v in fields.items() if v is not None},
                },
            )
        services: Services | None = scope.get("state", {}).get("services")
        if services is not None and scope["path"].startswith("/api/"):
            services.recorder.add(
                RequestStat(
                    at_ms=services.clock_ms(),
                    route=route,
                    status=status,
                    duration_ms=duration_s * 1000,
                    samples=samples,
                    bytes_out=bytes_out,
                    cache_status=_cache_label(cache_status, cache_source),
                )
            )


class TelemetryMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.telemetry = Telemetry(metrics)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        exchange = _Exchange(request_id_of(scope["headers"]))
        scope.setdefault("state", {})["request_id"] = exchange.request_id
        context = REQUEST_ID.set(exchange.request_id)
        id_header = (b"x-request-id", exchange.request_id.encode())

        async def send_tracked(message: Message) -> None:
            kind = message["type"]
            if kind == "http.response.body":
                exchange.bytes_out += len(message.get("body", b""))
            elif kind == "http.response.start":
                headers = _uncacheable_if_stale(message.get("headers") or [])
                told = exchange.told
                for k, v in headers:
                    if k in _TOLD:
                        told[k] = v.decode("latin-1")
                message["headers"] = [*headers, id_header]
                exchange.status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        finally:
            told = exchange.told
            self.telemetry.finished(
                scope,
                exchange.request_id,
                getattr(scope.get("route"), "path", None) or "unmatched",
                exchange.status,
                time.perf_counter() - exchange.started_s,
                exchange.bytes_out,
                header_count(told.get(b"x-data-samples")),
                told.get(b"x-cache-status"),
                told.get(b"x-cache-source"),
            )
            REQUEST_ID.reset(context)


def _cache_label(status: str | None, source: str | None) -> str:
    """``HIT:MEMORY``, ``MISS:ORIGIN``, ``BYPASS``… or ``NONE`` for uncached routes."""
    if not status:
        return "NONE"
    return f"{status}:{source}" if source else status


def header_count(raw: str | bytes | None) -> int:
    """A count a header told (``X-Data-Samples``): 0 when absent or not a count."""
    try:
        return max(0, int(raw)) if raw else 0
    except ValueError:
        return 0
