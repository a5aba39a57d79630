"""Prometheus metrics on a registry of this app's own (never the process-global one).

Request metrics are recorded by the telemetry middleware as responses finish; what other
parts count themselves (upstream calls, the chunk store) is read when ``/metrics`` is
scraped.
"""

from __future__ import annotations

import bisect
import dataclasses
import gc
import logging
import math
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tsgate.api.services import services_of
from tsgate.errors import StorageError
from tsgate.ops.looplag import LAG_BUCKETS_S, LagCounts
from tsgate.ops.monitor import level_number
from tsgate.services import Services

log = logging.getLogger("tsgate.metrics")
TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _Snapshot(Collector):
    """Counts owned elsewhere, copied in at scrape time."""

    def __init__(self) -> None:
        self.upstream: dict[str, int] = {}
        self.store: dict[str, int] = {}
        self.warm: dict[str, int] = {}
        self.circuit_open = 0
        self.monitor: dict[str, float] = {}
        self.alert_levels: dict[str, int] = {}
        self.live: dict[str, int] = {}

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        for name, value in self.upstream.items():
            family = CounterMetricFamily(f"tsgate_upstream_{name}", f"upstream {name}, total")
            family.add_metric([], value)
            yield family
        circuit = GaugeMetricFamily(
            "tsgate_upstream_circuit_open", "1 while upstream calls fail fast (breaker open)"
        )
        circuit.add_metric([], self.circuit_open)
        yield circuit
        for name, value in self.store.items():
            gauge = GaugeMetricFamily(f"tsgate_store_{name}", f"chunk store {name}")
            gauge.add_metric([], value)
            yield gauge
        for name, value in self.warm.items():
            family = CounterMetricFamily(
                f"tsgate_warm_{name}", f"saved charts kept warm by maintenance: {name}, total"
            )
            family.add_metric([], value)
            yield family
        for name, value in self.live.items():
            gauge = GaugeMetricFamily(f"tsgate_live_{name}", f"live streams: {name} now")
            gauge.add_metric([], value)
            yield gauge
        sampled = GaugeMetricFamily(
            "tsgate_monitor_value", "the latest monitoring sample", labels=["metric"]
        )
        for name, number in sorted(self.monitor.items()):
            sampled.add_metric([name], number)
        yield sampled
        levels = GaugeMetricFamily(
            "tsgate_alert_level",
            "alert level per rule: 0 ok, 1 warning, 2 critical",
            labels=["rule"],
        )
        for rule, level in sorted(self.alert_levels.items()):
            levels.add_metric([rule], level)
        yield levels


class _Requests(Collector):
    """Request metrics as plain counters, turned into Prometheus families at scrape time:
    recording one request is a few dict updates (prometheus-client's labelled metrics
    cost more than the rest of a cached answer's bookkeeping)."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str], int] = {}  # (route, method, status)
        # per route: one count per latency bucket (the last for +Inf), then the sum
        self.latency: dict[str, list[float]] = {}
        self.bytes_out: dict[str, int] = {}
        self.cache: dict[tuple[str, str], int] = {}  # (status, source)
        self.samples = 0

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        requests = CounterMetricFamily(
            "tsgate_http_requests", "requests served", labels=["route", "method", "status"]
        )
        for request_labels, count in self.counts.items():
            requests.add_metric(list(request_labels), count)
        yield requests
        latency = HistogramMetricFamily(
            "tsgate_http_request_duration_seconds", "time to the last body byte", labels=["route"]
        )
        for route, slots in self.latency.items():
            cumulative, buckets = 0.0, []
            for bound, in_bucket in zip((*_LATENCY_BUCKETS_S, math.inf), slots, strict=False):
                cumulative += in_bucket
                buckets.append(("+Inf" if math.isinf(bound) else str(float(bound)), cumulative))
            latency.add_metric([route], buckets, sum_value=slots[-1])
        yield latency
        bytes_out = CounterMetricFamily(
            "tsgate_http_response_bytes", "response body bytes sent", labels=["route"]
        )
        for route, total in self.bytes_out.items():
            bytes_out.add_metric([route], total)
        yield bytes_out
        cache = CounterMetricFamily(
            "tsgate_cache_responses",
            "responses by X-Cache-Status and X-Cache-Source",
            labels=["status", "source"],
        )
        for cache_labels, count in self.cache.items():
            cache.add_metric(list(cache_labels), count)
        yield cache
        samples = CounterMetricFamily("tsgate_samples_served", "samples in responses")
        samples.add_metric([], self.samples)
        yield samples


def _histogram(name: str, doc: str, c: LagCounts) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc)
    cumulative, buckets = 0, []
    for bound, in_bucket in zip((*LAG_BUCKETS_S, math.inf), c.buckets, strict=True):
        cumulative += in_bucket
        buckets.append(("+Inf" if math.isinf(bound) else str(float(bound)), cumulative))
    family.add_metric([], buckets, sum_value=c.total_s)
    return family


class _LoopLag(Collector):
    """The event-loop lag probe's counts and the collector's pauses
    (:mod:`tsgate.ops.looplag`), read as scraped."""

    def __init__(self, counts: LagCounts, gc_pauses: LagCounts | None) -> None:
        self.counts = counts
        self.gc_pauses = gc_pauses

    def collect(self) -> Iterator[GaugeMetricFamily | HistogramMetricFamily]:
        yield _histogram(
            "tsgate_event_loop_lag_seconds",
            "how much later than due the event loop ran the lag probe (work holding the loop)",
            self.counts,
        )
        worst = GaugeMetricFamily(
            "tsgate_event_loop_lag_max_seconds", "the longest event-loop lag measured"
        )
        worst.add_metric([], self.counts.worst_s)
        yield worst
        if self.gc_pauses is not None:
            yield _histogram(
                "tsgate_gc_pause_seconds",
                "how long each cyclic garbage collection held this process",
                self.gc_pauses,
            )
            frozen = GaugeMetricFamily(
                "tsgate_gc_frozen_objects",
                "objects frozen out of the garbage collector's walks once the server started",
            )
            frozen.add_metric([], gc.get_freeze_count())
            yield frozen


class Metrics:
    def __init__(
        self, loop_lag: LagCounts | None = None, gc_pauses: LagCounts | None = None
    ) -> None:
        self.registry = CollectorRegistry()
        self._requests = _Requests()
        self.registry.register(self._requests)
        self._snapshot = _Snapshot()
        self.registry.register(self._snapshot)
        if loop_lag is not None:
            self.registry.register(_LoopLag(loop_lag, gc_pauses))

    def observe(
        self,
        *,
        route: str,
        method: str,
        status: int,
        duration_s: float,
        bytes_out: int,
        samples: int,
        cache_status: str | None,
        cache_source: str | None,
    ) -> None:
        r = self._requests
        key = (route, method, str(status))
        r.counts[key] = r.counts.get(key, 0) + 1
        slots = r.latency.get(route)
        if slots is None:
            slots = r.latency[route] = [0.0] * (len(_LATENCY_BUCKETS_S) + 2)
        slots[bisect.bisect_left(_LATENCY_BUCKETS_S, duration_s)] += 1
        slots[-1] += duration_s
        r.bytes_out[route] = r.bytes_out.get(route, 0) + bytes_out
        r.samples += samples
        if cache_status:
            labels = (cache_status, cache_source or "")
            r.cache[labels] = r.cache.get(labels, 0) + 1

    async def refresh(self, services: Services) -> None:
        counters = services.upstream.counters
        self._snapshot.upstream = {
            "requests": counters.requests,
            "retries": counters.retries,
            "samples": counters.samples,
            "bytes": counters.bytes,
            "circuit_opens": services.upstream.circuit_opens(),
        }
        self._snapshot.circuit_open = int(services.upstream.circuit_state() != "closed")
        self._snapshot.warm = dataclasses.asdict(services.warming)
        self._snapshot.live = {
            "viewers": services.live.viewers,
            "pollers": len(services.live.pollers),
        }
        latest = services.monitor.latest if services.monitor is not None else None
        if latest is not None:
            self._snapshot.monitor = dict(latest.values)
            self._snapshot.alert_levels = {r: level_number(v) for r, v in latest.levels.items()}
        try:
            counts = await services.chunks.counts()
            database_bytes = await services.health.size_bytes()
            files, file_bytes = await services.files.usage()
        except StorageError as exc:
            log.warning("store gauges skipped: %s", exc)
            return
        store, rechecks = services.reader.store_counters(), services.rechecks
        self._snapshot.store = {
            "chunks": counts["chunks"],
            "final_chunks": counts["final"],
            "provisional_chunks": counts["provisional"],
            "damaged_objects": store.damaged,
            "late_samples_repaired": store.repaired,
            "rechecked_periods": rechecks.periods,
            "recheck_requests": rechecks.requests,
            "chunk_bytes": counts["bytes"],
            "chunk_samples": counts["samples"],
            "database_bytes": database_bytes,
            "files": files,
            "file_bytes": file_bytes,
        }

    def render(self) -> bytes:
        return generate_latest(self.registry)


def routes(metrics: Metrics) -> list[Route]:
    async def scrape(request: Request) -> Response:
        await metrics.refresh(services_of(request))
        return Response(metrics.render(), media_type=TEXT_TYPE)

    return [Route("/metrics", scrape, methods=["GET"])]
