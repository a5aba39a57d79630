"""The drop-in site stream read cold: the requested range is fetched once, before the
first page, and every page is then cut from what was stored — equal to upstream's own
pages, cursors and all."""

from __future__ import annotations

import dataclasses
from typing import Any

import httpx
import msgspec
import pytest

from tests.asgi import api_client
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": "Bearer t"}
URL = "/api/sites/elm_school/timeseries/paginated"


async def pages_of(client: httpx.AsyncClient, params: dict[str, str]) -> list[bytes]:
    """Every page's body, following ``next_cursor``."""
    pages: list[bytes] = []
    query = dict(params)
    for _ in range(500):
        r = await client.get(URL, params=query, headers=AUTH)
        assert r.status_code == 200, r.text
        pages.append(r.content)
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
