"""The official ``aceiot-models`` client, every read method, sync and async: through
tsgate the results equal those of the simulator read directly, against a simulator
that answers both slash spellings and one that redirects like Flask-RESTX."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aceiot_models import WeatherData
from aceiot_models.api import APIClient, AsyncAPIClient, PaginatedResults
from aceiot_models.api.async_utils import get_api_results_paginated_async
from aceiot_models.api.utils import get_api_results_paginated

from tests.asgi import live_server, sim_client
from tsgate.app import create_app
from tsgate.settings import Settings
from tsgate.upstream.fleet import CLIENT
from tsgate.upstream.simulator import Simulator, create_simulator

NOW_MS = 1_759_400_000_000  # 2025-10-02T10:13:20Z
START, END = "2025-10-01T00:00:00", "2025-10-01T04:00:00"
SITE = "elm_school"


@dataclass(frozen=True)
class Pair:
    sim: Simulator
    tsgate: str  # base URLs, …/api
    direct: str


@pytest.fixture(scope="module", params=["none", "flask"])
def pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pair]:
    sim = create_simulator(seed=1, now_ms=lambda: NOW_MS, redirects=request.param)
    tmp = tmp_path_factory.mktemp(f"aceiot-{request.param}")
    conf = Settings(database_url=f"sqlite:///{tmp}/t.db", objects_url=f"file://{tmp}/objects")
    with (
        live_server(create_app(conf, upstream=sim_client(sim))) as mine,
        live_server(sim) as theirs,
    ):
        yield Pair(sim, mine + "/api", theirs + "/api")


def read_calls(sim: Simulator) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    """(method, args, kwargs) for every read method the library has, sync and async."""
    site = sim.site_by_name[SITE]
    a, b = (p.name for p in site.collecting[-2:])
    gw = sim.fleet.gateways[-2].name  # the elm_school gateway
    hawke = sim.fleet.hawke_agents(sim.gateway_by_name[gw])[0]
    return [
        ("get_clients", (), {}),
        ("get_client", (CLIENT,), {}),
        ("get_client_sites", (CLIENT,), {}),
        ("get_client_der_events", (CLIENT,), {"get_past_events": True}),
        ("get_client_volttron_agent_package_list", (CLIENT,), {}),
        ("get_sites", (), {}),
        ("get_sites", (), {"collect_enabled": True, "show_archived": True}),
        ("get_site", (SITE,), {}),
        ("get_site_points", (SITE,), {}),
        ("get_site_configured_points", ("demo_campus",), {"page": 3, "per_page": 500}),
        ("get_site_timeseries", (SITE, START, END), {}),
        ("get_site_weather", (SITE,), {}),
        ("get_gateways", (), {"show_archived": True}),
        ("get_gateway", (gw,), {}),
        ("get_gateway_der_events", (gw,), {"group_name": "peak-shave"}),
        ("get_gateway_volttron_agents", (gw,), {}),
        ("get_gateway_hawke_configuration", (gw,), {"use_base64_hash": True}),
        ("get_gateway_hawke_agent_configuration", (gw, hawke), {}),
        ("get_gateway_agent_configs", (gw,), {"active": False}),
        ("get_gateway_pcap_list", (gw, START, END), {}),
        ("get_gateway_volttron_agent_config_package", (gw, "platform.driver"), {}),
        ("get_points", (), {"page": 2}),
        ("get_point", (a,), {}),
        ("get_point_timeseries", (a, START, END), {}),
        ("get_points_timeseries", ([b, a], START, END), {}),
    ]


def sync_only(sim: Simulator) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    """Reads the async client lacks (or leaves unimplemented, as file downloads)."""
    gw = sim.gateway_by_name[sim.fleet.gateways[-2].name]
    pcap = sim.fleet.pcap_names(gw, 1_759_276_800_000, 1_759_280_000_000)[0]
    return [
        ("get_site_timeseries_paginated", (SITE, START, END), {"page_size": 500, "raw_data": True}),
        ("get_site_timeseries_paginated", (SITE, START, END), {"page_size": 1000}),  # buckets
        ("download_gateway_pcap", (gw.name, pcap), {}),
    ]


def _same(call: Callable[[APIClient], Any], pair: Pair) -> Any:
    mine = call(APIClient(base_url=pair.tsgate, api_key="token", timeout=60))
    theirs = call(APIClient(base_url=pair.direct, api_key="token", timeout=60))
    assert mine == theirs
    return mine


def test_every_sync_read_method_agrees(pair: Pair) -> None:
    for name, args, kwargs in read_calls(pair.sim) + sync_only(pair.sim):
        result = _same(lambda c, n=name, a=args, k=kwargs: getattr(c, n)(*a, **k), pair)
        assert result, f"{name} answered nothing to compare"
    weather = _same(lambda c: c.get_site_weather(SITE), pair)
    parsed = WeatherData.model_validate(weather["weather"])
    assert parsed.temp is not None and parsed.temp.name == f"weather/{SITE}/temp"


def test_the_sync_paginated_helpers_agree(pair: Pair) -> None:
    points = _same(
        lambda c: get_api_results_paginated(c.get_site_points, per_page=500, site_name=SITE),
        pair,
    )
    assert [p["name"] for p in points] == [p.name for p in pair.sim.site_by_name[SITE].points]
    pages = _same(
        lambda c: list(PaginatedResults(c.get_sites, per_page=2).pages()),
        pair,
    )
    sites = len(pair.sim.sites)
    assert [len(p["items"]) for p in pages] == [2] * (sites // 2) + [sites % 2] * (sites % 2)


@pytest.mark.anyio
async def test_every_async_read_method_agrees(pair: Pair) -> None:
    async with (
        AsyncAPIClient(base_url=pair.tsgate, api_key="token", timeout=60) as mine,
        AsyncAPIClient(base_url=pair.direct, api_key="token", timeout=60) as theirs,
    ):
        for name, args, kwargs in read_calls(pair.sim):
            got = await getattr(mine, name)(*args, **kwargs)
            assert got == await getattr(theirs, name)(*args, **kwargs), name
            assert got, f"{name} answered nothing to compare"
        weather = await mine.get_site_weather(SITE)
        assert WeatherData.model_validate(weather["weather"]).humidity is not None
        every = await get_api_results_paginated_async(
            mine.get_site_configured_points, per_page=1000, site_name="demo_campus"
        )
        direct = await get_api_results_paginated_async(
            theirs.get_site_configured_points, per_page=1000, site_name="demo_campus"
        )
        assert every == direct and len(every) == len(pair.sim.site_by_name["demo_campus"].points)
