"""Prometheus metrics on a registry of this app's own (never the process-global one).

Request metrics are recorded by the telemetry middleware as responses finish; what other
parts count themselves (upstream calls, the chunk store) is read when ``/metrics`` is
scraped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tsgate.api.services import services_of
from tsgate.errors import StorageError
from tsgate.wiring import Services

log = logging.getLogger("tsgate.metrics")
TEXT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _Snapshot(Collector):
    """Counts owned elsewhere, copied in at scrape time."""

    def __init__(self) -> None:
        self.upstream: dict[str, int] = {}
        self.store: dict[str, int] = {}
        self.circuit_open = 0

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


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "tsgate_http_requests", "requests served", ["route", "method", "status"], registry=r
        )
        self.latency = Histogram(
            "tsgate_http_request_duration_seconds",
            "time to the last body byte",
            ["route"],
            buckets=_LATENCY_BUCKETS_S,
            registry=r,
        )
        self.bytes_out = Counter(
            "tsgate_http_response_bytes", "response body bytes sent", ["route"], registry=r
        )
        self.cache = Counter(
            "tsgate_cache_responses",
            "responses by X-Cache-Status and X-Cache-Source",
            ["status", "source"],
            registry=r,
        )
        self.samples = Counter("tsgate_samples_served", "samples in responses", registry=r)
        self._snapshot = _Snapshot()
        r.register(self._snapshot)
        self._routes: dict[str, tuple[Histogram, Counter]] = {}
        self._counts: dict[tuple[str, str, int], Counter] = {}

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
        # labelled children are looked up once per label set: .labels() is the costly part
        per_route = self._routes.get(route)
        if per_route is None:
            per_route = self._routes[route] = (
                self.latency.labels(route),
                self.bytes_out.labels(route),
            )
        count = self._counts.get((route, method, status))
        if count is None:
            count = self._counts[(route, method, status)] = self.requests.labels(
                route, method, str(status)
            )
        count.inc()
        per_route[0].observe(duration_s)
        per_route[1].inc(bytes_out)
        if samples:
            self.samples.inc(samples)
        if cache_status:
            self.cache.labels(cache_status, cache_source or "").inc()

    async def refresh(self, services: Services) -> None:
        counters = services.upstream.counters
        self._snapshot.upstream = {
            "requests": counters.requests,
            "retries": counters.retries,
            "samples": counters.samples,
            "bytes": counters.bytes,
            "circuit_opens": services.upstream.breaker.opens,
        }
        self._snapshot.circuit_open = int(services.upstream.breaker.state != "closed")
        try:
            counts = await services.database.chunks.counts()
            database_bytes = await services.database.size_bytes()
        except StorageError as exc:
            log.warning("store gauges skipped: %s", exc)
            return
        self._snapshot.store = {
            "chunks": counts["chunks"],
            "sealed_chunks": counts["sealed"],
            "chunk_bytes": counts["bytes"],
            "chunk_samples": counts["samples"],
            "database_bytes": database_bytes,
        }

    def render(self) -> bytes:
        return generate_latest(self.registry)


def routes(metrics: Metrics) -> list[Route]:
    async def scrape(request: Request) -> Response:
        await metrics.refresh(services_of(request))
        return Response(metrics.render(), media_type=TEXT_TYPE)

    return [Route("/metrics", scrape, methods=["GET"])]
