"""The deployment secret: configured, or generated once and kept in the object store, so
restarts and every process sharing the store agree (saved charts, job tokens, limits)."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from tests.api.test_charts import ALICE, CONFIG
from tests.asgi import api_client
from tsgate.object_store import open_object_store
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator
from tsgate.wiring import SECRET_OBJECT, open_services, secret_of

pytestmark = pytest.mark.anyio


async def test_a_saved_chart_is_still_there_after_a_restart(settings: Settings) -> None:
    assert settings.secret is None and settings.token_salt is None
    sim = create_simulator(seed=1)
    async with api_client(settings, sim) as api:
        made = await api.post("/api/charts", json={"name": "AHU", "config": CONFIG}, headers=ALICE)
        assert made.status_code == 201
    async with api_client(settings, sim) as restarted:
        listed = (await restarted.get("/api/charts", headers=ALICE)).json()
    assert [c["id"] for c in listed["items"]] == [made.json()["id"]]


async def test_processes_sharing_a_store_agree_and_one_creates_it(settings: Settings) -> None:
    stores = [open_object_store(settings.objects_url) for _ in range(8)]
    found = await asyncio.gather(*(secret_of(settings, store) for store in stores))
    assert len(set(found)) == 1 and len(found[0]) == 64
    assert await stores[0].get(SECRET_OBJECT) == found[0].encode()
    async with open_services(settings) as first, open_services(settings) as second:
        assert first.salt == second.salt
        assert first.settings.secret == second.settings.secret == found[0]


async def test_a_configured_secret_wins_and_is_never_written(settings: Settings) -> None:
    configured = dataclasses.replace(settings, secret="from-the-environment")
    async with open_services(configured) as services:
        assert services.settings.secret == "from-the-environment"
        assert await services.objects.get(SECRET_OBJECT) is None
    async with open_services(settings) as generated:
        assert generated.settings.secret != "from-the-environment"
