"""The upstream client's options (``TSGATE_UPSTREAM_*``, ``TSGATE_BREAKER_*``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import msgspec

from tsgate.options import AtLeastOne, Count, PositiveSeconds, Seconds


@dataclass(frozen=True)
class UpstreamSettings:
    upstream_url: str = "sim://?seed=1"
    # a server-side token used when a request brings none (demo / single-tenant); never logged
    upstream_token: str | None = field(default=None, repr=False)
    upstream_timeout_s: PositiveSeconds = 60.0
    upstream_concurrency: Annotated[int, msgspec.Meta(ge=1, le=1024)] = 8
    upstream_retries: Annotated[int, msgspec.Meta(ge=0, le=100)] = 4
    upstream_backoff_s: Seconds = 0.5
    upstream_backoff_cap_s: Seconds = 10.0
    upstream_page_size: AtLeastOne = 50000
    # the request planner's cost model until measured: upstream's latency per request and
    # its transfer time per sample; one request carries at most about request_samples
    upstream_latency_ms: Annotated[float, msgspec.Meta(ge=0)] = 200.0
    upstream_sample_us: Annotated[float, msgspec.Meta(ge=0)] = 100.0
    upstream_request_samples: AtLeastOne = 20_000
    upstream_measure_costs: bool = True  # false: plan by the two figures above only
    breaker_failures: Count = 5  # consecutive failed upstream calls that open the circuit
    breaker_reset_s: PositiveSeconds = 30.0  # how long the circuit stays open before a trial call
