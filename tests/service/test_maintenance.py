"""Maintenance: stats retention, size alerts in stats and health, the scheduler, the CLI."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import httpx
import pytest

from tests.asgi import api_client, sim_client
from tsgate.cli import main
from tsgate.ops.maintenance import size_alerts
from tsgate.ops.stats import RequestStat
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator
from tsgate.wiring import open_services

pytestmark = pytest.mark.anyio
DAY_MS = 86_400_000
NOW_MS = 1_760_000_000_000


def stat(at_ms: int) -> RequestStat:
    return RequestStat(at_ms, "/api/x", 200, 1.0, 10, 100, "HIT:MEMORY")


async def test_trims_stats_past_retention_and_measures(settings: Settings) -> None:
    conf = dataclasses.replace(settings, maintenance_interval_s=0)
    async with open_services(conf, upstream=sim_client(create_simulator(seed=1))) as services:
        await services.database.stats.record(
            [stat(NOW_MS - 31 * DAY_MS), stat(NOW_MS - 29 * DAY_MS)]
        )
        services.recorder.add(stat(NOW_MS - 40 * DAY_MS))  # buffered: flushed, then trimmed
        report = await services.maintenance.run(NOW_MS)
        left = await services.database.stats.summary(0)
    assert report.stats_trimmed == 2 and left["count"] == 1
    assert report.database_bytes > 0 and report.chunks == 0 and report.alerts == []


def test_size_alerts_table() -> None:
    assert size_alerts(100, 100, 0, 0) == []
    assert size_alerts(100, 100, 100, 100) == []
    both = size_alerts(101, 202, 100, 200)
    assert len(both) == 2 and "TSGATE_ALERT_DB_BYTES=100" in both[0]
    assert "TSGATE_ALERT_STORE_BYTES=200" in both[1]


async def test_alerts_show_in_stats_and_degrade_health(settings: Settings) -> None:
    conf = dataclasses.replace(settings, alert_db_bytes=1, maintenance_interval_s=0.05)
    async with api_client(conf, create_simulator(seed=1)) as api:
        body = await _eventually_alerted(api)
        health = (await api.get("/api/health")).json()
    assert "TSGATE_ALERT_DB_BYTES=1" in body["alerts"][0]
    assert health["status"] == "degraded" and health["alerts"] == body["alerts"]
    assert all(check["status"] == "ok" for check in health["checks"].values())


async def _eventually_alerted(api: httpx.AsyncClient) -> dict[str, object]:
    for _ in range(100):
        body: dict[str, object] = (await api.get("/api/stats")).json()
        if body["alerts"]:
            return body
        await asyncio.sleep(0.02)
    raise AssertionError("no alert was raised")


async def test_scheduler_trims_in_the_background_and_stops(settings: Settings) -> None:
    conf = dataclasses.replace(settings, maintenance_interval_s=0.05)
    sim = sim_client(create_simulator(seed=1))
    async with open_services(conf, upstream=sim, clock_ms=lambda: NOW_MS) as services:
        await services.database.stats.record([stat(NOW_MS - 31 * DAY_MS)])
        for _ in range(100):
            if (await services.database.stats.summary(0))["count"] == 0:
                break
            await asyncio.sleep(0.02)
        assert (await services.database.stats.summary(0))["count"] == 0


def test_cleanup_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("TSGATE_DATABASE_URL", f"sqlite:///{tmp_path}/t.db")
    monkeypatch.setenv("TSGATE_OBJECTS_URL", f"file://{tmp_path}/objects")
    monkeypatch.setenv("TSGATE_ALERT_DB_BYTES", "1")
    assert main(["cleanup"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["stats_trimmed"] == 0 and report["database_bytes"] > 0
    assert "TSGATE_ALERT_DB_BYTES=1" in report["alerts"][0]


async def test_jobs_and_their_results_are_counted_then_gone_after_the_retention(
    settings: Settings,
) -> None:
    from tests.clock import NOW, OCT1, Clock
    from tsgate.jobs.model import JobState, normalise
    from tsgate.ops.maintenance import MaintenanceOptions

    clock = Clock(NOW)
    sim = create_simulator(seed=3, now_ms=clock)
    conf = dataclasses.replace(
        settings, inline_worker=False, maintenance_interval_s=0, job_retention_s=3600
    )
    async with open_services(conf, upstream=sim_client(sim), clock_ms=clock) as services:
        names = [p.name for p in sim.sites[2].collecting[:2]]

        async def export(days: int) -> str:
            request = normalise(
                kind="export",
                site="elm_school",
                points=names,
                start_ms=OCT1,
                end_ms=OCT1 + days * DAY_MS,
                format="csv",
            )
            job, _ = await services.jobs.submit(request, "t")
            return job.id

        done_id = await export(1)
        assert await services.worker.run_once()
        done = await services.jobs.store.get(done_id)
        assert done is not None and done.state is JobState.COMPLETED and done.result_key
        stored = await services.objects.get(done.result_key)
        assert stored is not None and len(stored) > 1000
        waiting_id = await export(2)  # queued, never run: not finished, never removed

        clock.ms += 3599_000  # within the retention: kept, and counted in the store size
        before = await services.maintenance.run(clock.ms)
        chunks = await services.database.chunks.counts()
        assert before.jobs_removed == 0
        assert (before.job_results, before.job_result_bytes) == (1, len(stored))
        assert before.store_bytes == before.chunk_bytes + len(stored)
        assert (before.chunks, before.chunk_bytes) == (chunks["chunks"], chunks["bytes"])
        # the store-size alert sees the results: one byte under chunks + results raises it
        limit = chunks["bytes"] + len(stored) - 1
        tight = dataclasses.replace(
            services.maintenance, options=MaintenanceOptions(alert_store_bytes=limit)
        )
        assert (await tight.run(clock.ms)).alerts == [
            f"object store size {limit + 1} B is over TSGATE_ALERT_STORE_BYTES={limit}"
        ]

        clock.ms += 2_000  # past it: the job row and its result object are gone
        after = await services.maintenance.run(clock.ms)
        assert after.jobs_removed == 1 and (after.job_results, after.job_result_bytes) == (0, 0)
        assert after.store_bytes == chunks["bytes"]
        assert await services.jobs.store.get(done_id) is None
        assert await services.objects.get(done.result_key) is None
        assert await services.jobs.store.get(waiting_id) is not None


async def test_closing_waits_for_the_pass_under_way_instead_of_cancelling_it(
    settings: Settings,
) -> None:
    from tsgate.ops.maintenance import MaintenanceScheduler

    class SlowFlush:
        """The recorder's flush, held open until the scheduler is being closed."""

        def __init__(self) -> None:
            self.started = asyncio.Event()
            self.release = asyncio.Event()
            self.finished = False

        async def flush(self) -> int:
            self.started.set()
            await self.release.wait()
            self.finished = True
            return 0

    # a database alert (any size is over 1 B) is raised by the last step of a pass
    conf = dataclasses.replace(settings, maintenance_interval_s=0, alert_db_bytes=1)
    async with open_services(conf, upstream=sim_client(create_simulator(seed=1))) as services:
        slow = SlowFlush()
        maintenance = dataclasses.replace(services.maintenance, recorder=slow)
        scheduler = MaintenanceScheduler(maintenance, 3600, lambda: NOW_MS)
        scheduler.start()
        await asyncio.wait_for(slow.started.wait(), 5)
        closing = asyncio.create_task(scheduler.aclose())
        await asyncio.sleep(0.05)
        assert not closing.done()  # it waits for the pass...
        assert services.alerts.current() == []
        slow.release.set()
        await asyncio.wait_for(closing, 5)
        alerts = services.alerts.current()
    assert slow.finished and "TSGATE_ALERT_DB_BYTES=1" in alerts[0]  # ...to its last step
