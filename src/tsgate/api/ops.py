"""Operational endpoints: deep health checks and usage statistics.

``GET /api/health`` probes every seam with a deadline: database or objects down →
``unhealthy`` (503); cache or upstream down (its circuit breaker open included), or a
maintenance alert → ``degraded`` (200). It needs no token and is never rate limited,
for load balancers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tsgate import __version__
from tsgate.api.negotiation import respond
from tsgate.api.services import services_of
from tsgate.errors import Forbidden, StorageError, TsgateError, Unauthorized
from tsgate.ops.stats import RequestGroup
from tsgate.services import Services

CRITICAL = ("database", "objects")
UPSTREAM_JSON_BYTES_PER_SAMPLE = 150  # what upstream's JSON rows cost (DESIGN §1)
_DAY_MS = 86_400_000


async def _check(probe: Callable[[], Awaitable[object]], timeout_s: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(probe(), timeout_s)
        result: dict[str, Any] = {"status": "ok"}
    except TimeoutError:
        result = {"status": "error", "detail": f"no answer in {timeout_s} s"}
    except (Unauthorized, Forbidden):
        result = {"status": "ok"}  # upstream answered and judged the token: it is up
    except TsgateError as exc:
        result = {"status": "error", "detail": exc.detail}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


async def _objects_probe(services: Services) -> None:
    key = f"health/probe-{uuid.uuid4().hex}"
    await services.objects.put(key, b"ok")
    try:
        if await services.objects.get(key) != b"ok":
            raise StorageError("objects: the probe read back something else")
    finally:
        await services.objects.delete(key)


async def _upstream_probe(services: Services) -> None:
    # an open circuit answers for upstream: probing it would only add to its load
    services.upstream.check_circuit()
    token = services.settings.upstream_token or "health-check"
    # per_page=2 is the smallest page the Swagger's enum allows
    await services.upstream.sites_page(1, 2, token=token)


async def _replicas(services: Services, timeout_s: float) -> list[dict[str, Any]]:
    try:
        return await asyncio.wait_for(services.health.replica_health(), timeout_s)
    except TimeoutError:
        return [{"status": "error", "detail": f"no answer in {timeout_s} s"}]


def overall(checks: dict[str, dict[str, Any]], alerts: list[str]) -> str:
    failed = {name for name, check in checks.items() if check["status"] != "ok"}
    if {n for n in failed if checks[n]["status"] == "error"} & set(CRITICAL):
        return "unhealthy"
    return "degraded" if failed or alerts else "healthy"


async def health(request: Request) -> Response:
    services = services_of(request)
    timeout_s = services.settings.health_timeout_s
    probes: dict[str, Callable[[], Awaitable[object]]] = {
        "database": services.health.ping,
        "objects": lambda: _objects_probe(services),
        "cache": services.cache.ping,
        "upstream": lambda: _upstream_probe(services),
    }
    results = await asyncio.gather(*(_check(p, timeout_s) for p in probes.values()))
    checks = dict(zip(probes, results, strict=True))
    checks["upstream"]["circuit"] = services.upstream.circuit_state()
    replicas = await _replicas(services, timeout_s)
    if replicas:
        # a replica that lags or fails is skipped (reads go to the primary): degraded
        checks["database"]["replicas"] = replicas
        if checks["database"]["status"] == "ok" and any(r["status"] != "ok" for r in replicas):
            checks["database"]["status"] = "degraded"
    alerts = services.alerts.current()
    status = overall(checks, alerts)
    body = {"status": status, "version": __version__, "checks": checks, "alerts": alerts}
    return respond(request, body, status=503 if status == "unhealthy" else 200)


def cache_summary(groups: list[RequestGroup]) -> dict[str, Any]:
    """Hit ratios from request groups labelled ``STATUS[:SOURCE]`` (see telemetry)."""
    by_status: dict[str, int] = {}
    by_source: dict[str, int] = {}
    for g in groups:
        status, _, source = g.cache_status.partition(":")
        by_status[status] = by_status.get(status, 0) + g.count
        if source:
            by_source[source] = by_source.get(source, 0) + g.count
    cached = sum(by_status.get(s, 0) for s in ("HIT", "PARTIAL", "MISS"))
    answered = sum(by_source.values())
    return {
        "by_status": by_status,
        "by_source": by_source,
        "hit_ratio": round(by_status.get("HIT", 0) / cached, 4) if cached else None,
        # the share of cached responses each layer answered
        "source_ratio": {s: round(n / answered, 4) for s, n in by_source.items()},
    }


async def stats(request: Request) -> Response:
    services = services_of(request)
    await services.recorder.flush()  # this process's latest requests count too
    now_ms = services.clock_ms()
    window_days = services.settings.stats_retention_days
    since_ms = now_ms - int(window_days * _DAY_MS)
    groups = await services.stats.groups(since_ms)
    samples = sum(g.samples for g in groups)
    sampled_bytes = sum(g.bytes_out for g in groups if g.samples)
    counters = services.upstream.counters
    counts = await services.chunks.counts()
    cost, measured = services.reader.request_cost_known()
    results, result_bytes = await services.jobs.stored_results()
    files, file_bytes = await services.files.usage()
    body = {
        "since_ms": since_ms,
        "window_days": window_days,
        "requests": sum(g.count for g in groups),
        "cache": cache_summary(groups),
        "samples_served": samples,
        "bytes_out": sum(g.bytes_out for g in groups),
        "bytes_saved": max(0, samples * UPSTREAM_JSON_BYTES_PER_SAMPLE - sampled_bytes),
        "upstream": {
            "requests": counters.requests,
            "retries": counters.retries,
            "samples": counters.samples,
            "bytes": counters.bytes,
            "circuit": services.upstream.circuit_state(),
            "circuit_opens": services.upstream.circuit_opens(),
            # what the request planner takes one data request to cost
            "request_cost": {
                "latency_ms": round(cost.latency_s * 1000, 3),
                "sample_us": round(cost.sample_s * 1e6, 3),
                "source": "measured" if measured else "settings",
            },
        },
        "store": {
            **counts,
            "job_results": results,
            "job_result_bytes": result_bytes,
            "files": files,
            "file_bytes": file_bytes,
            "database_bytes": await services.health.size_bytes(),
        },
        # late data and lost objects: provisional periods (with holes) are re-checked
        "integrity": {
            "holes_open": counts["provisional"],
            "late_samples_repaired": services.reader.store_counters().repaired,
            "damaged_objects_refetched": services.reader.store_counters().damaged,
            "recheck_passes": services.rechecks.passes,
            "rechecked_periods": services.rechecks.periods,
            "recheck_requests": services.rechecks.requests,
            "recheck_failures": services.rechecks.failures,
        },
        # saved charts kept cached by maintenance (TSGATE_WARM_CHARTS_DAYS)
        "warm": dataclasses.asdict(services.warming),
        "jobs": await services.jobs.counts(),
        "alerts": services.alerts.current(),
        "monitor": await _monitor_summary(services),
    }
    return respond(request, body)


async def _monitor_summary(services: Services) -> dict[str, Any]:
    """The latest monitoring sample and every alert's level (history: ``/api/monitor``)."""
    latest = services.monitor.latest if services.monitor is not None else None
    return {
        "levels": await services.monitoring.levels(),
        "sampled_at_ms": None if latest is None else latest.at_ms,
        "values": {} if latest is None else latest.values,
    }


def routes() -> list[Route]:
    return [
        Route("/api/health", health, methods=["GET"]),
        Route("/api/stats", stats, methods=["GET"]),
    ]
