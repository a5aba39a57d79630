"""Background jobs' options: the worker, retries, retention and webhooks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

import msgspec

from tsgate.options import DAY_S, AtLeastOne, Count, PositiveSeconds, Seconds


@dataclass(frozen=True)
class JobSettings:
    secret: str | None = field(default=None, repr=False)  # seals job tokens, signs webhooks
    inline_worker: bool = True  # run a worker inside the server (embedded default)
    # `tsgate serve` runs that worker as this many child processes (`tsgate worker`), so
    # jobs never hold a server's event loop; 0: one inside each server process
    job_processes: Annotated[int, msgspec.Meta(ge=0, le=64)] = 1
    job_lease_s: PositiveSeconds = 30.0
    job_heartbeat_s: PositiveSeconds = 5.0
    job_poll_s: PositiveSeconds = 1.0
    job_retry_base_s: Seconds = 2.0
    job_retry_factor: Annotated[float, msgspec.Meta(ge=1, le=100)] = 2.0
    job_retry_cap_s: Seconds = 300.0
    job_max_attempts: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 5
    job_retention_s: Seconds = 7 * DAY_S
    max_open_jobs_per_caller: Count = 20  # queued, running or failed jobs per token; 0: no limit
    webhook_allow_private: bool = False
    webhook_retries: Annotated[int, msgspec.Meta(ge=0, le=100)] = 3
    webhook_timeout_s: PositiveSeconds = 10.0
    webhook_concurrency: AtLeastOne = 16  # webhooks sent at once per worker
    webhook_per_host: AtLeastOne = 2  # of which at most this many to one host
