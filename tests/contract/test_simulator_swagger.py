"""The simulator answers every GET operation of the platform's Swagger, in its shapes,
with Flask-RESTX's slash redirects, enums, defaults and ``X-Fields`` masks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import jsonschema
import pytest

from tests.contract.ace_swagger import Call, calls, get_operations, load_swagger, validate
from tsgate.upstream.simulator import PER_PAGE, Simulator, create_simulator

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": "Bearer t"}
NOW_MS = 1_759_400_000_000  # 2025-10-02T10:13:20Z


def fleet_calls(sim: Simulator) -> list[Call]:
    site = sim.sites[0]
    gw = sim.fleet.gateways[0]
    point = next(p.name for p in site.collecting if "/analogValue/" in p.name)
    pcap = sim.fleet.pcap_names(gw, 1_759_276_800_000, 1_759_284_000_000)[0]
    return calls(
        point,
        gw.name,
        sim.fleet.hawke_agents(gw)[0],
        sim.fleet.packages()[0]["id"],
        pcap,
    )


@pytest.fixture(params=["none", "flask"])
def sim(request: pytest.FixtureRequest) -> Simulator:
    load_swagger()
    return create_simulator(seed=1, now_ms=lambda: NOW_MS, redirects=request.param)


@pytest.fixture
async def api(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sim)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sim/api", headers=AUTH
    ) as client:
        yield client


async def test_every_get_operation_answers_in_the_declared_shape(
    api: httpx.AsyncClient, sim: Simulator
) -> None:
    planned = fleet_calls(sim)
    assert sorted(c.path for c in planned) == get_operations()  # no operation left out
    for call in planned:
        r = await api.get(call.url, params=call.params)
        assert r.status_code == 200, (call.path, r.text)
        if call.file:
            assert r.headers["content-type"] == "application/octet-stream" and r.content
            continue
        body = r.json()
        validate(body, call.path)
        items = body.get("items", body.get("point_samples"))
        assert items != [], f"{call.path} answered no data to validate"


async def test_a_strict_validator_catches_what_the_contract_forbids(api: httpx.AsyncClient) -> None:
    # the validator is real: an extra field, a missing field or a wrong type fails it
    site = (await api.get("/sites/demo_campus")).json()
    validate(site, "/sites/{site_name}")
    for broken in ({**site, "site_id": 1}, {k: v for k, v in site.items() if k != "name"}):
        with pytest.raises(jsonschema.ValidationError):
            validate(broken, "/sites/{site_name}")
    with pytest.raises(jsonschema.ValidationError):
        validate({**site, "latitude": "north"}, "/sites/{site_name}")
    point = (await api.get("/sites/demo_campus/points", params={"per_page": "2"})).json()
    validate(point, "/sites/{site_name}/points")
    point["items"][0]["created"] = "yesterday"
    with pytest.raises(jsonschema.ValidationError):
        validate(point, "/sites/{site_name}/points")
    flat = {"site": "demo_campus", "temp": 61.2, "time": "2025-10-01T00:00:00"}
    with pytest.raises(jsonschema.ValidationError):
        validate(flat, "/sites/{site_name}/weather")  # the shape the simulator used to answer


async def test_collections_follow_the_declared_slash(
    api: httpx.AsyncClient, sim: Simulator
) -> None:
    for collection in ("/sites", "/points", "/clients", "/gateways"):
        declared = await api.get(collection + "/", params={"per_page": "2"})
        assert declared.status_code == 200
        other = await api.get(collection, params={"per_page": "2"})
        if sim.redirects == "flask":
            assert other.status_code == 308
            assert other.headers["location"] == f"http://sim/api{collection}/?per_page=2"
            assert other.headers["content-type"].startswith("text/html")
        else:
            assert other.status_code == 200 and other.json() == declared.json()
    # items are declared without a slash: the other spelling is not a route
    assert (await api.get("/sites/demo_campus/")).status_code == 404


async def test_paging_enums_and_defaults(api: httpx.AsyncClient, sim: Simulator) -> None:
    default = (await api.get("/sites/demo_campus/configured_points")).json()
    assert default["per_page"] == 10 and len(default["items"]) == 10
    everything = (
        await api.get("/sites/demo_campus/configured_points", params={"per_page": "100000"})
    ).json()
    assert [p["name"] for p in everything["items"]] == [p.name for p in sim.sites[0].points]
    for per_page in PER_PAGE:
        r = await api.get("/points/", params={"per_page": str(per_page), "page": "2"})
        assert r.status_code == 200 and r.json()["per_page"] == per_page
    refused = await api.get("/sites/", params={"per_page": "7"})
    assert refused.status_code == 400
    assert refused.json() == {
        "errors": {
            "per_page": "Results per page The value '7' is not a valid choice for 'per_page'."
        },
        "message": "Input payload validation failed",
    }
    assert (await api.get("/sites/", params={"page": "x"})).status_code == 400
    paged = await api.get(
        "/sites/demo_campus/timeseries/paginated",
        params={"start_time": "2025-10-01T00:00:00", "end_time": "2025-10-02T00:00:00"},
    )
    assert len(paged.json()["point_samples"]) == 10000  # page_size defaults to 10000


async def test_x_fields_masks_every_answer(api: httpx.AsyncClient, sim: Simulator) -> None:
    for call in fleet_calls(sim):
        if call.file:
            continue
        full = (await api.get(call.url, params=call.params)).json()
        keys = sorted(full)
        first = keys[0]
        masked = await api.get(call.url, params=call.params, headers={"X-Fields": first})
        assert masked.status_code == 200
        assert masked.json() == {first: full[first]}, call.path
        validate(masked.json(), call.path, masked=True)
    nested = await api.get(
        "/sites/demo_campus/configured_points",
        params={"per_page": "2"},
        headers={"X-Fields": "{total,items{name,bacnet_data{device_id}}}"},
    )
    body = nested.json()
    assert set(body) == {"total", "items"} and body["total"] == len(sim.sites[0].points)
    assert [set(p) for p in body["items"]] == [{"name", "bacnet_data"}] * 2
    star = await api.get("/sites/elm_school", headers={"X-Fields": "name,*"})
    assert star.json() == (await api.get("/sites/elm_school")).json()
    missing = await api.get("/sites/elm_school", headers={"X-Fields": "name,nope"})
    assert missing.json() == {"name": "elm_school", "nope": None}  # Flask-RESTX answers null
    for bad in ("{name", "name}", "{{name}}"):
        r = await api.get("/sites/elm_school", headers={"X-Fields": bad})
        assert r.status_code == 400 and "mask" in r.json()["message"]


async def test_points_and_weather_carry_the_declared_fields(
    api: httpx.AsyncClient, sim: Simulator
) -> None:
    site = sim.sites[0]
    point = next(p for p in site.points if "/analogValue/" in p.name)
    r = await api.get(f"/points/{quote(point.name, safe='')}")
    body = r.json()
    assert body["name"] == point.name and body["site"] == site.name
    assert body["created"] < body["updated"]
    assert body["bacnet_data"]["object_index"] == int(point.name.rsplit("/", 1)[-1])
    unknown = await api.get(f"/points/{quote('ses/demo_campus/nope', safe='')}")
    assert unknown.status_code == 404
    weather = (await api.get("/sites/demo_campus/weather")).json()["weather"]
    assert set(weather) >= {"temp", "humidity", "dew_point", "wet_bulb"}
    assert float(weather["dew_point"]["value"]) <= float(weather["temp"]["value"])
    assert all(w["time"] == weather["temp"]["time"] for w in weather.values())


async def test_filters_of_the_fleet(api: httpx.AsyncClient, sim: Simulator) -> None:
    gateways = (await api.get("/gateways/")).json()["items"]
    archived = (await api.get("/gateways/", params={"show_archived": "true"})).json()["items"]
    assert not any(g["archived"] for g in gateways) and len(archived) == len(gateways) + 1
    gw = gateways[0]["name"]
    active = (await api.get(f"/gateways/{gw}/agent_configs")).json()["items"]
    every = (await api.get(f"/gateways/{gw}/agent_configs", params={"active": "false"})).json()
    assert all(c["active"] for c in active) and len(every["items"]) == 2 * len(active)
    one = (
        await api.get(f"/gateways/{gw}/agent_configs", params={"agent_identity": "ace.historian"})
    ).json()["items"]
    assert {c["agent_identity"] for c in one} == {"ace.historian"}
    upcoming = (await api.get("/clients/demo_health/der_events")).json()["items"]
    with_past = (
        await api.get("/clients/demo_health/der_events", params={"get_past_events": "true"})
    ).json()["items"]
    assert all(e["event_end"] >= "2025-10-02T10:13:20" for e in upcoming)
    assert len(with_past) > len(upcoming)
    grouped = (
        await api.get("/gateways/" + gw + "/der_events", params={"group_name": "dr-curtail"})
    ).json()["items"]
    assert grouped and {e["group_name"] for e in grouped} == {"dr-curtail"}
    assert (await api.get("/gateways/nope")).status_code == 404
    assert (await api.get("/clients/nope")).status_code == 404
    missing = await api.get(f"/gateways/{gw}/pcap/list")
    assert missing.status_code == 400 and "start_time" in missing.json()["errors"]
