"""Maintenance: stats retention, size alerts in stats and health, the scheduler, the CLI."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path

import httpx
import pytest

from tests.asgi import api_client, sim_client
from tsgate.__main__ import main
from tsgate.database import RequestStat
from tsgate.maintenance import run_maintenance, size_alerts
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
        report = await run_maintenance(services, NOW_MS)
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
