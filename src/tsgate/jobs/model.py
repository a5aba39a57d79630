"""Background jobs, the pure part: requests, ids, states, slicing and retry timing.

A job is a normalised request (kind, site, points, range, format…) run by a worker. Its
id is a hash of that request and the caller's scope, so the same request from the same
caller finds the same job. States::

    queued ──claim──▶ running ──▶ completed
      ▲                  │  ╲──▶ cancelled   (DELETE, checked between slices)
      │ backoff elapsed  ├──▶ failed ──(retry_at)──▶ claimable again
      └──────────────────┘  ╲──▶ dead      (attempts exhausted, or not retryable)

No I/O here: the SQL store, queue and runner live elsewhere.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from tsgate import backoff
from tsgate.core.extents import next_month
from tsgate.core.model import MS_PER_DAY
from tsgate.errors import BadParameter, RequestError, StorageError, UpstreamError
from tsgate.jobs.options import JobSettings


class JobKind(StrEnum):
    QUERY = "query"
    EXPORT = "export"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"  # will be retried after its backoff
    DEAD = "dead"  # retries exhausted or the error cannot succeed on retry
    CANCELLED = "cancelled"


TERMINAL = frozenset({JobState.COMPLETED, JobState.DEAD, JobState.CANCELLED})
FORMATS = ("csv", "json", "msgpack", "parquet")
PRIORITY_INTERACTIVE = 0  # queries: someone is waiting on a chart
PRIORITY_BULK = 10  # exports
MAX_POINTS = 500


@dataclass(frozen=True)
class JobRequest:
    """What to run, normalised so equal requests hash equally."""

    kind: JobKind
    site: str
    points: tuple[str, ...]
    start_ms: int
    end_ms: int
    format: str = "json"
    interval: str | None = None
    max_points: int | None = None
    notify_url: str | None = None
    agg: str | None = None
    layout: str | None = None
    tz: str | None = None  # a query's zone for calendar buckets (None: UTC)
    compare_ms: int | None = None  # a query's comparison offset (None: no comparison)

    @property
    def priority(self) -> int:
        return PRIORITY_INTERACTIVE if self.kind is JobKind.QUERY else PRIORITY_BULK

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "site": self.site,
            "points": list(self.points),
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "format": self.format,
            "interval": self.interval,
            "max_points": self.max_points,
            "notify_url": self.notify_url,
            "agg": self.agg,
            "layout": self.layout,
            # only when set, so that the ids of UTC requests stay what they were
            **({"tz": self.tz} if self.tz else {}),
            **({"compare_ms": self.compare_ms} if self.compare_ms else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> JobRequest:
        return cls(
            kind=JobKind(data["kind"]),
            site=data["site"],
            points=tuple(data["points"]),
            start_ms=int(data["start_ms"]),
            end_ms=int(data["end_ms"]),
            format=data.get("format") or "json",
            interval=data.get("interval"),
            max_points=data.get("max_points"),
            notify_url=data.get("notify_url"),
            agg=data.get("agg"),
            layout=data.get("layout"),
            tz=data.get("tz"),
            compare_ms=data.get("compare_ms"),
        )


def normalise(
    *,
    kind: str,
    site: str,
    points: Sequence[str],
    start_ms: int,
    end_ms: int,
    format: str | None = None,
    interval: str | None = None,
    max_points: int | None = None,
    notify_url: str | None = None,
    agg: str | None = None,
    layout: str | None = None,
    tz: str | None = None,
    compare_ms: int | None = None,
) -> JobRequest:
    """Validate a request; ``BadParameter`` names the field at fault."""
    if kind not in {k.value for k in JobKind}:
        raise BadParameter("kind", f"{kind!r} is not one of export, query")
    if not site or "/" in site:
        raise BadParameter("site", f"{site!r} is not a site name")
    # a query keeps the order (its chart's series order); an export's order is irrelevant
    kept = dict.fromkeys(p for p in points if p)
    names = tuple(kept) if kind == JobKind.QUERY else tuple(sorted(kept))
    if not names:
        raise BadParameter("points", "at least one point name is needed")
    if len(names) > MAX_POINTS:
        raise BadParameter("points", f"at most {MAX_POINTS} points per job")
    if end_ms <= start_ms:
        raise BadParameter("end", "must be after start")
    if format is not None and not isinstance(format, str):
        raise BadParameter("format", f"must be one of {', '.join(FORMATS)}")
    fmt = (format or "json").lower()
    if fmt not in FORMATS:
        raise BadParameter("format", f"{format!r} is not one of {', '.join(FORMATS)}")
    if kind == JobKind.QUERY:
        fmt = "json"  # a query's result is the chart JSON
    if max_points is not None and max_points < 1:
        raise BadParameter("max_points", "must be positive")
    if layout not in (None, "series", "columnar"):
        raise BadParameter("layout", f"{layout!r} is not one of series, columnar")
    return JobRequest(
        JobKind(kind),
        site,
        names,
        start_ms,
        end_ms,
        fmt,
        interval,
        max_points,
        notify_url,
        agg,
        layout,
        None if tz in (None, "UTC") else tz,
        compare_ms or None,
    )


def job_id(request: JobRequest, scope: str) -> str:
    """Stable id of ``request`` for the caller ``scope`` (a salted token hash)."""
    parts = request.to_json()
    parts.pop("notify_url")  # where to be told is not part of what is computed
    text = repr(sorted(parts.items())) + "|" + scope
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


MONTH_SLICE_MAX_POINTS = 100  # 100 points x a month of 5-minute samples: ~0.9 M


def slices(start_ms: int, end_ms: int, *, points: int) -> Iterator[tuple[int, int]]:
    """UTC calendar-month slices of the range, or UTC days for very many points.

    A whole settled month fetched in one slice is stored as one month chunk; smaller
    slices would write every day on its own and compact them afterwards. Day slices bound
    memory when a slice carries hundreds of points.
    """
    cursor = start_ms
    while cursor < end_ms:
        if points > MONTH_SLICE_MAX_POINTS:
            nxt = (cursor // MS_PER_DAY + 1) * MS_PER_DAY
        else:
            nxt = next_month(cursor)
        nxt = min(end_ms, nxt)
        yield cursor, nxt
        cursor = nxt


@dataclass(frozen=True)
class RetryPolicy:
    base_s: float = 2.0
    factor: float = 2.0
    cap_s: float = 300.0
    max_attempts: int = 5

    @classmethod
    def of(cls, jobs: JobSettings) -> RetryPolicy:
        return cls(
            jobs.job_retry_base_s,
            jobs.job_retry_factor,
            jobs.job_retry_cap_s,
            jobs.job_max_attempts,
        )

    def delay_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """Backoff before attempt ``attempt + 1``: exponential, capped, "equal jitter".

        Half the delay is fixed and half random, so retries spread out but never fire at
        once after a shared outage.
        """
        ceiling = backoff.ceiling_s(
            attempt - 1, base_s=self.base_s, cap_s=self.cap_s, factor=self.factor
        )
        return backoff.equal_jitter_s(ceiling, (rng or random).random())


def is_retryable(exc: BaseException) -> bool:
    """Upstream and storage failures may pass; a bad request will fail the same way again."""
    if isinstance(exc, RequestError):
        return False
    return isinstance(exc, UpstreamError | StorageError | OSError | TimeoutError)


@dataclass
class Job:
    """One job row as the application sees it."""

    id: str
    request: JobRequest
    scope: str
    state: JobState
    priority: int
    attempts: int = 0
    max_attempts: int = 5
    progress: float = 0.0
    samples_done: int = 0
    samples_total: int = 0
    error: str | None = None
    result_key: str | None = None
    result_size: int | None = None
    created_ms: int = 0
    updated_ms: int = 0
    started_ms: int | None = None
    finished_ms: int | None = None
    run_after_ms: int = 0
    lease_until_ms: int | None = None
    worker: str | None = None
    cancel_requested: bool = False
    # the webhook: None (no notify_url), armed, pending, sent or failed
    notify_state: str | None = None
    notify_attempts: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def to_json(self, base_url: str = "") -> dict[str, Any]:
        body: dict[str, Any] = {
            "jobId": self.id,
            "kind": self.request.kind.value,
            "status": self.state.value,
            "progress": round(self.progress, 2),
            "samplesDone": self.samples_done,
            # the samples expected; null until the running job has estimated them
            "samplesTotal": self.samples_total if self.samples_total or self.terminal else None,
            "attempts": self.attempts,
            "maxAttempts": self.max_attempts,
            "error": self.error,
            "format": self.request.format,
            "resultSize": self.result_size,
            "createdAt": self.created_ms,
            "startedAt": self.started_ms,
            "finishedAt": self.finished_ms,
            "statusUrl": f"{base_url}/api/jobs/{self.id}",
            "request": {k: v for k, v in self.request.to_json().items() if k != "notify_url"},
        }
        if self.state is JobState.COMPLETED:
            body["resultUrl"] = f"{base_url}/api/jobs/{self.id}/result"
        if self.notify_state is not None:
            body["webhook"] = {"state": self.notify_state, "attempts": self.notify_attempts}
        return body
