"""Point metadata served from the cached catalog, and the picker's search."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.asgi import api_client
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": "Bearer t"}


@pytest.fixture
def sim() -> Simulator:
    return create_simulator(seed=1)


@pytest.fixture
async def api(sim: Simulator, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings, sim) as client:
        yield client


async def test_configured_points_come_from_the_catalog(
    api: httpx.AsyncClient, sim: Simulator
) -> None:
    url = "/api/sites/demo_campus/configured_points"
    first = await api.get(url, params={"page": 2, "per_page": 1000}, headers=AUTH)
    assert first.status_code == 200 and first.headers["X-Cache-Source"] == "ORIGIN"
    body = first.json()
    assert (
        body["total"] == len(sim.sites[0].points)
        and body["pages"] == 3
        and len(body["items"]) == 1000
    )
    fetched = sim.stats.by_route["configured_points"]
    pages = [
        await api.get(url, params={"page": p, "per_page": 1000}, headers=AUTH) for p in (1, 2, 3)
    ]
    assert sim.stats.by_route["configured_points"] == fetched
    assert all(p.headers["X-Cache-Source"] == "STORE" for p in pages)
    names = [i["name"] for p in pages for i in p.json()["items"]]
    # the same points in the same order as upstream lists them (not sorted by name)
    assert names == [p.name for p in sim.sites[0].points] != sorted(names)
    await api.get(url, params={"bypass_cache": "true"}, headers=AUTH)
    assert sim.stats.by_route["configured_points"] == fetched + 3


async def test_search_by_name_and_tags(api: httpx.AsyncClient, sim: Simulator) -> None:
    r = await api.get(
        "/api/points/search",
        params={"site": "demo_campus", "q": "vav712.points.zonetemp"},
        headers=AUTH,
    )
    items = r.json()["items"]
    assert [i["name"].rsplit("/", 1)[-1] for i in items] == [
        "C.Drivers.BacnetNetwork.Vav712.points.ZoneTemp",
        "C.Drivers.BacnetNetwork.Vav712.points.ZoneTempSp",
    ]
    assert items[0]["unit"] == "°F" and "zone-temp" in items[0]["tags"]
    tagged = await api.get(
        "/api/points/search",
        params={"site": "demo_campus", "tags": "ahu,fan-status", "limit": 500},
        headers=AUTH,
    )
    got = tagged.json()["items"]
    expected = [
        p for p in sim.sites[0].points if p.device.startswith("Ahu") and p.kind == "fan_status"
    ]
    assert len(got) == len(expected) == 12


@pytest.mark.parametrize(
    ("path", "params", "param"),
    [
        ("/api/sites/demo_campus/configured_points", {"page": "0"}, "page"),
        ("/api/sites/demo_campus/configured_points", {"per_page": "x"}, "per_page"),
        ("/api/sites/demo_campus/configured_points", {"bypass_cache": "maybe"}, "bypass_cache"),
        ("/api/points/search", {}, "site"),
        ("/api/points/search", {"site": "demo_campus", "limit": "0"}, "limit"),
    ],
)
async def test_bad_catalog_parameters(
    api: httpx.AsyncClient, path: str, params: dict[str, str], param: str
) -> None:
    r = await api.get(path, params=params, headers=AUTH)
    assert r.status_code == 400 and r.json()["param"] == param


async def test_catalog_is_not_served_to_a_rejected_token(settings: Settings) -> None:
    sim = create_simulator(tokens={"a": ["elm_school", "demo_campus"], "b": ["office_tower"]})
    async with api_client(settings, sim) as api:
        ok = await api.get(
            "/api/sites/elm_school/configured_points", headers={"Authorization": "Bearer a"}
        )
        assert ok.status_code == 200
        other = await api.get(
            "/api/sites/elm_school/configured_points", headers={"Authorization": "Bearer b"}
        )
        assert other.status_code == 403 and "items" not in other.json()
        bad = await api.get(
            "/api/sites/elm_school/configured_points", headers={"Authorization": "Bearer zzz"}
        )
        assert bad.status_code == 401
