"""Saved charts kept warm by the maintenance pass (``TSGATE_WARM_CHARTS_DAYS``), on a
test clock: a chart used yesterday is fetched with the service token, one unused for
N + 1 days is not, nor one whose site the service token may not read; afterwards the
chart's read costs no upstream call and equals the simulator's truth."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import httpx
import numpy as np
import pytest

from tests.asgi import api_client, sim_client
from tests.clock import NOW, Clock
from tsgate.series.chart import saved_range
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.wire.ace import format_time
from tsgate.wiring import open_services

pytestmark = pytest.mark.anyio
ALICE = {"Authorization": "Bearer alice"}
DAY_MS = 86_400_000
DAYS = 3
SITE, OTHER = "demo_campus", "office_tower"  # the service token reads only SITE


def _two_points(sim: Simulator, site: str, skip: int = 0) -> list[str]:
    return [p.name for p in sim.site_by_name[site].collecting[skip : skip + 2]]


async def _save(api: httpx.AsyncClient, site: str, points: list[str], **extra: Any) -> str:
    config = {"site": site, "points": points, "range": {"preset": "24h"}, **extra}
    r = await api.post("/api/charts", json={"name": site, "config": config}, headers=ALICE)
    assert r.status_code == 201, r.text
    chart_id: str = r.json()["id"]
    return chart_id


async def _after_one_pass(api: httpx.AsyncClient, charts: int) -> dict[str, Any]:
    """``/api/stats`` once the pass under way at start has been through ``charts``."""
    for _ in range(400):
        stats: dict[str, Any] = (await api.get("/api/stats")).json()
        warm = stats["warm"]
        if warm["charts"] + warm["skipped"] + warm["failures"] >= charts:
            return stats
        await asyncio.sleep(0.05)
    raise AssertionError("no maintenance pass warmed a chart")


async def test_recently_used_charts_are_kept_warm_within_the_service_tokens_sites(
    settings: Settings,
) -> None:
    clock = Clock(NOW - 5 * DAY_MS)
    sim = create_simulator(seed=1, tokens={"svc": [SITE], "alice": [SITE, OTHER]}, now_ms=clock)
    base = dataclasses.replace(
        settings, upstream_token="svc", maintenance_interval_s=0, recheck_interval_s=0
    )
    used, unused, foreign = (
        _two_points(sim, SITE),
        _two_points(sim, SITE, skip=2),
        _two_points(sim, OTHER),
    )
    async with api_client(base, sim, clock_ms=clock) as api:
        await _save(api, SITE, unused)  # saved N + 2 days before the pass, never opened
        clock.ms = NOW - DAY_MS
        warm_id = await _save(api, SITE, used, compare=True)  # used yesterday
        await _save(api, OTHER, foreign)  # used yesterday, a site svc may not read
    clock.ms = NOW
    sim.stats.reset()
    # a server whose maintenance runs a pass at start (and keeps charts warm)
    warming = dataclasses.replace(base, maintenance_interval_s=3600, warm_charts_days=DAYS)
    async with api_client(warming, sim, clock_ms=clock) as api:
        stats = await _after_one_pass(api, 2)
        assert stats["warm"]["charts"] == 1 and stats["warm"]["skipped"] == 1
        assert stats["warm"]["failures"] == 0 and stats["warm"]["upstream_requests"] > 0
        metrics = (await api.get("/metrics")).text
        assert "tsgate_warm_charts_total 1.0" in metrics
        assert "tsgate_warm_skipped_total 1.0" in metrics
        start, end = saved_range({"range": {"preset": "24h"}}, NOW)
        fetched = sim.stats.samples
        expected = sum(len(sim.truth(p, start, end)[0]) for p in used)
        expected += sum(len(sim.truth(p, start - 7 * DAY_MS, end - 7 * DAY_MS)[0]) for p in used)
        assert fetched == expected  # the used chart's range and last week, nothing else

        # alice's own access is asked upstream once (listing her charts); then her read of
        # the chart needs no upstream call and is what upstream holds
        listed = (await api.get("/api/charts", headers=ALICE)).json()
        assert {c["id"] for c in listed["items"]} >= {warm_id}
        before = sim.stats.requests
        params = {
            "site": SITE,
            "points": ",".join(used),
            "start": format_time(start),
            "end": format_time(end),
            "layout": "columnar",
            "compare": "-7d",
        }
        r = await api.get("/api/timeseries", params=params, headers=ALICE)
        assert r.status_code == 200, r.text
        image = await api.get(f"/api/charts/{warm_id}.png", headers=ALICE)
        assert image.status_code == 200, image.text
        assert sim.stats.requests == before
        for s in r.json()["series"]:
            lo, hi = (start, end) if "offsetMs" not in s else (start - 7 * DAY_MS, end - 7 * DAY_MS)
            t_us, v = sim.truth(s["name"], lo, hi)
            shift = s.get("offsetMs", 0)
            assert s["t"] == [int(t) - shift for t in t_us // 1000]
            assert np.array_equal(np.array(s["v"], dtype=np.float64), v, equal_nan=True)

        # neither the chart unused for N + 1 days nor the other site's was fetched
        for site, points in ((SITE, unused), (OTHER, foreign)):
            answer = await api.get(
                "/api/timeseries",
                params={**params, "site": site, "points": ",".join(points)},
                headers=ALICE,
            )
            assert answer.headers["x-cache-status"] == "MISS"


@pytest.mark.parametrize(("token", "days"), [(None, DAYS), ("svc", 0.0)])
async def test_without_a_service_token_or_days_nothing_is_warmed(
    settings: Settings, token: str | None, days: float
) -> None:
    sim = create_simulator(seed=1, tokens={"svc": [SITE]}, now_ms=lambda: NOW)
    conf = dataclasses.replace(
        settings, upstream_token=token, warm_charts_days=days, maintenance_interval_s=0
    )
    async with open_services(conf, upstream=sim_client(sim), clock_ms=lambda: NOW) as services:
        config = {"site": SITE, "points": _two_points(sim, SITE), "range": {"preset": "24h"}}
        await services.database.charts.create("scope", "c", config, NOW)
        report = await services.maintenance.run(NOW)
        assert report.charts_warmed == 0 and services.warming.passes == 0
    assert sim.stats.requests == 0


class _InFlight:
    """The simulator behind a counter of the requests it is answering at once."""

    def __init__(self, sim: Simulator) -> None:
        self.sim, self.now, self.most = sim, 0, 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.now += 1
        self.most = max(self.most, self.now)
        try:
            await asyncio.sleep(0.01)  # long enough for the others to start, if allowed
            await self.sim(scope, receive, send)
        finally:
            self.now -= 1


async def test_the_warm_pass_keeps_its_upstream_concurrency_bound(settings: Settings) -> None:
    import httpx

    from tests.asgi import FAST_POLICY
    from tsgate.upstream.ace import AceClient

    sim = create_simulator(seed=1, tokens={"svc": [SITE]}, now_ms=lambda: NOW)
    counted = _InFlight(sim)
    # the client as open_upstream builds it: at most TSGATE_UPSTREAM_CONCURRENCY in flight
    policy = dataclasses.replace(FAST_POLICY, concurrency=2)
    upstream = AceClient("http://simulator/api", policy, transport=httpx.ASGITransport(app=counted))
    conf = dataclasses.replace(
        settings,
        upstream_token="svc",
        warm_charts_days=DAYS,
        warm_charts_concurrency=4,
        upstream_concurrency=2,
        maintenance_interval_s=0,
    )
    points = [p.name for p in sim.site_by_name[SITE].collecting[:12]]
    # 30 days: two months' units, four allowed at once; still two requests in flight
    config = {"site": SITE, "points": points, "range": {"preset": "30d"}}
    async with open_services(conf, upstream=upstream, clock_ms=lambda: NOW) as services:
        await services.database.charts.create("scope", "many", config, NOW - DAY_MS)
        report = await services.maintenance.run(NOW)
        assert report.charts_warmed == 1
        assert services.warming.fetched_samples == sum(
            len(sim.truth(p, NOW - 30 * DAY_MS, NOW)[0]) for p in points
        )
    assert 1 < counted.most <= 2
