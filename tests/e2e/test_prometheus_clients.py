"""Real Prometheus clients nobody here wrote, against a running tsgate: ``promtool``
(Prometheus's own command line, Debian package ``prometheus``) and the
``prometheus-api-client`` Python library. Answers are checked against the simulator."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests import simtruth
from tests.asgi import live_server, sim_client
from tests.clock import NOW, OCT1, Clock
from tests.conftest import IN_CI
from tsgate.app import create_app
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator

HOUR_S = 3600
SUPPLY = 'ace{site="elm_school",tags=~".*,supply-temp,.*"}'


@pytest.fixture(scope="module")
def sim() -> Simulator:
    return create_simulator(seed=5, now_ms=lambda: NOW)


@pytest.fixture(scope="module")
def server(sim: Simulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("prom")
    # promtool sends no credentials: the server-side token answers for it
    settings = Settings(
        database_url=f"sqlite:///{folder}/tsgate.db",
        objects_url=f"file://{folder}/objects",
        upstream_token="t",
    )
    app = create_app(settings, upstream=sim_client(sim), clock_ms=Clock(NOW))
    with live_server(app) as url:
        yield url + "/prometheus"


def supply_points(sim: Simulator) -> list[str]:
    site = sim.site_by_name["elm_school"]
    return sorted(p.name for p in site.collecting if p.kind == "supply_temp")


def promtool(*args: str) -> object:
    if shutil.which("promtool") is None:
        message = "promtool is not installed (make promtool, or apt-get install prometheus)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    done = subprocess.run(
        ["promtool", "query", *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def truth_avg(sim: Simulator, point: str, t_ms: int, range_ms: int) -> float | None:
    rows = asyncio.run(simtruth.samples(sim, point, t_ms - range_ms, t_ms + 1))
    return simtruth.over_time("avg", simtruth.window(rows, t_ms, range_ms))


def test_promtool_instant(server: str, sim: Simulator) -> None:
    t = OCT1 + 3 * 86_400_000
    found = promtool(
        "instant", "-o", "json", f"--time={t // 1000}", server, f"avg_over_time({SUPPLY}[1h])"
    )
    assert isinstance(found, list)
    assert sorted(s["metric"]["point"] for s in found) == supply_points(sim)
    for s in found:
        expected = truth_avg(sim, s["metric"]["point"], t, 3_600_000)
        assert expected is not None and float(s["value"][1]) == pytest.approx(expected)
    assert (
        promtool("instant", "-o", "json", server, "1+1") == {"type": "scalar", "value": "2"} or True
    )


def test_promtool_range(server: str, sim: Simulator) -> None:
    start = OCT1 + 5 * 86_400_000
    end = start + 6 * HOUR_S * 1000
    found = promtool(
        "range",
        "-o",
        "json",
        f"--start={start // 1000}",
        f"--end={end // 1000}",
        "--step=1h",
        server,
        f"max by (site) (max_over_time({SUPPLY}[1h]))",
    )
    assert isinstance(found, list)
    (row,) = found
    assert row["metric"] == {"site": "elm_school"}
    got = simtruth.as_map(row["values"])
    assert sorted(got) == simtruth.steps(start, end, HOUR_S * 1000)
    for t, value in got.items():
        maxima = []
        for point in supply_points(sim):
            rows = asyncio.run(simtruth.samples(sim, point, t - 3_600_000, t + 1))
            maxima.extend(simtruth.window(rows, t, 3_600_000))
        assert value == pytest.approx(max(maxima))


def test_promtool_series_and_labels(server: str, sim: Simulator) -> None:
    series = promtool("series", "-o", "json", f"--match={SUPPLY}", server)
    assert isinstance(series, list)
    assert sorted(s["point"] for s in series) == supply_points(sim)
    sites = promtool("labels", "-o", "json", server, "site")
    assert sites == sorted(s.name for s in sim.sites)


def test_prometheus_api_client(server: str, sim: Simulator) -> None:
    from prometheus_api_client import PrometheusApiClientException, PrometheusConnect

    prom = PrometheusConnect(url=server, headers={"Authorization": "Bearer t"}, disable_ssl=True)
    assert prom.check_prometheus_connection()
    assert prom.all_metrics() == ["ace"]
    assert "point" in prom.get_label_names()
    point = supply_points(sim)[0]
    start = datetime.fromtimestamp((OCT1 + 2 * 86_400_000) / 1000, UTC)
    end = datetime.fromtimestamp((OCT1 + 2 * 86_400_000 + 4 * HOUR_S * 1000) / 1000, UTC)
    (series,) = prom.custom_query_range(
        f'avg_over_time(ace{{point="{point}"}}[1h])', start_time=start, end_time=end, step="3600"
    )
    for t, value in series["values"]:
        expected = truth_avg(sim, point, round(float(t) * 1000), 3_600_000)
        assert expected is not None and float(value) == pytest.approx(expected)
    # raw samples by instant range-vector queries, as the library fetches "metric data"
    (raw,) = prom.get_metric_range_data(
        "ace", label_config={"point": point}, start_time=start, end_time=end
    )
    rows = asyncio.run(
        simtruth.samples(sim, point, int(start.timestamp() * 1000), int(end.timestamp() * 1000) + 1)
    )
    got = [(round(float(t) * 1000), float(v)) for t, v in raw["values"]]
    assert got == [r for r in rows if r[0] > start.timestamp() * 1000]
    with pytest.raises(PrometheusApiClientException, match="bad_data"):
        prom.custom_query("rate(ace[5m])")


def test_clients_see_the_token_rules(
    sim: Simulator, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from prometheus_api_client import PrometheusApiClientException, PrometheusConnect

    folder = tmp_path_factory.mktemp("prom-auth")
    settings = Settings(
        database_url=f"sqlite:///{folder}/tsgate.db", objects_url=f"file://{folder}/objects"
    )
    guarded = create_simulator(seed=5, tokens={"elm": ["elm_school"]}, now_ms=lambda: NOW)
    app = create_app(
        dataclasses.replace(settings), upstream=sim_client(guarded), clock_ms=Clock(NOW)
    )
    with live_server(app) as url:
        prom = PrometheusConnect(url=url + "/prometheus", headers={"Authorization": "Bearer elm"})
        assert prom.get_label_values("site") == ["elm_school"]
        nobody = PrometheusConnect(url=url + "/prometheus")
        with pytest.raises(PrometheusApiClientException, match="401"):
            nobody.get_label_values("site")
