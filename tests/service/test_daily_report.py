"""The daily report, on a test clock: the maintenance pass writes each finished UTC day
once to the object store, and ``GET /api/monitor/report`` answers the same summary;
both against statistics computed here from the samples recorded."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as settings_of
from hypothesis import strategies as st

from tests.asgi import api_client, sim_client
from tests.clock import Clock
from tsgate.ops.report import daily_report
from tsgate.ops.rules import AlertEvent
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator
from tsgate.wire.ace import parse_time
from tsgate.wiring import open_services

pytestmark = pytest.mark.anyio
HOUR_MS = 3_600_000
DAY = parse_time("day", "2025-11-14T00:00:00")
STORE = [(DAY + h * HOUR_MS, 100.0 + 10 * h + (h % 3)) for h in range(24)]
ERRORS = [(DAY + h * HOUR_MS + 60_000, (h % 5) / 100) for h in range(0, 24, 2)]
EVENTS = [
    AlertEvent(DAY - HOUR_MS, "job_backlog", "ok", "critical", 5000.0, "backlog"),  # before
    AlertEvent(DAY + 5 * HOUR_MS, "store_bytes", "ok", "warning", 150.0, "store"),
    AlertEvent(DAY + 20 * HOUR_MS, "store_bytes", "warning", "ok", 99.0, "store ok"),
    AlertEvent(DAY + 25 * HOUR_MS, "store_bytes", "ok", "critical", 999.0, "tomorrow"),
]


def _expected(points: list[tuple[int, float]]) -> dict[str, float]:
    values = [v for _, v in points]
    return {
        "samples": len(values),
        "first": values[0],
        "last": values[-1],
        "min": min(values),
        "max": max(values),
        "mean": sum(values) / len(values),
        "change": values[-1] - values[0],
    }


async def test_each_finished_day_is_reported_once_and_served(settings: Settings) -> None:
    clock = Clock(DAY + 23 * HOUR_MS)
    sim = create_simulator(seed=1, now_ms=clock)
    conf = dataclasses.replace(settings, daily_report_objects=True, maintenance_interval_s=0)
    async with open_services(conf, upstream=sim_client(sim), clock_ms=clock) as services:
        history = services.database.monitor
        for at, value in STORE:
            await history.record(at, {"store_bytes": value})
        for at, value in ERRORS:
            await history.record(at, {"request_error_ratio": value})
        await history.add_events(EVENTS)
        reports = services.maintenance.reports
        assert reports is not None
        # the day under way is not reported: the pass writes the day before it
        assert await reports.run(clock.ms) == "2025-11-13"
        assert await services.objects.get("reports/daily/2025-11-14.json") is None

        clock.ms = DAY + 24 * HOUR_MS + 30 * 60_000
        done = await services.maintenance.run(clock.ms)
        assert done.daily_report == "2025-11-14"
        again = await services.maintenance.run(clock.ms + HOUR_MS)
        assert again.daily_report is None  # written once
        stored = await services.objects.get("reports/daily/2025-11-14.json")
    assert stored is not None
    report = json.loads(stored)
    assert report["day"] == "2025-11-14" and report["start"] == DAY
    assert report["metrics"]["store_bytes"] == pytest.approx(_expected(STORE))
    assert report["metrics"]["request_error_ratio"] == pytest.approx(_expected(ERRORS))
    assert report["samples"] == len(STORE)
    alerts = report["alerts"]
    assert [e["message"] for e in alerts["events"]] == ["store", "store ok"]
    assert alerts["raised"] == 1
    assert alerts["levels_at_end"] == {"job_backlog": "critical", "store_bytes": "ok"}

    async with api_client(conf, sim, clock_ms=clock) as api:
        served = await api.get("/api/monitor/report", params={"day": "2025-11-14"})
        assert served.status_code == 200, served.text
        assert served.json() == report
        default = await api.get("/api/monitor/report")
        assert default.json()["day"] == "2025-11-14"  # the last finished day
        for bad in ("junk", "2025-11-14T00:00", "2025-02-30", "2999-01-01"):
            refused = await api.get("/api/monitor/report", params={"day": bad})
            assert refused.status_code == 400, (bad, refused.text)
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["param"] == "day"


async def test_without_the_setting_no_report_is_written(settings: Settings) -> None:
    clock = Clock(DAY + 24 * HOUR_MS + 60_000)
    sim = create_simulator(seed=1, now_ms=clock)
    conf = dataclasses.replace(settings, maintenance_interval_s=0)
    async with open_services(conf, upstream=sim_client(sim), clock_ms=clock) as services:
        await services.database.monitor.record(DAY, {"store_bytes": 1.0})
        done = await services.maintenance.run(clock.ms)
        assert done.daily_report is None
        assert await services.objects.get("reports/daily/2025-11-14.json") is None


_SAMPLES = st.lists(
    st.tuples(
        st.integers(DAY - 2 * HOUR_MS, DAY + 26 * HOUR_MS),  # around both edges of the day
        st.floats(-1e9, 1e9, allow_nan=False),
    ),
    max_size=40,
    unique_by=lambda s: s[0],
)


@settings_of(max_examples=8, deadline=None)
@given(samples=_SAMPLES)
def test_a_days_report_is_its_samples_in_start_inclusive_end_exclusive(
    tmp_path_factory: pytest.TempPathFactory, samples: list[tuple[int, float]]
) -> None:
    tmp = tmp_path_factory.mktemp("report")
    conf = Settings(
        database_url=f"sqlite:///{tmp}/t.db",
        objects_url=f"file://{tmp}/o",
        maintenance_interval_s=0,  # no pass trims this old history meanwhile
        monitor_interval_s=0,
    )

    async def report() -> dict[str, Any]:
        async with open_services(conf, upstream=sim_client(create_simulator(seed=1))) as services:
            for at, value in samples:
                await services.database.monitor.record(at, {"store_bytes": value})
            return await daily_report(services.database.monitor, DAY)

    got = asyncio.run(report())
    inside = sorted((t, v) for t, v in samples if DAY <= t < DAY + 24 * HOUR_MS)
    if not inside:
        assert got["metrics"] == {} and got["samples"] == 0
        return
    assert got["metrics"]["store_bytes"] == pytest.approx(_expected(inside), rel=1e-9, abs=1e-6)
