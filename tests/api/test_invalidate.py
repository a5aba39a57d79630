"""POST /api/cache/invalidate: admin only; drops chunks, objects, rollups, responses."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.asgi import api_client, lifespan_client, sim_client
from tsgate.app import create_app
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.wiring import OpenedServices

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": "Bearer t"}
ADMIN = {"X-Admin-Key": "s3cret"}
WEEK = {"start": "2025-10-01T00:00:00", "end": "2025-10-08T00:00:00"}


@dataclass
class Env:
    api: httpx.AsyncClient
    sim: Simulator
    services: OpenedServices

    def names(self, n: int) -> list[str]:
        return [p.name for p in self.sim.sites[2].collecting[:n]]

    async def chart(self, names: list[str], **params: str) -> httpx.Response:
        query = {"site": "elm_school", "points": ",".join(names), **WEEK, **params}
        return await self.api.get("/api/timeseries", params=query, headers=AUTH)

    async def invalidate(self, body: Any, headers: dict[str, str] = ADMIN) -> httpx.Response:
        return await self.api.post("/api/cache/invalidate", json=body, headers=headers)


@pytest.fixture
async def env(settings: Settings) -> AsyncIterator[Env]:
    sim = create_simulator(seed=5)
    app = create_app(dataclasses.replace(settings, admin_key="s3cret"), upstream=sim_client(sim))
    async with lifespan_client(app) as (api, state):
        yield Env(api, sim, state["services"])


async def test_the_next_read_refetches_what_was_invalidated(env: Env) -> None:
    names, other = env.names(2), env.names(3)[2:]
    first = await env.chart(names)
    kept = await env.chart(other)
    hourly = await env.chart(names, interval="1h")
    # local days of a half-hour zone read the 15-minute level: October's is built for
    # the first point only (the other month stays hourly and daily only)
    kolkata = {"interval": "1d", "tz": "Asia/Kolkata"}
    quarters = await env.chart(names[:1], **kolkata)
    assert quarters.status_code == 200, quarters.text
    before = env.sim.stats.requests
    assert (await env.chart(names)).headers["x-cache-status"] == "HIT"
    assert env.sim.stats.requests == before  # zero upstream calls while cached
    await env.services.cache.set("resp:some-chart", b"{}")

    answer = await env.invalidate({"site": "elm_school", "points": names, **WEEK})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["deletedChunks"] >= 2 * 7 and body["deletedObjects"] >= 2 * 7
    # the 1h and 1d blobs of October of both points, and the first one's 15m blob
    assert body["deletedRollups"] == 2 * 2 + 1
    # every cached chart answer goes (four charts were asked above), and the planted one
    assert body["deletedResponses"] == 5 and await env.services.cache.get("resp:some-chart") is None
    assert body["startTime"].startswith("2025-10-01") and body["endTime"].startswith("2025-10-08")
    assert [o.key async for o in env.services.objects.list("chunks/")] != []  # the other point's

    again = await env.chart(names)
    assert again.headers["x-cache-status"] == "MISS"
    assert env.sim.stats.by_route["point_timeseries"] > 0 and env.sim.stats.requests > before
    assert again.json()["series"] == first.json()["series"]
    assert (await env.chart(names, interval="1h")).json()["series"] == hourly.json()["series"]
    rebuilt = await env.chart(names[:1], **kolkata)
    assert rebuilt.json()["series"] == quarters.json()["series"]
    untouched = await env.chart(other)
    assert untouched.headers["x-cache-status"] == "HIT"
    assert untouched.json()["series"] == kept.json()["series"]


async def test_a_whole_site_and_all_time_without_points_or_range(env: Env) -> None:
    await env.chart(env.names(3))
    answer = await env.invalidate({"site": "elm_school"})
    assert answer.status_code == 200
    assert answer.json()["deletedChunks"] >= 3 * 7 and answer.json()["startTime"] is None
    assert [o async for o in env.services.objects.list("chunks/")] == []
    assert (await env.services.database.chunks.counts())["chunks"] == 0


@pytest.mark.parametrize(
    "headers", [{}, {"X-Admin-Key": "wrong"}, {"Authorization": "Bearer s3cret"}]
)
async def test_without_the_admin_key_it_is_403(env: Env, headers: dict[str, str]) -> None:
    await env.chart(env.names(1))
    answer = await env.invalidate({"site": "elm_school"}, headers=headers)
    assert answer.status_code == 403
    assert answer.headers["content-type"] == "application/problem+json"
    assert (await env.services.database.chunks.counts())["chunks"] > 0


async def test_unconfigured_admin_key_refuses_everyone(settings: Settings) -> None:
    async with api_client(settings, create_simulator()) as api:
        answer = await api.post(
            "/api/cache/invalidate", json={"site": "x"}, headers={"X-Admin-Key": ""}
        )
    assert answer.status_code == 403
    assert "no admin key configured" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "site"),
        ({"site": ""}, "site"),
        ({"site": "elm_school", "points": "a,b"}, "points"),
        ({"site": "elm_school", "points": []}, "points"),
        ({"site": "elm_school", "points": [1]}, "points"),
        ({"site": "elm_school", "start": "yesterday"}, "start"),
        ({"site": "elm_school", "end": 5}, "end"),
        ({"site": "elm_school", "start": "2025-10-02", "end": "2025-10-01"}, "end"),
        (["elm_school"], "body"),
    ],
)
async def test_bad_bodies_are_400_naming_the_field(env: Env, body: Any, param: str) -> None:
    answer = await env.invalidate(body)
    assert answer.status_code == 400
    assert answer.json()["param"] == param


async def test_a_body_that_is_not_json_is_400(env: Env) -> None:
    answer = await env.api.post("/api/cache/invalidate", content=b"{site", headers=ADMIN)
    assert answer.status_code == 400 and answer.json()["param"] == "body"
