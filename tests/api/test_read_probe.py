"""What one chart request costs in chunk-index queries and access checks.

A request prepares its read once (access check, one index query, the plan, the inline
budget's estimate) and every part of the chart reads through it. Counted with the
driver's own ``before_cursor_execute`` event and a count of ``AccessCheck.check`` calls;
every answer is held to the simulator's truth, so a saving never costs correctness.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.asgi import FAST_POLICY, api_client, lifespan_app, sim_client
from tests.clock import NOW
from tests.unit.test_weighted import brute
from tsgate.api import prefill
from tsgate.app import create_app
from tsgate.core.model import Series
from tsgate.series.access import AccessCheck
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator

pytestmark = pytest.mark.anyio

DAY = {"start": "2025-09-01T00:00:00", "end": "2025-09-02T00:00:00"}
START_MS, END_MS = 1_756_684_800_000, 1_756_771_200_000  # the same day, in epoch ms


@dataclass
class Probe:
    statements: list[str] = field(default_factory=list)
    checks: int = 0

    @property
    def index_queries(self) -> int:
        return sum(1 for s in self.statements if "FROM chunks" in s)

    def reset(self) -> None:
        self.statements.clear()
        self.checks = 0


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> Iterator[Probe]:
    found = Probe()

    def on_execute(*args: Any) -> None:
        found.statements.append(str(args[2]))

    checked = AccessCheck.check

    async def check(self: AccessCheck, *args: Any, **kwargs: Any) -> None:
        found.checks += 1
        await checked(self, *args, **kwargs)

    monkeypatch.setattr(AccessCheck, "check", check)
    event.listen(Engine, "before_cursor_execute", on_execute)
    try:
        yield found
    finally:
        event.remove(Engine, "before_cursor_execute", on_execute)


@pytest.fixture
def sim() -> Simulator:
    return create_simulator(seed=5, tokens={"good": ["elm_school"]}, now_ms=lambda: NOW)


@pytest.fixture
async def api(sim: Simulator, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    # no background passes: only the request's own statements are counted
    quiet = dataclasses.replace(settings, maintenance_interval_s=0, monitor_interval_s=0)
    async with api_client(quiet, sim, clock_ms=lambda: NOW) as client:
        yield client


async def _get(api: httpx.AsyncClient, names: list[str], token: str = "good", **extra: str) -> Any:
    params = {"site": "elm_school", "points": ",".join(names), **DAY, **extra}
    return await api.get(
        "/api/timeseries", params=params, headers={"Authorization": f"Bearer {token}"}
    )


def _assert_truth(sim: Simulator, body: dict[str, Any]) -> None:
    for s in body["series"]:
        t_us, v = sim.truth(s["name"], START_MS, END_MS)
        assert [p[0] for p in s["data"]] == (t_us // 1000).tolist()
        assert np.allclose([p[1] for p in s["data"]], v, equal_nan=True)


async def test_a_cold_three_point_read_costs_four_index_queries_and_one_check(
    api: httpx.AsyncClient, sim: Simulator, probe: Probe
) -> None:
    names = [p.name for p in sim.sites[2].collecting[:3]]
    r = await _get(api, names)
    assert r.status_code == 200 and r.headers["X-Cache-Status"] == "MISS"
    # prepare; plan again under the fetch locks; the write's layout; the rows it left
    assert probe.index_queries <= 4
    assert probe.checks == 1
    _assert_truth(sim, r.json())


@pytest.mark.parametrize(
    "extra",
    [
        {"layout": "columnar"},
        {"max_points": "50"},
        {"interval": "1h"},
        {"interval": "1h", "agg": "max"},
    ],
    ids=["raw", "m4", "1h", "1h-max"],
)
async def test_a_warm_response_cache_miss_costs_one_index_query_and_one_check(
    api: httpx.AsyncClient, sim: Simulator, probe: Probe, extra: dict[str, str]
) -> None:
    names = [p.name for p in sim.sites[2].collecting[:3]]
    cold = await _get(api, names)  # the chunks are stored now
    assert cold.status_code == 200
    before = sim.stats.requests
    probe.reset()
    r = await _get(api, names, **extra)  # another answer of the same data: not cached
    assert r.status_code == 200 and r.headers["X-Cache-Status"] == "HIT"
    assert probe.index_queries <= 1
    assert probe.checks == 1
    assert sim.stats.requests == before  # the grant is cached: nothing asked of upstream
    if extra == {"layout": "columnar"}:
        cols = r.json()["series"]
        rows = cold.json()["series"]
        assert [c["t"] for c in cols] == [[p[0] for p in s["data"]] for s in rows]
        _assert_truth(sim, cold.json())


async def test_a_refused_token_costs_one_check_and_no_index_query(
    api: httpx.AsyncClient, sim: Simulator, probe: Probe
) -> None:
    names = [p.name for p in sim.sites[2].collecting[:3]]
    assert (await _get(api, names)).status_code == 200  # warm for the good token
    probe.reset()
    r = await _get(api, names, token="junk", layout="columnar")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert probe.checks == 1 and probe.index_queries == 0


async def test_a_warm_timein_read_checks_the_token_once(
    api: httpx.AsyncClient, sim: Simulator, probe: Probe
) -> None:
    """``agg=timein:<state>`` checks the points' kinds on the read the request prepared
    (no catalog lookup of its own asking for access again)."""
    names = [p.name for p in sim.sites[2].collecting if p.kind.endswith("status")][:2]
    assert len(names) == 2
    assert (await _get(api, names)).status_code == 200  # the chunks are stored now
    probe.reset()
    r = await _get(api, names, interval="1h", agg="timein:1")
    assert r.status_code == 200, r.text
    assert probe.checks == 1
    assert probe.index_queries <= 1
    hours = [(b, b + 3_600_000) for b in range(START_MS, END_MS, 3_600_000)]
    for s in r.json()["series"]:
        t_us, v = sim.truth(s["name"], START_MS, END_MS)
        want = brute(Series(s["name"], t_us // 1000, v), hours, START_MS, END_MS, "timein:1")
        got = [p[1] for p in s["data"]]
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
    # an analog point is still refused by name, after the one check
    analog = next(p.name for p in sim.sites[2].collecting if p.kind == "zone_temp")
    probe.reset()
    bad = await _get(api, [names[0], analog], interval="1h", agg="timein:1")
    assert bad.status_code == 400 and analog in bad.json()["detail"]
    assert probe.checks == 1


async def test_a_warm_comparison_prepares_both_spans_under_one_check(
    api: httpx.AsyncClient, sim: Simulator, probe: Probe
) -> None:
    """``compare=-7d`` prepares its earlier span with the read of the range: one access
    check, one index query per span; the earlier week is the simulator's, shifted."""
    names = [p.name for p in sim.sites[2].collecting[:3]]
    week = 7 * 86_400_000
    earlier = {"start": "2025-08-25T00:00:00", "end": "2025-08-26T00:00:00"}
    assert (await _get(api, names)).status_code == 200
    assert (await _get(api, names, **earlier)).status_code == 200
    for extra in ({"layout": "columnar"}, {"interval": "1h", "agg": "max"}):
        probe.reset()
        r = await _get(api, names, compare="-7d", **extra)
        assert r.status_code == 200, r.text
        assert probe.checks == 1
        assert probe.index_queries <= 2
    body = r.json()
    assert body["metadata"]["compare"]["offsetMs"] == -week
    compared = [s for s in body["series"] if s.get("offsetMs") == -week]
    assert [s["name"] for s in compared] == names
    for s in compared:
        t_us, v = sim.truth(s["name"], START_MS - week, END_MS - week)
        hourly = Series(s["name"], t_us // 1000 + week, v)
        starts = np.arange(START_MS, END_MS, 3_600_000)
        want = [
            float(np.max(hourly.v[(hourly.t_ms >= b) & (hourly.t_ms < b + 3_600_000)]))
            for b in starts
            if ((hourly.t_ms >= b) & (hourly.t_ms < b + 3_600_000)).any()
        ]
        np.testing.assert_allclose([p[1] for p in s["data"]], want, rtol=1e-6)
    # a junk token is refused by the one check, before any index query
    probe.reset()
    refused = await _get(api, names, token="junk", compare="-7d")
    assert refused.status_code == 401
    assert probe.checks == 1 and probe.index_queries == 0


async def test_a_warm_occupancy_read_costs_one_index_query(
    settings: Settings, probe: Probe
) -> None:
    """``/api/occupancy`` of stored days: the schedule points found in the stored
    catalog, one index query for their read; the token checked on the catalog and on the
    read (the second from the grant), nothing asked of upstream."""
    sim = create_simulator(seed=5, tokens={"good": ["rhine_lab"]}, now_ms=lambda: NOW)
    quiet = dataclasses.replace(settings, maintenance_interval_s=0, monitor_interval_s=0)
    params = {"site": "rhine_lab", **DAY}
    headers = {"Authorization": "Bearer good"}
    async with api_client(quiet, sim, clock_ms=lambda: NOW) as api:
        cold = await api.get("/api/occupancy", params=params, headers=headers)
        assert cold.status_code == 200, cold.text
        before = sim.stats.requests
        probe.reset()
        warm = await api.get("/api/occupancy", params=params, headers=headers)
        assert warm.status_code == 200 and warm.json() == cold.json()
        assert probe.index_queries == 1
        assert probe.checks == 2
        assert sim.stats.requests == before


async def _site_pages(
    client: httpx.AsyncClient, params: dict[str, str], probe: Probe | None = None
) -> tuple[list[Any], list[int]]:
    """Every page of the drop-in site stream (following ``next_cursor``), and the index
    queries each one cost."""
    url = "/api/sites/elm_school/timeseries/paginated"
    pages: list[Any] = []
    costs: list[int] = []
    query = dict(params)
    for _ in range(200):
        if probe is not None:
            probe.reset()
        r = await client.get(url, params=query, headers={"Authorization": "Bearer good"})
        assert r.status_code == 200, r.text
        costs.append(probe.index_queries if probe is not None else 0)
        pages.append(r.json())
        if not pages[-1]["has_more"]:
            return pages, costs
        query["cursor"] = pages[-1]["next_cursor"]
    raise AssertionError("paging did not end")


async def test_the_next_pages_of_a_settled_site_stream_cost_no_index_query(
    settings: Settings, sim: Simulator, probe: Probe
) -> None:
    params = {"start_time": DAY["start"], "end_time": DAY["end"], "raw_data": "true"}
    quiet = dataclasses.replace(settings, maintenance_interval_s=0, monitor_interval_s=0)
    app = create_app(quiet, upstream=sim_client(sim, FAST_POLICY), clock_ms=lambda: NOW)
    async with (
        lifespan_app(app) as asgi,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://tsgate") as api,
    ):
        _, cold = await _site_pages(api, {**params, "page_size": "5000"}, probe)
        assert cold[0] >= 1  # the day is fetched and stored, and its fill held
        # the cold fill goes on in the background after its last page: its own index
        # statements are not the next pages' cost
        await prefill.settled(app.state)
        # another page size: no page is in the response cache; each is cut from the fill
        pages, costs = await _site_pages(api, {**params, "page_size": "1000"}, probe)
    assert len(pages) > 2 and costs == [0] * len(pages)
    transport = httpx.ASGITransport(app=sim)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as upstream:
        want, _ = await _site_pages(upstream, {**params, "page_size": "1000"})
    assert pages == want  # upstream's own pages, cursors and all
