"""The sampler: every few minutes (in the maintenance pass) the sizes of the stores, their
growth per day, the share of server errors, the job backlog and the breaker's state are
written to the history; the alert rules are evaluated on each sample, and every change
of an alert's level is logged, recorded and shown (``/api/health``, ``/api/stats``,
``/metrics``) — a level that holds is told once, not on every sample.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from tsgate.ops.alerts import Alerts
from tsgate.ops.rules import (
    CRITICAL,
    LEVELS,
    OK,
    WARNING,
    AlertEvent,
    Change,
    Rule,
    evaluate,
)

log = logging.getLogger("tsgate.monitor")

DAY_MS = 86_400_000
MIN_GROWTH_SPAN_MS = 3_600_000  # growth per day is extrapolated from at least an hour
MIN_ERROR_WINDOW_MS = 60_000
GROWTH = {
    "database_bytes": "database_growth_bytes_per_day",
    "store_bytes": "store_growth_bytes_per_day",
}
METRICS = frozenset(
    {
        "database_bytes",
        "store_bytes",
        "chunk_bytes",
        "job_result_bytes",
        "file_bytes",
        "chunks",
        "job_results",
        "files",
        *GROWTH.values(),
        "requests",
        "request_error_ratio",
        "job_backlog",
        "oldest_queued_job_s",
        "upstream_circuit_open",
    }
)
_LOG_LEVEL = {OK: logging.INFO, WARNING: logging.WARNING, CRITICAL: logging.ERROR}


@dataclass(frozen=True)
class StoreSizes:
    database_bytes: int
    chunks: int
    chunk_bytes: int
    job_results: int
    job_result_bytes: int
    files: int = 0
    file_bytes: int = 0

    @property
    def store_bytes(self) -> int:
        return self.chunk_bytes + self.job_result_bytes + self.file_bytes


class MonitorHistory(Protocol):
    async def record(self, at_ms: int, values: Mapping[str, float]) -> None: ...

    async def trim(self, before_ms: int) -> int: ...

    async def value_before(self, metric: str, at_ms: int) -> tuple[int, float] | None: ...

    async def value_after(self, metric: str, at_ms: int) -> tuple[int, float] | None: ...

    async def levels(self) -> dict[str, str]: ...

    async def add_events(self, events: Sequence[AlertEvent]) -> None: ...

    async def request_errors(self, since_ms: int) -> tuple[int, int]: ...

    async def job_backlog(self) -> tuple[int, int | None]: ...


class MonitorLog(Protocol):
    """What the monitoring API reads back: the sampled history and the alert events."""

    async def history(
        self, since_ms: int, until_ms: int, metrics: Sequence[str] | None = None
    ) -> dict[str, list[tuple[int, float]]]: ...

    async def levels(self) -> dict[str, str]:
        """The level each rule was last changed to."""
        ...

    async def events(self, since_ms: int, limit: int = 500) -> list[AlertEvent]: ...


@dataclass(frozen=True)
class Sample:
    at_ms: int
    values: dict[str, float]
    levels: dict[str, str]
    changes: list[Change]


class MonitorView(Protocol):
    """The last monitoring sample and the rules it was judged by (:class:`Monitor`)."""

    @property
    def latest(self) -> Sample | None: ...

    @property
    def rules(self) -> tuple[Rule, ...]: ...


@dataclass
class Monitor:
    history: MonitorHistory
    alerts: Alerts
    rules: tuple[Rule, ...]
    breaker_open: Callable[[], bool]
    retention_days: float = 30.0
    window_ms: int = 300_000  # the span request errors are counted over
    latest: Sample | None = field(default=None, init=False)

    async def sample(self, now_ms: int, sizes: StoreSizes) -> Sample:
        values = await self._values(now_ms, sizes)
        await self.history.record(now_ms, {k: v for k, v in values.items() if v is not None})
        levels, changes, messages = evaluate(self.rules, values, await self.history.levels())
        await self.history.add_events(
            [AlertEvent(now_ms, c.rule, c.previous, c.level, c.value, c.message) for c in changes]
        )
        for change in changes:
            log.log(_LOG_LEVEL[change.level], "alert %s: %s", change.rule, change.message)
        self.alerts.replace("monitor", messages, log_new=False)
        await self.history.trim(now_ms - int(self.retention_days * DAY_MS))
        measured = {k: v for k, v in values.items() if v is not None}
        self.latest = Sample(now_ms, measured, levels, changes)
        return self.latest

    async def _values(self, now_ms: int, sizes: StoreSizes) -> dict[str, float | None]:
        values: dict[str, float | None] = {
            "database_bytes": sizes.database_bytes,
            "store_bytes": sizes.store_bytes,
            "chunk_bytes": sizes.chunk_bytes,
            "job_result_bytes": sizes.job_result_bytes,
            "file_bytes": sizes.file_bytes,
            "chunks": sizes.chunks,
            "job_results": sizes.job_results,
            "files": sizes.files,
        }
        for metric, growth in GROWTH.items():
            values[growth] = await self._growth(metric, float(values[metric] or 0), now_ms)
        requests, errors = await self.history.request_errors(
            now_ms - max(self.window_ms, MIN_ERROR_WINDOW_MS)
        )
        values["requests"] = requests
        values["request_error_ratio"] = errors / requests if requests else 0.0
        queued, oldest_ms = await self.history.job_backlog()
        values["job_backlog"] = queued
        values["oldest_queued_job_s"] = (
            0.0 if oldest_ms is None else max(0, now_ms - oldest_ms) / 1000
        )
        values["upstream_circuit_open"] = 1.0 if self.breaker_open() else 0.0
        return values

    async def _growth(self, metric: str, value: float, now_ms: int) -> float | None:
        """Bytes per day against the sample about a day ago (or the oldest within the
        day, when at least an hour old); ``None`` before there is such a sample."""
        before = await self.history.value_before(metric, now_ms - DAY_MS)
        if before is None:
            before = await self.history.value_after(metric, now_ms - DAY_MS)
        if before is None or now_ms - before[0] < MIN_GROWTH_SPAN_MS:
            return None
        at_ms, old = before
        return (value - old) * DAY_MS / (now_ms - at_ms)


def level_number(level: str) -> int:
    """0, 1, 2 for ok, warning, critical (the ``/metrics`` gauge)."""
    return LEVELS.index(level)
