"""The drop-in site stream read cold: the requested range is fetched once, shared by
every page, and every page is cut from what was fetched and stored — equal to upstream's
own pages, cursors and all (pages answered while the site stream still arrives:
``test_dropin_overlap.py``)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import httpx
import msgspec
import pytest
from starlette.types import Receive, Scope, Send

from tests.asgi import api_client, sim_client
from tsgate.app import create_app
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.wiring import OpenedServices

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": "Bearer t"}
URL = "/api/sites/elm_school/timeseries/paginated"


async def pages_of(
    client: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str] = AUTH
) -> list[bytes]:
    """Every page's body, following ``next_cursor``."""
    return [r.content for r in await answers_of(client, params, headers)]


async def answers_of(
    client: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str] = AUTH
) -> list[httpx.Response]:
    """Every page's response, following ``next_cursor``."""
    pages: list[httpx.Response] = []
    query = dict(params)
    for _ in range(500):
        r = await client.get(URL, params=query, headers=headers)
        assert r.status_code == 200, r.text
        pages.append(r)
        body = msgspec.json.decode(r.content)
        if not body["has_more"]:
            return pages
        query["cursor"] = body["next_cursor"]
    raise AssertionError("paging did not end")


async def upstream_pages(sim: Simulator, params: dict[str, str]) -> list[bytes]:
    transport = httpx.ASGITransport(app=sim)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as upstream:
        return await pages_of(upstream, params)


def decoded(pages: list[bytes]) -> list[Any]:
    return [msgspec.json.decode(p) for p in pages]


def comparable(pages: list[bytes], raw: str) -> list[Any]:
    """Pages as compared with upstream's: whole for raw reads; for 5-minute buckets the
    rows and ``has_more`` (the cursor of a bucketed page names the bucket where upstream
    names the next raw sample; either resumes at the same row)."""
    if raw == "true":
        return decoded(pages)
    return [(p["point_samples"], p["has_more"]) for p in decoded(pages)]


@pytest.mark.parametrize("raw", ["true", "false"])
async def test_a_cold_paged_read_is_fetched_once_and_equals_upstreams_pages(
    settings: Settings, raw: str
) -> None:
    sim = create_simulator(seed=3)
    params = {
        "start_time": "2025-10-01T00:00:00",
        "end_time": "2025-10-02T00:00:00",
        "page_size": "1000",
        "raw_data": raw,
    }
    theirs = await upstream_pages(sim, params)
    assert len(theirs) > 5  # a real multi-page read
    sim.stats.reset()
    async with api_client(settings, sim) as api:
        first = await api.get(URL, params=params, headers=AUTH)
        after_first = sim.stats.samples
        ours = await pages_of(api, params)
        after_all = sim.stats.samples
        again = await pages_of(api, params)
        after_warm = sim.stats.samples
    # the same pages as upstream's: rows in order, values, times (and raw cursors)
    assert comparable(ours, raw) == comparable(theirs, raw)
    assert comparable(again, raw) == comparable(theirs, raw)
    assert first.content == ours[0]
    # the first page fetched the whole range; no later page, cold or warm, went upstream
    assert after_first > 0
    assert after_all == after_first
    assert after_warm == after_first


async def test_a_paged_read_past_the_fetch_budget_is_fetched_in_bounded_parts(
    settings: Settings,
) -> None:
    """A range larger than the inline fetch budget is still served whole, page by page,
    each part of it fetched when the pages reach it."""
    sim = create_simulator(seed=3)
    params = {
        "start_time": "2025-10-01T00:00:00",
        "end_time": "2025-10-03T00:00:00",
        "page_size": "5000",
        "raw_data": "true",
    }
    theirs = await upstream_pages(sim, params)
    site_points = len(sim.sites[2].collecting)
    budget = site_points * 288 // 3  # about a third of a day of the site
    tight = dataclasses.replace(settings, inline_fetch_samples=budget)
    async with api_client(tight, sim) as api:
        ours = await pages_of(api, params)
    assert decoded(ours) == decoded(theirs)


async def test_settled_pages_are_kept_whole_per_caller_until_their_data_changes(
    settings: Settings,
) -> None:
    sim = create_simulator(seed=3)
    params = {
        "start_time": "2025-10-01T00:00:00",
        "end_time": "2025-10-02T00:00:00",  # whole days: final once read
        "page_size": "5000",
        "raw_data": "true",
    }
    theirs = await upstream_pages(sim, params)
    identity = {**AUTH, "Accept-Encoding": "identity"}
    zstd = {**AUTH, "Accept-Encoding": "zstd"}
    app = create_app(settings, upstream=sim_client(sim))
    async with app.router.lifespan_context(app) as state:
        assert state is not None
        services: OpenedServices = state["services"]

        async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = dict(state)
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://tsgate") as api:
            cold = await answers_of(api, params, identity)
            requests = sim.stats.requests
            warm = await answers_of(api, params, identity)
            assert sim.stats.requests == requests  # nothing asked upstream, not even access
            await answers_of(api, params, zstd)
            zstd_warm = await answers_of(api, params, zstd)
            other = await api.get(
                URL, params=params, headers={**identity, "Authorization": "Bearer u"}
            )
            await services.reader.generations.bump("elm_school")  # served samples changed
            moved = await api.get(URL, params=params, headers=identity)
    assert [r.content for r in warm] == [r.content for r in cold]
    assert decoded([r.content for r in warm]) == decoded(theirs)
    assert all(r.headers.get("x-cache-status") != "HIT" for r in cold)
    assert all(r.headers.get("x-cache-status") == "HIT" for r in warm)
    assert all("content-encoding" not in r.headers for r in warm)
    # another encoding is its own entry, sent compressed; it decodes to the same page
    assert all(r.headers.get("x-cache-status") == "HIT" for r in zstd_warm)
    assert all(r.headers["content-encoding"] == "zstd" for r in zstd_warm)
    assert [r.content for r in zstd_warm] == [r.content for r in cold]
    # another caller's token never gets this caller's kept page; a new data version is
    # cut again from the store
    assert other.headers.get("x-cache-status") != "HIT" and other.content == cold[0].content
    assert moved.headers.get("x-cache-status") != "HIT" and moved.content == cold[0].content


async def test_pages_still_changing_are_not_kept(settings: Settings) -> None:
    """A page reaching "now" is kept no longer than the open TTL (here none). The range
    lies within the settle time of now (2 h), so every page of it may still change (an
    older page would be settled history, which is kept)."""
    settings = dataclasses.replace(settings, open_ttl_s=0)
    sim = create_simulator(seed=3)
    now_ms = int(time.time() * 1000)
    params = {
        "start_time": _iso(now_ms - 90 * 60_000),
        "end_time": _iso(now_ms),
        "page_size": "1000",
        "raw_data": "true",
    }
    async with api_client(settings, sim) as api:
        await answers_of(api, params)
        again = await answers_of(api, params)
    assert all(r.headers.get("x-cache-status") != "HIT" for r in again)


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000))
