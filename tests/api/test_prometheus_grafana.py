"""The request sequences Grafana's built-in Prometheus data source sends, replayed.

Written down from Grafana's Prometheus data source (``promlib``: the health check, the
resource calls of the metric browser, the query data path) and its documentation:

1. **Save & test**: ``GET /api/v1/status/buildinfo`` (the "heuristics" that decide
   whether the server is Prometheus or Mimir: an empty ``features`` means Prometheus),
   then the instant query ``1+1`` POSTed as a form with ``time`` = now; success means the
   answer has ``status: success``. Grafana 10.0 also probed ``GET /-/healthy`` first.
2. **Explore, metric browser**: ``labels`` and ``label/__name__/values`` with
   ``start``/``end`` (seconds), ``metadata``; choosing a metric then asks
   ``labels?match[]=<metric>``, ``label/<name>/values?match[]=…`` and ``series``.
3. **A panel with ``offset 1w``**: ``query_range`` POSTed as a form, ``start`` aligned to
   a multiple of ``step`` (Grafana aligns by default), ``step`` in seconds; with
   exemplars shown, ``query_exemplars`` with the same expression and range.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlencode

import httpx
import pytest

from tests import simtruth
from tests.asgi import api_client
from tests.clock import NOW, OCT1, Clock
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator

pytestmark = pytest.mark.anyio
BASE = "/prometheus"  # the data source URL is http://host:port/prometheus
AUTH = {"Authorization": "Bearer t"}  # the data source's custom Authorization header
FORM = {**AUTH, "Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def sim() -> Simulator:
    return create_simulator(seed=5, now_ms=lambda: NOW)


@pytest.fixture
async def api(sim: Simulator, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings, sim, clock_ms=Clock(NOW)) as client:
        yield client


async def test_save_and_test(api: httpx.AsyncClient) -> None:
    healthy = await api.get(f"{BASE}/-/healthy")
    assert healthy.status_code == 200
    build = await api.get(f"{BASE}/api/v1/status/buildinfo", headers=AUTH)
    assert build.status_code == 200
    info = build.json()["data"]
    assert info["version"] and not info.get("features")  # read as plain Prometheus
    now_s = NOW // 1000
    r = await api.post(
        f"{BASE}/api/v1/query", content=urlencode({"query": "1+1", "time": now_s}), headers=FORM
    )
    assert r.status_code == 200
    assert r.json() == {
        "status": "success",
        "data": {"resultType": "scalar", "result": [now_s, "2"]},
    }


async def test_explore_metric_browser(api: httpx.AsyncClient, sim: Simulator) -> None:
    window = {"start": (NOW - 3_600_000) // 1000, "end": NOW // 1000}
    labels = await api.get(f"{BASE}/api/v1/labels", params=window, headers=AUTH)
    assert "__name__" in labels.json()["data"] and "site" in labels.json()["data"]
    metrics = await api.get(f"{BASE}/api/v1/label/__name__/values", params=window, headers=AUTH)
    assert metrics.json()["data"] == ["ace"]
    meta = await api.get(f"{BASE}/api/v1/metadata", headers=AUTH)
    assert set(meta.json()["data"]) == {"ace"}
    picked = await api.get(
        f"{BASE}/api/v1/labels", params={**window, "match[]": "ace"}, headers=AUTH
    )
    assert set(picked.json()["data"]) >= {"__name__", "point", "site", "unit"}
    sites = await api.get(
        f"{BASE}/api/v1/label/site/values", params={**window, "match[]": "ace"}, headers=AUTH
    )
    assert sites.json()["data"] == sorted(s.name for s in sim.sites)
    units = await api.get(
        f"{BASE}/api/v1/label/unit/values",
        params={**window, "match[]": 'ace{site="elm_school"}'},
        headers=AUTH,
    )
    expected_units = {p.unit for p in sim.site_by_name["elm_school"].collecting if p.unit}
    assert set(units.json()["data"]) == expected_units
    series = await api.post(
        f"{BASE}/api/v1/series",
        content=urlencode({**window, "match[]": 'ace{site="elm_school",unit="kW"}'}),
        headers=FORM,
    )
    found = series.json()["data"]
    assert found and all(s["unit"] == "kW" and s["__name__"] == "ace" for s in found)


async def test_panel_with_offset_one_week(api: httpx.AsyncClient, sim: Simulator) -> None:
    point = next(
        p.name for p in sim.site_by_name["elm_school"].collecting if p.kind == "supply_temp"
    )
    step = 1800
    start = (OCT1 + 10 * 86_400_000) // 1000 // step * step  # Grafana aligns start to step
    end = start + 2 * 86_400
    expr = f'avg_over_time(ace{{point="{point}"}}[30m] offset 1w)'
    form = {"query": expr, "start": start, "end": end, "step": step}
    r = await api.post(f"{BASE}/api/v1/query_range", content=urlencode(form), headers=FORM)
    assert r.status_code == 200, r.text
    (series,) = r.json()["data"]["result"]
    got = simtruth.as_map(series["values"])
    week = 7 * 86_400_000
    rows = await simtruth.samples(
        sim, point, start * 1000 - week - 1_800_000, end * 1000 - week + 1
    )
    expected = {
        t: v
        for t in simtruth.steps(start * 1000, end * 1000, step * 1000)
        if (v := simtruth.over_time("avg", simtruth.window(rows, t - week, 1_800_000))) is not None
    }
    assert got.keys() == expected.keys() and len(got) == 2 * 86_400 // step + 1
    assert all(simtruth.close(got[t], expected[t]) for t in got)
    exemplars = await api.post(
        f"{BASE}/api/v1/query_exemplars", content=urlencode(form), headers=FORM
    )
    assert exemplars.json() == {"status": "success", "data": []}
