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

from tests.asgi import api_client
from tests.clock import NOW
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
    api: httpx.AsyncClient, sim: Simulator, probe: Probe
) -> None:
    params = {"start_time": DAY["start"], "end_time": DAY["end"], "raw_data": "true"}
    _, cold = await _site_pages(api, {**params, "page_size": "5000"}, probe)
    assert cold[0] >= 1  # the day is fetched and stored, and its fill held
    # another page size: no page is in the response cache; each is cut from the held fill
    pages, costs = await _site_pages(api, {**params, "page_size": "1000"}, probe)
    assert len(pages) > 2 and costs == [0] * len(pages)
    transport = httpx.ASGITransport(app=sim)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as upstream:
        want, _ = await _site_pages(upstream, {**params, "page_size": "1000"})
    assert pages == want  # upstream's own pages, cursors and all
