"""tsgate's drop-in ACE paths answer as upstream does: every GET of the platform's
Swagger validates and equals the simulator read directly, pages are upstream's pages
byte for byte (cursors and microsecond times included), against a simulator that
answers both slash spellings and against one that redirects like Flask-RESTX."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from urllib.parse import quote

import httpx
import msgspec
import pytest

from tests.asgi import api_client
from tests.contract.ace_swagger import Call, calls, load_swagger, validate
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator

pytestmark = pytest.mark.anyio
TOKEN = "t"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW_MS = 1_759_400_000_000  # 2025-10-02T10:13:20Z: 2025-10-01 is settled history
DAY = {"start_time": "2025-10-01T00:00:00", "end_time": "2025-10-02T00:00:00"}
SITE = "elm_school"


@pytest.fixture(params=["none", "flask"])
def sim(request: pytest.FixtureRequest) -> Simulator:
    return create_simulator(seed=1, now_ms=lambda: NOW_MS, redirects=request.param)


@pytest.fixture
async def api(settings: Settings, sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings, sim) as client:
        yield client


@pytest.fixture
async def direct(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=sim)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://sim/api", headers=AUTH, follow_redirects=True
    ) as client:
        yield client


def fleet_calls(sim: Simulator) -> list[Call]:
    gw = sim.fleet.gateways[0]
    point = next(p.name for p in sim.sites[0].collecting if "/analogValue/" in p.name)
    pcap = sim.fleet.pcap_names(gw, 1_759_276_800_000, 1_759_284_000_000)[0]
    return calls(point, gw.name, sim.fleet.hawke_agents(gw)[0], sim.fleet.packages()[0]["id"], pcap)


async def test_every_get_of_the_contract_through_tsgate(
    api: httpx.AsyncClient, direct: httpx.AsyncClient, sim: Simulator
) -> None:
    load_swagger()
    for call in fleet_calls(sim):
        for url in {call.url, call.url.rstrip("/")}:  # both slash spellings of collections
            mine = await api.get("/api" + url, params=call.params, headers=AUTH)
            theirs = await direct.get(url, params=call.params)
            assert mine.status_code == 200, (url, mine.text)
            if call.file:
                assert mine.content == theirs.content
                continue
            validate(mine.json(), call.path)
            assert mine.json() == theirs.json(), url


@pytest.mark.parametrize("sim", ["none"], indirect=True)  # no slash variant on this path
async def test_site_day_pages_are_upstreams_pages_byte_for_byte(
    api: httpx.AsyncClient, direct: httpx.AsyncClient
) -> None:
    # default settings: rate limits on; a paginator reading a cached day never meets a 429
    params = {**DAY, "page_size": "100", "raw_data": "true"}
    pages = 0
    while True:
        mine = await api.get(f"/api/sites/{SITE}/timeseries/paginated", params=params, headers=AUTH)
        theirs = await direct.get(f"/sites/{SITE}/timeseries/paginated", params=params)
        assert mine.status_code == 200, mine.text
        assert mine.content == theirs.content, f"page {pages}"
        pages += 1
        body = theirs.json()
        if not body["has_more"]:
            break
        params["cursor"] = body["next_cursor"]
    assert pages > 250  # a site-day of ~100 points at 100 rows a page
    validate(mine.json(), "/sites/{site_name}/timeseries/paginated")


@pytest.mark.parametrize("sim", ["none"], indirect=True)
async def test_a_messagepack_paginator_gets_upstreams_objects(
    api: httpx.AsyncClient, direct: httpx.AsyncClient
) -> None:
    # a browser client's loop: Accept MessagePack, read point_samples and next_cursor
    params = {**DAY, "page_size": "500", "raw_data": "true"}
    packed = {**AUTH, "Accept": "application/x-msgpack"}
    for _ in range(15):
        mine = await api.get(
            f"/api/sites/{SITE}/timeseries/paginated", params=params, headers=packed
        )
        theirs = await direct.get(f"/sites/{SITE}/timeseries/paginated", params=params)
        assert mine.headers["content-type"] == "application/x-msgpack"
        assert msgspec.msgpack.decode(mine.content) == theirs.json()
        params["cursor"] = theirs.json()["next_cursor"]


@pytest.mark.slow
@pytest.mark.parametrize("sim", ["none"], indirect=True)  # no slash variant on this path
async def test_a_site_day_at_page_size_3(api: httpx.AsyncClient, direct: httpx.AsyncClient) -> None:
    whole = await direct.get(
        f"/sites/{SITE}/timeseries/paginated",
        params={**DAY, "page_size": "500000", "raw_data": "true"},
    )
    truth = whole.json()["point_samples"]
    params = {**DAY, "page_size": "3", "raw_data": "true"}
    rows: list[dict[str, str]] = []
    pages = 0
    while True:
        mine = await api.get(f"/api/sites/{SITE}/timeseries/paginated", params=params, headers=AUTH)
        assert mine.status_code == 200, (pages, mine.text)
        if pages % 97 == 0:  # a sample of pages against upstream's, byte for byte
            theirs = await direct.get(f"/sites/{SITE}/timeseries/paginated", params=params)
            assert mine.content == theirs.content, f"page {pages}"
        body = mine.json()
        rows.extend(body["point_samples"])
        pages += 1
        if not body["has_more"]:
            break
        params["cursor"] = body["next_cursor"]
    assert pages == -(-len(truth) // 3)
    assert rows == truth  # every row, in upstream's order, times to the microsecond


async def test_cursors_pass_between_tsgate_and_upstream(
    api: httpx.AsyncClient, direct: httpx.AsyncClient, sim: Simulator
) -> None:
    url = f"/sites/{SITE}/timeseries/paginated"
    for raw in ("true", "false"):
        params = {**DAY, "page_size": "50", "raw_data": raw}
        first = (await direct.get(url, params=params)).json()
        cursor = first["next_cursor"]
        for _ in range(7):  # a cursor in the middle of a sweep
            cursor = (await direct.get(url, params={**params, "cursor": cursor})).json()[
                "next_cursor"
            ]
        mine = await api.get("/api" + url, params={**params, "cursor": cursor}, headers=AUTH)
        theirs = await direct.get(url, params={**params, "cursor": cursor})
        assert mine.json()["point_samples"] == theirs.json()["point_samples"], raw
        # and tsgate's cursor continues upstream's stream without a gap
        back = await direct.get(url, params={**params, "cursor": mine.json()["next_cursor"]})
        after = await direct.get(url, params={**params, "cursor": theirs.json()["next_cursor"]})
        assert back.json() == after.json()
    # a cursor of another site, and a forged offset, go on as upstream does
    other = (
        await direct.get(
            "/sites/office_tower/timeseries/paginated",
            params={**DAY, "page_size": "100", "raw_data": "true"},
        )
    ).json()["next_cursor"]
    stamp = json.loads(base64.urlsafe_b64decode(other + "=" * (-len(other) % 4)))["timestamp"]
    forged = base64.urlsafe_b64encode(
        json.dumps({"offset": 10**9, "timestamp": stamp}).encode()
    ).decode()
    for cursor in (other, forged):
        params = {**DAY, "page_size": "100", "raw_data": "true", "cursor": cursor}
        mine = await api.get("/api" + url, params=params, headers=AUTH)
        theirs = await direct.get(url, params=params)
        assert mine.status_code == 200 and mine.content == theirs.content
        assert mine.json()["point_samples"], "the stream goes on after a forged offset"


async def test_get_timeseries_is_partial_grouped_and_takes_the_swagger_body(
    api: httpx.AsyncClient, direct: httpx.AsyncClient, sim: Simulator
) -> None:
    site = sim.site_by_name[SITE]
    a, b = (p.name for p in site.collecting[-2:])
    params = {"start_time": "2025-10-01T00:00:00", "end_time": "2025-10-01T03:00:00"}
    for body in (
        {"points": [b, "ses/elm_school/nope", a]},
        {"points": [{"name": b}, {"name": "ses/elm_school/nope"}, {"name": a}]},
    ):
        mine = await api.post("/api/points/get_timeseries", params=params, json=body, headers=AUTH)
        theirs = await direct.post("/points/get_timeseries", params=params, json=body)
        assert mine.status_code == theirs.status_code == 200
        assert mine.content == theirs.content  # grouped by point in request order, unknown left out
        names = [r["name"] for r in mine.json()["point_samples"]]
        assert names == sorted(names, key=[b, a].index)
        validate(mine.json(), "/points/get_timeseries", method="post")
    for empty in ({"points": []}, {"points": ["ses/elm_school/nope"]}):
        mine = await api.post("/api/points/get_timeseries", params=params, json=empty, headers=AUTH)
        theirs = await direct.post("/points/get_timeseries", params=params, json=empty)
        assert mine.status_code == theirs.status_code == 404
        assert mine.json()["message"] == theirs.json()["message"] == "No data for time period"
    one = quote(a, safe="")
    mine = await api.get(f"/api/points/{one}/timeseries", params=params, headers=AUTH)
    theirs = await direct.get(f"/points/{one}/timeseries", params=params)
    assert mine.content == theirs.content  # microseconds and all


async def test_empty_ranges_answer_as_upstream(
    api: httpx.AsyncClient, direct: httpx.AsyncClient
) -> None:
    future = {"start_time": "2025-11-01T00:00:00", "end_time": "2025-11-02T00:00:00"}
    url = f"/sites/{SITE}/timeseries/paginated"
    mine = await api.get("/api" + url, params={**future, "raw_data": "true"}, headers=AUTH)
    theirs = await direct.get(url, params={**future, "raw_data": "true"})
    assert mine.status_code == theirs.status_code == 404
    assert mine.json()["message"] == theirs.json()["message"] == "No data for time period"
    assert mine.headers["content-type"] == "application/problem+json"


async def test_x_fields_masks_tsgates_own_answers(
    api: httpx.AsyncClient, direct: httpx.AsyncClient
) -> None:
    mask = {"X-Fields": "{has_more,point_samples{time}}"}
    params = {**DAY, "page_size": "10", "raw_data": "true"}
    url = f"/sites/{SITE}/timeseries/paginated"
    mine = await api.get("/api" + url, params=params, headers={**AUTH, **mask})
    theirs = await direct.get(url, params=params, headers=mask)
    assert mine.content == theirs.content
    assert set(mine.json()) == {"has_more", "point_samples"}
    points = await api.get(
        f"/api/sites/{SITE}/configured_points",
        params={"per_page": "2"},
        headers={**AUTH, "X-Fields": "items{name}"},
    )
    assert points.json() == {"items": [{"name": p["name"]} for p in points.json()["items"]]}
    bad = await api.get("/api" + url, params=params, headers={**AUTH, "X-Fields": "{a"})
    assert bad.status_code == 400 and bad.json()["param"] == "X-Fields"


async def test_per_page_is_the_contracts_enum(
    api: httpx.AsyncClient, direct: httpx.AsyncClient
) -> None:
    url = "/sites/demo_campus/configured_points"
    for per_page in ("10000", "100000"):
        mine = await api.get("/api" + url, params={"per_page": per_page}, headers=AUTH)
        theirs = await direct.get(url, params={"per_page": per_page})
        assert mine.status_code == 200 and mine.json() == theirs.json()
    default = await api.get("/api" + url, headers=AUTH)
    assert default.json()["per_page"] == 10 and len(default.json()["items"]) == 10
    refused = await api.get("/api" + url, params={"per_page": "7"}, headers=AUTH)
    assert refused.status_code == 400 and refused.json()["param"] == "per_page"


async def test_errors_keep_upstreams_message(api: httpx.AsyncClient) -> None:
    day = "start_time=2025-10-01&end_time=2025-10-02"
    for url, message in (
        ("/api/sites/nope/points", "Site nope not found"),
        ("/api/sites/nope/configured_points", "Site nope not found"),
        (f"/api/sites/nope/timeseries/paginated?{day}", "Site nope not found"),
        (f"/api/points/ses%2Fnope%2Fx/timeseries?{day}", "Site nope not found"),
        (f"/api/points/ses%2Felm_school%2Fx/timeseries?{day}", "Point ses/elm_school/x not found"),
    ):
        r = await api.get(url, headers=AUTH)
        assert r.status_code == 404, url
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["message"] == message, url  # upstream's text; the detail says more
        assert message in r.json()["detail"]


async def test_head_and_every_method_pass_through(api: httpx.AsyncClient) -> None:
    for url in ("/api/sites", "/api/sites/", f"/api/sites/{SITE}/points", f"/api/sites/{SITE}"):
        head = await api.head(url, headers=AUTH)
        assert head.status_code == 200 and head.content == b"", url
    preflight = await api.options(
        "/api/points/x",
        headers={"Origin": "http://chart", "Access-Control-Request-Method": "PUT"},
    )
    assert preflight.status_code == 200
    allowed = preflight.headers["access-control-allow-methods"]
    assert {"PUT", "PATCH", "HEAD"} <= set(allowed.replace(" ", "").split(","))


async def test_accept_q_values_and_tokens(api: httpx.AsyncClient) -> None:
    url = f"/api/sites/{SITE}/timeseries/paginated"
    params = {**DAY, "page_size": "10", "raw_data": "true"}
    cases = {
        "application/x-msgpack;q=0": "application/json",
        "application/x-msgpack": "application/x-msgpack",
        "application/json;q=0.5, application/x-msgpack": "application/x-msgpack",
        "application/x-msgpack;q=0.2, application/json": "application/json",
    }
    for accept, expected in cases.items():
        r = await api.get(url, params=params, headers={**AUTH, "Accept": accept})
        assert r.headers["content-type"].startswith(expected), accept
        if expected == "application/x-msgpack":
            assert msgspec.msgpack.decode(r.content)["point_samples"]
    bearer_twice = await api.get(url, params=params, headers={"X-ACE-Token": f"Bearer {TOKEN}"})
    assert bearer_twice.status_code == 200
    basic = await api.get(url, params=params, headers={"Authorization": "Basic dTpw"})
    assert basic.status_code == 401 and "Basic" in basic.json()["detail"]


@pytest.mark.parametrize("sim", ["none"], indirect=True)
async def test_microseconds_survive_the_store_across_a_restart(
    settings: Settings, sim: Simulator, direct: httpx.AsyncClient
) -> None:
    params = {**DAY, "page_size": "5000", "raw_data": "true"}
    url = f"/sites/{SITE}/timeseries/paginated"
    async with api_client(settings, sim) as first:
        warm = await first.get("/api" + url, params=params, headers=AUTH)
    fetched = sim.stats.by_route["paginated"] + sim.stats.by_route["point_timeseries"]
    async with api_client(settings, sim) as restarted:  # same database and objects, no memory
        again = await restarted.get("/api" + url, params=params, headers=AUTH)
    assert sim.stats.by_route["paginated"] + sim.stats.by_route["point_timeseries"] == fetched
    theirs = await direct.get(url, params=params)
    assert again.content == warm.content == theirs.content
    assert any(not r["time"].endswith("000") for r in again.json()["point_samples"])
