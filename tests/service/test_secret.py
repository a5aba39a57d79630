"""The deployment secret: configured, or generated once and kept in the database, so
restarts and every process sharing the database agree (saved charts, job tokens, limits),
whatever happens to the object store (a cache)."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from urllib.parse import urlsplit

import pytest

from tests.api.test_charts import ALICE, CONFIG
from tests.asgi import api_client
from tsgate.database import open_database
from tsgate.jobs.tokens import scope_key
from tsgate.object_store import open_object_store
from tsgate.series.access import token_hash
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator
from tsgate.wiring import SECRET_NAME, SECRET_OBJECT, open_services, secret_of

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


async def test_processes_sharing_a_database_agree_and_one_creates_it(settings: Settings) -> None:
    store = open_object_store(settings.objects_url)
    databases = [await open_database(settings.database_url, migrate=True) for _ in range(8)]
    try:
        found = await asyncio.gather(*(secret_of(settings, db, store) for db in databases))
        assert len(set(found)) == 1 and len(found[0]) == 64
        assert await databases[0].secrets.get(SECRET_NAME) == found[0]
        assert await store.get(SECRET_OBJECT) is None  # never in the object store
    finally:
        for db in databases:
            await db.aclose()
    async with open_services(settings) as first, open_services(settings) as second:
        assert first.salt == second.salt
        assert first.settings.secret == second.settings.secret == found[0]


async def test_emptying_the_object_store_loses_no_chart(settings: Settings) -> None:
    sim = create_simulator(seed=1)
    async with api_client(settings, sim) as api:
        made = await api.post("/api/charts", json={"name": "AHU", "config": CONFIG}, headers=ALICE)
        assert made.status_code == 201
    # an operator clears "the cache"
    shutil.rmtree(urlsplit(settings.objects_url).path, ignore_errors=True)
    async with api_client(settings, sim) as restarted:
        listed = (await restarted.get("/api/charts", headers=ALICE)).json()
    assert [c["id"] for c in listed["items"]] == [made.json()["id"]]


async def test_a_secret_an_older_release_kept_in_the_store_is_adopted(settings: Settings) -> None:
    store = open_object_store(settings.objects_url)
    await store.put(SECRET_OBJECT, b"from-an-older-release")
    await store.aclose()
    async with open_services(settings) as services:
        assert services.settings.secret == "from-an-older-release"
        assert await services.database.secrets.get(SECRET_NAME) == "from-an-older-release"


async def test_a_configured_secret_wins_and_is_never_written(settings: Settings) -> None:
    configured = dataclasses.replace(settings, secret="from-the-environment")
    async with open_services(configured) as services:
        assert services.settings.secret == "from-the-environment"
        assert await services.objects.get(SECRET_OBJECT) is None
        assert await services.database.secrets.get(SECRET_NAME) is None
    async with open_services(settings) as generated:
        assert generated.settings.secret != "from-the-environment"


async def test_the_token_salt_moves_charts_and_limits_but_not_jobs(settings: Settings) -> None:
    """What the README says ``TSGATE_TOKEN_SALT`` covers: the scope of charts, files,
    limits and cache keys, not job owners (and ids), keyed by the secret alone."""
    first = dataclasses.replace(settings, secret="s1", token_salt="salt-a")
    other_salt = dataclasses.replace(first, token_salt="salt-b")
    other_secret = dataclasses.replace(first, secret="s2")
    async with (
        open_services(first) as a,
        open_services(other_salt) as b,
        open_services(other_secret) as c,
    ):
        assert a.access.scope("tok") != b.access.scope("tok")  # the salt moved it
        assert a.access.scope("tok") == c.access.scope("tok")  # the secret did not
        assert a.jobs.scope_of("tok") == b.jobs.scope_of("tok")  # the salt did not
        assert a.jobs.scope_of("tok") != c.jobs.scope_of("tok")  # the secret moved it
        # one identity function: the same salted hash, under the job's own key
        assert a.jobs.scope_of("tok") == token_hash("tok", scope_key("s1"))
        assert a.access.scope("tok") == token_hash("tok", a.salt)
        assert a.access.scope("tok") != a.access.scope("tok2")
