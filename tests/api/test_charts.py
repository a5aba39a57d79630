"""Saved chart configurations: create, list, get, delete, scoped to the caller's token."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.asgi import api_client
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator

pytestmark = pytest.mark.anyio
ALICE = {"Authorization": "Bearer alice"}
BOB = {"X-ACE-Token": "bob"}
CONFIG: dict[str, Any] = {
    "site": "demo_campus",
    "points": ["ses/demo_campus/a", "ses/demo_campus/b"],
    "units": {"ses/demo_campus/a": "°F"},
    "view": "area",
    "range": {"preset": "30d"},
}


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings, create_simulator(seed=1)) as client:
        yield client


async def _create(api: httpx.AsyncClient, name: str, headers: dict[str, str]) -> dict[str, Any]:
    created = await api.post("/api/charts", json={"name": name, "config": CONFIG}, headers=headers)
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    assert created.headers["Location"] == f"/api/charts/{body['id']}"
    return body


async def test_create_list_get_delete(api: httpx.AsyncClient) -> None:
    first = await _create(api, "AHU 1", ALICE)
    second = await _create(api, "AHU 2", ALICE)
    assert first["url"] == f"/?chart={first['id']}" and first["id"] != second["id"]
    assert first["config"] == CONFIG and first["name"] == "AHU 1"

    listed = (await api.get("/api/charts", headers=ALICE)).json()
    assert listed["total"] == 2
    assert {c["id"] for c in listed["items"]} == {first["id"], second["id"]}

    got = await api.get(f"/api/charts/{first['id']}", headers=ALICE)
    assert got.status_code == 200 and got.json()["config"] == CONFIG

    deleted = await api.delete(f"/api/charts/{first['id']}", headers=ALICE)
    assert deleted.status_code == 204
    assert (await api.get(f"/api/charts/{first['id']}", headers=ALICE)).status_code == 404
    again = await api.delete(f"/api/charts/{first['id']}", headers=ALICE)
    assert again.status_code == 404 and again.json()["title"] == "Not found"
    remaining = (await api.get("/api/charts", headers=ALICE)).json()["items"]
    assert [c["id"] for c in remaining] == [second["id"]]


async def test_another_token_can_neither_see_nor_delete(api: httpx.AsyncClient) -> None:
    mine = await _create(api, "mine", ALICE)
    assert (await api.get("/api/charts", headers=BOB)).json() == {"items": [], "total": 0}
    assert (await api.get(f"/api/charts/{mine['id']}", headers=BOB)).status_code == 404
    assert (await api.delete(f"/api/charts/{mine['id']}", headers=BOB)).status_code == 404
    assert (await api.get(f"/api/charts/{mine['id']}", headers=ALICE)).status_code == 200


async def test_no_token_is_401(api: httpx.AsyncClient) -> None:
    answer = await api.get("/api/charts")
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"config": {**CONFIG, "site": ""}}, "config.site"),
        ({"config": {**CONFIG, "points": []}}, "config.points"),
        ({"config": {**CONFIG, "points": ["a", 3]}}, "config.points"),
        ({"config": {**CONFIG, "points": [f"p{i}" for i in range(501)]}}, "config.points"),
        ({"config": {**CONFIG, "view": "pie"}}, "config.view"),
        ({"config": {**CONFIG, "range": {"preset": "2w"}}}, "config.range.preset"),
        ({"config": {**CONFIG, "range": {"preset": "custom", "start": "x"}}}, "config.range.end"),
        ({"config": {**CONFIG, "range": "30d"}}, "config.range"),
        ({"name": 7, "config": CONFIG}, "name"),
        ({"name": "x" * 201, "config": CONFIG}, "name"),
        ({"name": "no config"}, "config"),
        ([CONFIG], "body"),
    ],
)
async def test_bad_input_is_400_naming_the_field(
    api: httpx.AsyncClient, body: Any, param: str
) -> None:
    answer = await api.post("/api/charts", json=body, headers=ALICE)
    assert answer.status_code == 400
    problem = answer.json()
    assert problem["param"] == param and problem["detail"].startswith(param)


async def test_a_saved_chart_holds_as_many_points_as_a_request_may_ask(
    settings: Settings,
) -> None:
    few = dataclasses.replace(settings, max_points_per_request=3)
    async with api_client(few, create_simulator(seed=1)) as api:
        points = [f"ses/demo_campus/p{i}" for i in range(4)]
        too_many = {"name": "four", "config": {**CONFIG, "points": points}}
        refused = await api.post("/api/charts", json=too_many, headers=ALICE)
        enough = {"name": "three", "config": {**CONFIG, "points": points[:3]}}
        saved = await api.post("/api/charts", json=enough, headers=ALICE)
    assert refused.status_code == 400 and refused.json()["param"] == "config.points"
    assert "at most 3" in refused.json()["detail"] and saved.status_code == 201


async def test_a_body_that_is_not_json_is_400(api: httpx.AsyncClient) -> None:
    answer = await api.post("/api/charts", content=b"{nope", headers=ALICE)
    assert answer.status_code == 400 and answer.json()["param"] == "body"
    big = await api.post("/api/charts", content=b" " * (65 << 10), headers=ALICE)
    assert big.status_code == 400 and big.json()["param"] == "body"


async def test_the_page_and_its_files_are_served(api: httpx.AsyncClient) -> None:
    page = await api.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert page.headers["cache-control"] == "no-cache"
    for path in ("/ui/js/main.js", "/ui/vendor/echarts.esm.min.js", "/ui/vendor/msgpack.min.js"):
        asset = await api.get(path)
        assert asset.status_code == 200, path
        assert "javascript" in asset.headers["content-type"]
    assert (await api.get("/ui/vendor/echarts.LICENSE")).status_code == 200
