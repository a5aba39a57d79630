"""Drop-in pages over random windows are the simulator's own pages byte for byte:
any start and end inside settled history, any page size, raw or 5-minute buckets, the
whole site or a few points, first reads and repeated (cached) ones alike."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator

import httpx
from hypothesis import HealthCheck, Phase, given, seed
from hypothesis import settings as examples
from hypothesis import strategies as st

from tests.asgi import api_client
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator
from tsgate.wire.ace import format_time

AUTH = {"Authorization": "Bearer t"}
NOW_MS = 1_759_400_000_000  # 2025-10-02T10:13:20Z: 2025-10-01 is settled history
DAY_START_MS = 1_759_276_800_000  # 2025-10-01T00:00:00Z
MINUTE_MS = 60_000
SITE = "elm_school"
PAGED = f"/sites/{SITE}/timeseries/paginated"
MAX_PAGES = 4  # per window: enough to cross cursors, few enough for many windows


@st.composite
def windows(draw: st.DrawFn) -> dict[str, str]:
    start_ms = DAY_START_MS + draw(st.integers(0, 23 * 60)) * MINUTE_MS + draw(st.integers(0, 999))
    length_ms = draw(st.integers(1, 180)) * MINUTE_MS + draw(st.integers(0, 59_999))
    params = {
        "start_time": format_time(start_ms),
        "end_time": format_time(min(start_ms + length_ms, DAY_START_MS + 86_400_000)),
        "page_size": str(draw(st.sampled_from([3, 10, 100, 1000, 5000]))),
        "raw_data": draw(st.sampled_from(["true", "false"])),
    }
    points = draw(st.sampled_from([None, 1, 3]))
    if points is not None:
        params["point_names"] = ",".join(f"#{i}" for i in range(points))  # named below
    return params


@contextlib.asynccontextmanager
async def clients(
    conf: Settings,
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, list[str]]]:
    sim = create_simulator(seed=1, now_ms=lambda: NOW_MS)
    transport = httpx.ASGITransport(app=sim)
    async with (
        api_client(conf, sim) as api,
        httpx.AsyncClient(transport=transport, base_url="http://sim/api", headers=AUTH) as direct,
    ):
        site = next(s for s in sim.sites if s.name == SITE)
        yield api, direct, [p.name for p in site.collecting]


def _named(params: dict[str, str], names: list[str]) -> dict[str, str]:
    if "point_names" not in params:
        return params
    count = params["point_names"].count("#")
    return {**params, "point_names": ",".join(names[:count])}


def test_random_windows_page_as_upstream_does_byte_for_byte(settings: Settings) -> None:
    with asyncio.Runner() as runner:
        stack = contextlib.AsyncExitStack()
        # hundreds of pages in a few seconds: what is compared is the pages, not the limiter
        unlimited = dataclasses.replace(settings, rate_limit_per_min=0)
        api, direct, names = runner.run(stack.enter_async_context(clients(unlimited)))
        compared = 0

        @examples(
            max_examples=25,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @seed(14)
        @given(windows(), st.booleans())
        def one(params: dict[str, str], again: bool) -> None:
            nonlocal compared
            compared += runner.run(_compare(api, direct, _named(params, names), again))

        try:
            one()
        finally:
            runner.run(stack.aclose())
        assert compared >= 25


@st.composite
def bucketed_walks(draw: st.DrawFn) -> dict[str, str]:
    """A window of 5-minute pages walked to its end: any start, up to two hours long."""
    start_ms = DAY_START_MS + draw(st.integers(0, 23 * 60)) * MINUTE_MS + draw(st.integers(0, 999))
    length_ms = draw(st.integers(1, 120)) * MINUTE_MS + draw(st.integers(0, 59_999))
    return {
        "start_time": format_time(start_ms),
        "end_time": format_time(min(start_ms + length_ms, DAY_START_MS + 86_400_000)),
        "page_size": str(draw(st.sampled_from([50, 100, 500, 1000, 5000]))),
        "raw_data": "false",
    }


def test_bucketed_pages_walked_on_their_own_cursors_are_upstreams_bytes(
    settings: Settings,
) -> None:
    """Every page of a 5-minute (``raw_data=false``) read, each side following its own
    cursors from the first page to the last: tsgate's pages, cursor strings included, are
    the simulator's byte for byte."""
    with asyncio.Runner() as runner:
        stack = contextlib.AsyncExitStack()
        unlimited = dataclasses.replace(settings, rate_limit_per_min=0)
        api, direct, _ = runner.run(stack.enter_async_context(clients(unlimited)))
        walked = 0

        @examples(
            max_examples=15,
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @seed(15)
        @given(bucketed_walks())
        def one(params: dict[str, str]) -> None:
            nonlocal walked
            walked += runner.run(_walk(api, direct, params))

        try:
            one()
        finally:
            runner.run(stack.aclose())
        assert walked >= 30  # pages with a cursor were compared, not only first pages


async def _walk(api: httpx.AsyncClient, direct: httpx.AsyncClient, params: dict[str, str]) -> int:
    """Both sides' pages of one window, each walked on its own cursors; how many pages."""
    mine_q, theirs_q = dict(params), dict(params)
    for pages in range(1, 10_000):
        theirs = await direct.get(PAGED, params=theirs_q)
        mine = await api.get("/api" + PAGED, params=mine_q, headers=AUTH)
        assert mine.status_code == theirs.status_code, (mine_q, mine.text[:300])
        if theirs.status_code != 200:
            return pages
        assert mine.content == theirs.content, (params, pages)
        body = theirs.json()
        if not body["has_more"]:
            return pages
        theirs_q["cursor"] = body["next_cursor"]
        mine_q["cursor"] = mine.json()["next_cursor"]
    raise AssertionError(f"{params}: no last page in sight")


async def _compare(
    api: httpx.AsyncClient, direct: httpx.AsyncClient, params: dict[str, str], again: bool
) -> int:
    """Pages of one window from both sides (twice from tsgate when ``again``); how many
    pages were compared."""
    if "point_names" in params:
        return await _compare_filtered(api, direct, params)
    query = dict(params)
    pages = 0
    for _ in range(MAX_PAGES):
        theirs = await direct.get(PAGED, params=query)
        for _ in range(2 if again else 1):
            mine = await api.get("/api" + PAGED, params=query, headers=AUTH)
            assert mine.status_code == theirs.status_code, (query, mine.text)
            if theirs.status_code != 200:  # refusals are problem+json, as everywhere
                continue
            assert mine.content == theirs.content, (query, pages)  # cursors too, both modes
        pages += 1
        if theirs.status_code != 200 or not theirs.json()["has_more"]:
            break
        query["cursor"] = theirs.json()["next_cursor"]
    return pages


async def _compare_filtered(
    api: httpx.AsyncClient, direct: httpx.AsyncClient, params: dict[str, str]
) -> int:
    """Upstream cannot filter by point: tsgate's pages, end to end, are upstream's whole
    window with only the named points' rows, in upstream's order and spelling."""
    names = set(params["point_names"].split(","))
    whole = {k: v for k, v in params.items() if k != "point_names"}
    theirs = await direct.get(PAGED, params={**whole, "page_size": "500000"})
    want = [] if theirs.status_code != 200 else theirs.json()["point_samples"]
    want = [r for r in want if r["name"] in names]
    query = dict(params)
    got: list[dict[str, str]] = []
    pages = 0
    for _ in range(1000):
        mine = await api.get("/api" + PAGED, params=query, headers=AUTH)
        pages += 1
        if mine.status_code == 404 and not want:
            return pages
        assert mine.status_code == 200, (query, mine.text)
        body = mine.json()
        got.extend(body["point_samples"])
        if not body["has_more"]:
            break
        query["cursor"] = body["next_cursor"]
    assert got == want, params
    return pages
