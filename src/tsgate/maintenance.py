"""Housekeeping: re-check provisional data, trim old request statistics, expire unused
saved charts, measure the
stores, raise size alerts.

``run_maintenance`` is one pass (``tsgate cleanup`` runs it once); inside the server a
:class:`MaintenanceScheduler` runs it every ``maintenance_interval_s`` and the due
re-checks of provisional periods every ``recheck_interval_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tsgate.errors import TsgateError
from tsgate.series.recheck import RecheckReport, recheck_due

if TYPE_CHECKING:
    from tsgate.wiring import Services

log = logging.getLogger("tsgate.maintenance")

DAY_MS = 86_400_000


@dataclass(frozen=True)
class MaintenanceReport:
    at_ms: int
    stats_trimmed: int
    database_bytes: int
    store_bytes: int  # bytes of the chunk objects the index knows of
    chunks: int
    rechecks: RecheckReport | None = None
    alerts: list[str] = field(default_factory=list)
    charts_expired: int = 0  # saved charts unused for TSGATE_CHART_TTL_S, deleted


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


async def run_maintenance(services: Services, now_ms: int) -> MaintenanceReport:
    """One maintenance pass at ``now_ms``; alerts replace the previous pass's."""
    settings = services.settings
    rechecked = await run_rechecks(services, now_ms)
    await services.recorder.flush()
    retention_ms = int(settings.stats_retention_days * DAY_MS)
    trimmed = await services.database.stats.trim(now_ms - retention_ms)
    charts_expired = 0
    if settings.chart_ttl_s > 0:
        unused_since_ms = now_ms - int(settings.chart_ttl_s * 1000)
        charts_expired = await services.database.charts.expire(unused_since_ms=unused_since_ms)
    database_bytes = await services.database.size_bytes()
    counts = await services.database.chunks.counts()
    alerts = size_alerts(
        database_bytes, counts["bytes"], settings.alert_db_bytes, settings.alert_store_bytes
    )
    services.alerts.replace("maintenance", alerts)
    report = MaintenanceReport(
        at_ms=now_ms,
        stats_trimmed=trimmed,
        database_bytes=database_bytes,
        store_bytes=counts["bytes"],
        chunks=counts["chunks"],
        rechecks=rechecked,
        alerts=alerts,
        charts_expired=charts_expired,
    )
    log.info(
        "maintenance: trimmed %d stats rows; database %d B, store %d B in %d chunks",
        trimmed,
        database_bytes,
        report.store_bytes,
        report.chunks,
    )
    return report


async def run_rechecks(services: Services, now_ms: int) -> RecheckReport:
    """Read again the holes of provisional periods whose re-check is due (with the
    service's upstream token; without one, due periods are re-checked by the next read
    that touches them)."""
    return await recheck_due(
        services.reader,
        services.rechecks,
        token=services.settings.upstream_token or "",
        now_ms=now_ms,
    )


def wall_clock_ms() -> int:
    return int(time.time() * 1000)


class MaintenanceScheduler:
    """Runs :func:`run_maintenance` at start and then every ``interval_s``, and the due
    re-checks every ``recheck_s`` in between (0 turns either off)."""

    def __init__(
        self,
        services: Services,
        interval_s: float,
        clock_ms: Callable[[], int] = wall_clock_ms,
        *,
        recheck_s: float = 0.0,
    ) -> None:
        self._services = services
        self._interval_s = interval_s
        self._recheck_s = recheck_s
        self._clock_ms = clock_ms
        self._task: asyncio.Task[None] | None = None
        self.last: MaintenanceReport | None = None

    def start(self) -> None:
        if self._task is None and (self._interval_s > 0 or self._recheck_s > 0):
            self._task = asyncio.create_task(self._run(), name="tsgate-maintenance")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        never = float("inf")
        next_full = loop.time() if self._interval_s > 0 else never
        next_recheck = loop.time() + self._recheck_s if self._recheck_s > 0 else never
        while True:
            try:
                if loop.time() >= next_full:
                    next_full = loop.time() + self._interval_s
                    self.last = await run_maintenance(self._services, self._clock_ms())
                    next_recheck = min(next_recheck, loop.time() + self._recheck_s)
                if loop.time() >= next_recheck:
                    next_recheck = loop.time() + self._recheck_s
                    await run_rechecks(self._services, self._clock_ms())
            except TsgateError as exc:
                log.warning("maintenance failed, will retry: %s", exc)
            await asyncio.sleep(max(0.05, min(next_full, next_recheck) - loop.time()))
