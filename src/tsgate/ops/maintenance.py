"""Housekeeping: re-check provisional data, trim old request statistics, delete jobs past
their retention with their result objects, expire unused saved charts (and delete their
attachments), keep the recently used ones cached, measure the stores, raise size alerts,
sample the monitoring history (with its alert rules, ``tsgate.ops.monitor``) and write the
daily report of each finished day.

:meth:`Maintenance.run` is one pass (``tsgate cleanup`` runs it once); inside the server a
:class:`MaintenanceScheduler` runs it every ``maintenance_interval_s``, and the due
re-checks of provisional periods every ``recheck_interval_s`` in between. It sees its
collaborators only through the small Protocols below; the composition root hands them in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from tsgate.background import Background
from tsgate.clock import wall_clock_ms
from tsgate.errors import TsgateError
from tsgate.ops.alerts import Alerts
from tsgate.ops.monitor import Sample, StoreSizes
from tsgate.series.recheck import RecheckReport
from tsgate.settings import Settings

log = logging.getLogger("tsgate.maintenance")

DAY_MS = 86_400_000
CLOSE_WAIT_S = 10.0  # how long closing waits for a pass under way before cancelling it


class PendingStats(Protocol):
    async def flush(self) -> int: ...


class StatsTable(Protocol):
    async def trim(self, before_ms: int) -> int: ...


class DatabaseSize(Protocol):
    async def size_bytes(self) -> int: ...


class ChunkTotals(Protocol):
    async def counts(self) -> Mapping[str, int]: ...


class JobRetention(Protocol):
    async def cleanup(self, now_ms: int) -> int:
        """Delete finished jobs past the retention and their results; how many."""
        ...

    async def stored_results(self) -> tuple[int, int]:
        """``(results, bytes)`` of the job results in the object store."""
        ...


class ChartExpiry(Protocol):
    async def expire(self, *, unused_since_ms: int) -> int:
        """Delete saved charts not opened since then; how many."""
        ...


class FileRetention(Protocol):
    async def cleanup(self) -> int:
        """Delete the attachments of saved charts that are gone; how many."""
        ...

    async def stored(self) -> tuple[int, int]:
        """``(files, bytes)`` of the user files in the object store."""
        ...


class MonitorSampler(Protocol):
    async def sample(self, now_ms: int, sizes: StoreSizes) -> Sample:
        """Record a sample of the metrics and evaluate the alert rules on it."""
        ...


class ChartWarming(Protocol):
    async def run(self, now_ms: int) -> int:
        """Cache what is missing of the recently used saved charts; how many charts."""
        ...


class DailyReporting(Protocol):
    async def run(self, now_ms: int) -> str | None:
        """Write the last finished day's report if it is not written yet; its day."""
        ...


class Rechecks(Protocol):
    async def run(self, now_ms: int) -> RecheckReport:
        """Read again the holes of provisional periods whose re-check is due."""
        ...


@dataclass(frozen=True)
class MaintenanceOptions:
    stats_retention_days: float = 30.0
    alert_db_bytes: int = 0
    alert_store_bytes: int = 0
    chart_ttl_s: float = 0.0  # 0: saved charts are kept

    @classmethod
    def of(cls, settings: Settings) -> MaintenanceOptions:
        return cls(
            settings.stats_retention_days,
            settings.alert_db_bytes,
            settings.alert_store_bytes,
            settings.chart_ttl_s,
        )


@dataclass(frozen=True)
class MaintenanceReport:
    at_ms: int
    stats_trimmed: int
    jobs_removed: int  # finished jobs past the retention, deleted with their results
    database_bytes: int
    store_bytes: int  # chunk objects the index knows of + job results left + user files
    chunks: int
    chunk_bytes: int
    job_results: int
    job_result_bytes: int
    charts_expired: int = 0  # saved charts unused for TSGATE_CHART_TTL_S, deleted
    files: int = 0
    file_bytes: int = 0
    files_removed: int = 0  # attachments of saved charts that are gone
    charts_warmed: int = 0  # recently used saved charts whose ranges are now cached
    daily_report: str | None = None  # the day whose report this pass wrote
    rechecks: RecheckReport | None = None
    alerts: list[str] = field(default_factory=list)
    alert_levels: dict[str, str] = field(default_factory=dict)  # rule -> ok|warning|critical


def size_alerts(
    database_bytes: int, store_bytes: int, db_limit: int, store_limit: int
) -> list[str]:
    alerts = []
    if 0 < db_limit < database_bytes:
        alerts.append(f"database size {database_bytes} B is over TSGATE_ALERT_DB_BYTES={db_limit}")
    if 0 < store_limit < store_bytes:
        alerts.append(
            f"object store size {store_bytes} B is over TSGATE_ALERT_STORE_BYTES={store_limit}"
        )
    return alerts


@dataclass(frozen=True)
class Maintenance:
    """One pass over what grows without bound; alerts replace the previous pass's."""

    recorder: PendingStats
    stats: StatsTable
    database: DatabaseSize
    chunks: ChunkTotals
    jobs: JobRetention
    alerts: Alerts
    charts: ChartExpiry | None = None
    rechecks: Rechecks | None = None
    files: FileRetention | None = None
    monitor: MonitorSampler | None = None
    warming: ChartWarming | None = None
    reports: DailyReporting | None = None
    options: MaintenanceOptions = MaintenanceOptions()

    async def measure(self) -> StoreSizes:
        """What the database and the object store hold now."""
        counts = await self.chunks.counts()
        results, result_bytes = await self.jobs.stored_results()
        files, file_bytes = await self.files.stored() if self.files is not None else (0, 0)
        return StoreSizes(
            database_bytes=await self.database.size_bytes(),
            chunks=counts["chunks"],
            chunk_bytes=counts["bytes"],
            job_results=results,
            job_result_bytes=result_bytes,
            files=files,
            file_bytes=file_bytes,
        )

    async def sample(self, now_ms: int) -> Sample | None:
        """One monitoring sample between full passes (requests buffered so far count)."""
        if self.monitor is None:
            return None
        await self.recorder.flush()
        return await self.monitor.sample(now_ms, await self.measure())

    async def run(self, now_ms: int) -> MaintenanceReport:
        rechecked = await self.rechecks.run(now_ms) if self.rechecks is not None else None
        await self.recorder.flush()
        retention_ms = int(self.options.stats_retention_days * DAY_MS)
        trimmed = await self.stats.trim(now_ms - retention_ms)
        removed = await self.jobs.cleanup(now_ms)
        charts_expired = 0
        if self.charts is not None and self.options.chart_ttl_s > 0:
            unused_since_ms = now_ms - int(self.options.chart_ttl_s * 1000)
            charts_expired = await self.charts.expire(unused_since_ms=unused_since_ms)
        files_removed = await self.files.cleanup() if self.files is not None else 0
        # after the expiry: an expired chart is not fetched again
        warmed = await self.warming.run(now_ms) if self.warming is not None else 0
        # measured after the deletions: what the stores hold now
        sizes = await self.measure()
        database_bytes, store_bytes = sizes.database_bytes, sizes.store_bytes
        alerts = size_alerts(
            database_bytes, store_bytes, self.options.alert_db_bytes, self.options.alert_store_bytes
        )
        self.alerts.replace("maintenance", alerts)
        sampled = await self.monitor.sample(now_ms, sizes) if self.monitor is not None else None
        reported = await self.reports.run(now_ms) if self.reports is not None else None
        report = MaintenanceReport(
            at_ms=now_ms,
            stats_trimmed=trimmed,
            jobs_removed=removed,
            database_bytes=database_bytes,
            store_bytes=store_bytes,
            chunks=sizes.chunks,
            chunk_bytes=sizes.chunk_bytes,
            job_results=sizes.job_results,
            job_result_bytes=sizes.job_result_bytes,
            charts_expired=charts_expired,
            files=sizes.files,
            file_bytes=sizes.file_bytes,
            files_removed=files_removed,
            charts_warmed=warmed,
            daily_report=reported,
            rechecks=rechecked,
            alerts=alerts,
            alert_levels=dict(sampled.levels) if sampled is not None else {},
        )
        log.info(
            "maintenance: trimmed %d stats rows, removed %d jobs; database %d B, "
            "store %d B (%d chunks, %d job results)",
            trimmed,
            removed,
            database_bytes,
            store_bytes,
            report.chunks,
            report.job_results,
        )
        return report


class MaintenanceScheduler:
    """Runs :meth:`Maintenance.run` at start and then every ``interval_s``, the due
    re-checks every ``recheck_s`` and a monitoring sample every ``sample_s`` in between
    (0 turns any of them off)."""

    def __init__(
        self,
        maintenance: Maintenance,
        interval_s: float,
        clock_ms: Callable[[], int] = wall_clock_ms,
        *,
        recheck_s: float = 0.0,
        sample_s: float = 0.0,
    ) -> None:
        self._maintenance = maintenance
        self._interval_s = interval_s
        self._recheck_s = recheck_s if maintenance.rechecks is not None else 0.0
        self._sample_s = sample_s if maintenance.monitor is not None else 0.0
        self._clock_ms = clock_ms
        self._task = Background("tsgate-maintenance")
        self._stop = asyncio.Event()

    def start(self) -> None:
        if self._interval_s > 0 or self._recheck_s > 0 or self._sample_s > 0:
            self._task.start(self._run)

    async def aclose(self) -> None:
        """Stop after the pass under way: a pass cancelled mid-query could leave a
        database connection to be closed after the event loop is gone."""
        self._stop.set()
        await self._task.stop(grace_s=CLOSE_WAIT_S)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        never = float("inf")
        next_full = loop.time() if self._interval_s > 0 else never
        next_recheck = loop.time() + self._recheck_s if self._recheck_s > 0 else never
        next_sample = loop.time() + self._sample_s if self._sample_s > 0 else never
        rechecks = self._maintenance.rechecks
        while not self._stop.is_set():
            try:
                if loop.time() >= next_full:
                    next_full = loop.time() + self._interval_s
                    await self._maintenance.run(self._clock_ms())  # re-checks and a sample too
                    if self._recheck_s > 0:
                        next_recheck = min(next_recheck, loop.time() + self._recheck_s)
                    if self._sample_s > 0:
                        next_sample = min(next_sample, loop.time() + self._sample_s)
                if rechecks is not None and loop.time() >= next_recheck:
                    next_recheck = loop.time() + self._recheck_s
                    await rechecks.run(self._clock_ms())
                if loop.time() >= next_sample:
                    next_sample = loop.time() + self._sample_s
                    await self._maintenance.sample(self._clock_ms())
            except TsgateError as exc:
                log.warning("maintenance failed, will retry: %s", exc)
            with contextlib.suppress(TimeoutError):
                wait_s = max(0.05, min(next_full, next_recheck, next_sample) - loop.time())
                await asyncio.wait_for(self._stop.wait(), wait_s)
