"""Gaps judged by each point's observed cadence, through the API against
``Simulator.truth``: a fan status the simulator polls every 5 minutes is judged at 15
minutes (a 40-minute hole upstream never fills shows, on the chart and in
``/api/quality``), while points reporting on change with an hourly heartbeat keep 1.5
heartbeats, on the same chart."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from tests.clock import NOW
from tests.instance import Harness
from tests.simtruth import HELD_GAP_MS, SAMPLED_GAP_MS, walk_gaps
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE
from tsgate.upstream.campus import SimPoint
from tsgate.upstream.visibility import Outage

SITE = "rhine_lab"
DAY = (NOW - 3 * MS_PER_DAY, NOW - 2 * MS_PER_DAY)
# 40 minutes across an hour boundary (an hourly chart sees it too)
HOLE = (
    DAY[0] + 9 * MS_PER_HOUR + 37 * MS_PER_MINUTE,
    DAY[0] + 10 * MS_PER_HOUR + 17 * MS_PER_MINUTE,
)


def _point(h: Harness, kind: str) -> SimPoint:
    return next(p for p in h.sim.site_by_name[SITE].collecting if p.kind == kind)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(tmp_path_factory.mktemp("gap-cadence"))
    fan = _point(h, "fan_status")
    h.sim.faults.outages = [Outage(*HOLE, backlog_ms=None, site=SITE, points=(fan.name,))]
    try:
        yield h
    finally:
        h.close()


def _truth(h: Harness, p: SimPoint, span: tuple[int, int]) -> list[int]:
    t_us, v = h.sim.truth(p.name, *span)
    return [int(t) for t in (t_us // 1000)[~np.isnan(v)]]


def _listed(body: dict[str, Any], name: str) -> list[tuple[int, int]]:
    return [(a, b) for a, b in body["metadata"]["gaps"].get(name, [])]


def test_a_polled_fan_status_shows_its_hole_and_cov_points_keep_their_heartbeat(
    harness: Harness,
) -> None:
    h = harness
    fan, schedule, mode = (_point(h, k) for k in ("fan_status", "occ_schedule", "ahu_mode"))
    names = [fan.name, schedule.name, mode.name]
    limits = {fan.name: SAMPLED_GAP_MS, schedule.name: HELD_GAP_MS, mode.name: HELD_GAP_MS}

    async def check() -> None:
        body = await h.get("/api/timeseries", names, *DAY, site=SITE)
        assert {s["name"]: (s["kind"], s["mode"]) for s in body["series"]}[fan.name] == (
            "binary",
            "cov",
        )
        fan_truth = _truth(h, fan, DAY)
        hole = [g for g in walk_gaps(fan_truth, DAY, SAMPLED_GAP_MS) if g[0] < HOLE[1] < g[1]]
        # the upstream hole: about 40 minutes, under the heartbeat rule's 90
        assert len(hole) == 1 and 40 * MS_PER_MINUTE <= hole[0][1] - hole[0][0] < HELD_GAP_MS
        for p in (fan, schedule, mode):
            assert _listed(body, p.name) == walk_gaps(_truth(h, p, DAY), DAY, limits[p.name])
        assert hole[0] in _listed(body, fan.name)

        quality = await h.get("/api/quality", names, *DAY, site=SITE)
        items = {item["name"]: item for item in quality["points"]}
        for p in (fan, schedule, mode):
            item = items[p.name]
            assert item["gapLimitMs"] == limits[p.name], p.kind
            # from hourly buckets: the gaps that cross an hour or a range edge
            between = [
                (a, b)
                for a, b in walk_gaps(_truth(h, p, DAY), DAY, limits[p.name])
                if a == DAY[0] or b == DAY[1] or a // MS_PER_HOUR != b // MS_PER_HOUR
            ]
            assert (item["gaps"], item["gapMs"]) == (len(between), sum(b - a for a, b in between))
        assert items[fan.name]["gaps"] >= 1

    h.run(check())


def test_the_fan_status_hole_shows_on_an_hourly_chart(harness: Harness) -> None:
    """The hourly chart (from rollups) lists the hole: it crosses an hour boundary."""
    h = harness
    fan = _point(h, "fan_status")

    async def check() -> None:
        hourly = await h.get(
            "/api/timeseries", [fan.name], *DAY, site=SITE, interval="1h", agg="max"
        )
        want = [
            (a, b)
            for a, b in walk_gaps(_truth(h, fan, DAY), DAY, SAMPLED_GAP_MS)
            if a == DAY[0] or b == DAY[1] or a // MS_PER_HOUR != b // MS_PER_HOUR
        ]
        assert _listed(hourly, fan.name) == want
        assert any(a < HOLE[1] < b for a, b in want)

    h.run(check())
