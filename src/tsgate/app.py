"""The ASGI app factory: ``create_app()`` builds routes; the lifespan opens the services."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from tsgate import ui
from tsgate.api import (
    ace,
    admin,
    aggregations,
    chartimages,
    charts,
    files,
    frames,
    jobs,
    livestream,
    metrics,
    monitor,
    occupancy,
    openapi,
    ops,
    points,
    prefill,
    prometheus,
    quality,
    timeseries,
)
from tsgate.api.connection import (
    AdmissionMiddleware,
    ChunkedBodyMiddleware,
    DisconnectMiddleware,
)
from tsgate.api.cors import CorsMiddleware, CorsPolicy
from tsgate.api.fastpath import FastAnswers, FastPathMiddleware
from tsgate.api.limits import BodyLimitMiddleware, UrlGuardMiddleware
from tsgate.api.problems import HANDLERS
from tsgate.api.ratelimit import RateLimitMiddleware
from tsgate.api.telemetry import TelemetryMiddleware
from tsgate.ops.looplag import LoopLagProbe, settle_heap
from tsgate.settings import Settings
from tsgate.upstream.guarded import GuardedUpstream
from tsgate.wiring import open_services

log = logging.getLogger("tsgate.server")

EXPOSED_HEADERS = (
    "X-Cache-Status",
    "X-Cache-Source",
    "X-Processing-Time",
    "X-Data-Samples",
    "Server-Timing",
    "ETag",
    "Location",
    "Retry-After",
    "X-Request-ID",
    "Content-Encoding",
    "RateLimit-Limit",
    "RateLimit-Remaining",
    "RateLimit-Reset",
)


def create_app(
    settings: Settings | None = None,
    *,
    upstream: GuardedUpstream | None = None,
    clock_ms: Callable[[], int] | None = None,
    shared_processes: bool = False,
    settle: bool = False,
) -> Starlette:
    """Build the app; nothing is opened until the lifespan starts. ``shared_processes``:
    other processes (job workers) share its stores (:func:`tsgate.wiring.open_services`).
    ``settle``: this app is its process's server, whose heap is settled once the services
    are open (:func:`tsgate.ops.looplag.settle_heap`; not for apps made in tests)."""
    conf = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        probe.start()
        try:
            async with open_services(
                conf, upstream=upstream, clock_ms=clock_ms, shared_processes=shared_processes
            ) as services:
                if settle:
                    log.info("heap settled: %d objects frozen", settle_heap())
                try:
                    yield {
                        "services": services,
                        "compress_min_bytes": conf.compress_min_bytes,
                        "fast_answers": FastAnswers(),
                    }
                finally:
                    await prefill.stop(app.state)  # background fills end before the services
        finally:
            await probe.aclose()

    probe = LoopLagProbe(conf.loop_lag_interval_s)
    meters = metrics.Metrics(loop_lag=probe.counts, gc_pauses=probe.gc.counts)
    # the ACE drop-in routes end with a catch-all passthrough: they go last
    routes: list[BaseRoute] = [
        *ops.routes(),
        *monitor.routes(),
        *admin.routes(),
        *metrics.routes(meters),
        *livestream.routes(),
        *timeseries.routes(),
        *aggregations.routes(),
        *quality.routes(),
        *occupancy.routes(),
        *points.routes(),
        *jobs.routes(),
        *chartimages.routes(),  # before charts: its {chart_id} would take 'id.png'
        *charts.routes(),
        *files.routes(),
        *prometheus.routes(),
        *frames.routes(),
        *ui.routes(compress_min_bytes=conf.compress_min_bytes),
        *openapi.routes(),
        *ace.routes(),
    ]
    cors = CorsPolicy(
        conf.cors_origins,
        # every method the ACE pass-through relays
        allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["*"],
        expose_headers=EXPOSED_HEADERS,
    )
    middleware = [
        # cached chart answers leave here, before the middleware below and the routing
        Middleware(FastPathMiddleware, cors=cors, metrics=meters),
        Middleware(TelemetryMiddleware, metrics=meters),
        Middleware(ChunkedBodyMiddleware),
        Middleware(DisconnectMiddleware),
        Middleware(AdmissionMiddleware, max_active=conf.max_active_requests),
        Middleware(CorsMiddleware, policy=cors),
        Middleware(RateLimitMiddleware),
        Middleware(BodyLimitMiddleware),
        Middleware(UrlGuardMiddleware),
    ]
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers=dict(HANDLERS),
        lifespan=lifespan,
    )
