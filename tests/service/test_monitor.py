"""Monitoring with history: sizes and error rates driven over thresholds with a test
clock raise an alert once (logged, recorded, in health, stats and /metrics) and clear it;
growth per day comes from the history; the history is trimmed after its retention."""

from __future__ import annotations

import dataclasses
import logging

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from tests.asgi import sim_client
from tsgate.api.files import object_key
from tsgate.app import create_app
from tsgate.database import RequestStat, StoredFile
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator
from tsgate.wiring import OpenedServices

pytestmark = pytest.mark.anyio
NOW = 1_763_208_000_000
MIN_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000


def requests(at_ms: int, ok: int, failed: int) -> list[RequestStat]:
    def one(status: int) -> RequestStat:
        return RequestStat(at_ms, "/api/timeseries", status, 1.0, 0, 10, "HIT:MEMORY")

    return [one(200)] * ok + [one(503)] * failed


async def test_alerts_raise_once_and_clear(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    conf = dataclasses.replace(
        settings,
        maintenance_interval_s=0,
        monitor_interval_s=0,
        alert_rules="request_error_ratio=0.1/0.5,file_bytes=1000/-",
    )
    now = [NOW]
    app = create_app(conf, upstream=sim_client(create_simulator(seed=1)), clock_ms=lambda: now[0])
    caplog.set_level(logging.INFO, logger="tsgate.monitor")
    async with app.router.lifespan_context(app) as state:
        svc: OpenedServices = state["services"]

        async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = dict(state)
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as api:
            maintenance, db = svc.maintenance, svc.database

            await db.stats.record(requests(now[0] - 10_000, ok=9, failed=1))
            quiet = await maintenance.sample(now[0])
            assert quiet is not None and quiet.levels == {
                "request_error_ratio": "ok",
                "file_bytes": "ok",
            }

            # 3 failures in 10: over warning; then 6 in 10: critical
            now[0] += 5 * MIN_MS
            await db.stats.record(requests(now[0] - 10_000, ok=7, failed=3))
            warned = await maintenance.sample(now[0])
            assert warned is not None and warned.levels["request_error_ratio"] == "warning"
            assert warned.values["request_error_ratio"] == pytest.approx(0.3)
            health = (await api.get("/api/health")).json()
            assert health["status"] == "degraded"
            assert any("warning: request_error_ratio is 0.3" in a for a in health["alerts"])

            # held over several samples: told once
            for _ in range(3):
                now[0] += MIN_MS
                await db.stats.record(requests(now[0] - 1000, ok=7, failed=3))
                await maintenance.sample(now[0])
            now[0] += MIN_MS
            await db.stats.record(requests(now[0] - 1000, ok=0, failed=40))
            critical = await maintenance.sample(now[0])
            assert critical is not None and critical.levels["request_error_ratio"] == "critical"
            scrape = (await api.get("/metrics")).text
            assert 'tsgate_alert_level{rule="request_error_ratio"} 2.0' in scrape
            stats = (await api.get("/api/stats")).json()
            assert stats["monitor"]["levels"]["request_error_ratio"] == "critical"

            # the errors stop: once the window has passed the alert clears
            now[0] += 10 * MIN_MS
            await db.stats.record(requests(now[0] - 1000, ok=50, failed=0))
            cleared = await maintenance.sample(now[0])
            assert cleared is not None and cleared.levels["request_error_ratio"] == "ok"
            health = (await api.get("/api/health")).json()
            assert health["status"] == "healthy" and health["alerts"] == []

            # a store size over its threshold: files count in it
            await svc.objects.put(object_key("a" * 24), b"x" * 2000)
            await db.files.insert(_file("a" * 24, 2000))
            now[0] += MIN_MS
            full = await maintenance.sample(now[0])
            assert full is not None and full.levels["file_bytes"] == "warning"

            window = {"start": NOW - 1, "end": now[0] + 1}
            monitor = (await api.get("/api/monitor", params=window)).json()
    events = [(e["rule"], e["previous"], e["level"]) for e in monitor["events"]]
    assert events == [
        ("request_error_ratio", "ok", "warning"),
        ("request_error_ratio", "warning", "critical"),
        ("request_error_ratio", "critical", "ok"),
        ("file_bytes", "ok", "warning"),
    ]
    told = [r for r in caplog.records if r.name == "tsgate.monitor"]
    assert [r.levelname for r in told] == ["WARNING", "ERROR", "INFO", "WARNING"]
    ratio = monitor["metrics"]["request_error_ratio"]
    assert len(ratio["t"]) == 8 and ratio["v"][-1] == 0.0
    assert monitor["levels"] == {"request_error_ratio": "ok", "file_bytes": "warning"}
    assert monitor["metrics"]["file_bytes"]["v"][-1] == 2000.0


def _file(file_id: str, size: int) -> StoredFile:
    return StoredFile(
        file_id, "s", None, None, "f.csv", "text/csv", size, "0" * 64, object_key(file_id), NOW
    )


async def test_growth_per_day_from_the_history_and_its_retention(settings: Settings) -> None:
    from tsgate.wiring import open_services

    conf = dataclasses.replace(
        settings,
        maintenance_interval_s=0,
        monitor_interval_s=0,
        monitor_retention_days=2,
        alert_rules="store_growth_bytes_per_day=10000/100000",
    )
    async with open_services(conf, upstream=sim_client(create_simulator(seed=1))) as svc:
        first = await svc.maintenance.sample(NOW)
        assert first is not None and "store_growth_bytes_per_day" not in first.values
        # 1,000 bytes of files in half an hour: too short a span to extrapolate
        await _add_file(svc, "a" * 24, 1000)
        early = await svc.maintenance.sample(NOW + HOUR_MS // 2)
        assert early is not None and "store_growth_bytes_per_day" not in early.values
        # 2,000 bytes in two hours: 24,000 bytes a day, over the warning
        await _add_file(svc, "b" * 24, 1000)
        later = await svc.maintenance.sample(NOW + 2 * HOUR_MS)
        assert later is not None
        assert later.values["store_growth_bytes_per_day"] == pytest.approx(24_000)
        assert later.levels["store_growth_bytes_per_day"] == "warning"
        # a day on, against the sample a day before
        day = await svc.maintenance.sample(NOW + DAY_MS + 2 * HOUR_MS)
        assert day is not None and day.values["store_growth_bytes_per_day"] == pytest.approx(0)
        assert day.levels["store_growth_bytes_per_day"] == "ok"
        # three days on, everything older than the 2-day retention is gone
        await svc.maintenance.sample(NOW + 3 * DAY_MS)
        kept = await svc.database.monitor.history(0, NOW + 4 * DAY_MS, ["store_bytes"])
        events = await svc.database.monitor.events(0)
    assert [t for t, _ in kept["store_bytes"]] == [
        NOW + DAY_MS + 2 * HOUR_MS,
        NOW + 3 * DAY_MS,
    ]
    assert [e.level for e in events] == ["ok"]  # the warning's event is past the retention


async def _add_file(svc: OpenedServices, file_id: str, size: int) -> None:
    await svc.objects.put(object_key(file_id), b"x" * size)
    await svc.database.files.insert(_file(file_id, size))


async def test_the_monitor_endpoint_refuses_bad_parameters(settings: Settings) -> None:
    from tests.asgi import api_client

    async with api_client(settings, create_simulator(seed=1)) as api:
        answers = [
            await api.get("/api/monitor", params={"metrics": "disk_bytes"}),
            await api.get("/api/monitor", params={"max_points": "1"}),
            await api.get("/api/monitor", params={"start": "2025-01-02", "end": "2025-01-01"}),
            await api.get("/api/monitor", params={"start": "yesterday"}),
        ]
        fine = await api.get("/api/monitor", params={"metrics": "database_bytes"})
    assert [a.status_code for a in answers] == [400] * 4
    assert [a.json()["param"] for a in answers] == ["metrics", "max_points", "end", "start"]
    assert fine.status_code == 200 and set(fine.json()["metrics"]) <= {"database_bytes"}
