"""A cold drop-in read answered while the site stream still arrives: pages come as soon
as the stream has carried them, equal to upstream's and to the simulator's truth; the
fetch goes on (and is stored) when the caller leaves, and an upstream failing halfway
stores nothing."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import numpy as np
import pytest

from tests.api.test_dropin_stream import AUTH, URL, answers_of, decoded, pages_of, upstream_pages
from tests.asgi import lifespan_client, sim_client
from tsgate.api import prefill
from tsgate.app import create_app
from tsgate.errors import UpstreamUnavailable
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.upstream.visibility import Outage
from tsgate.wire.ace import parse_times_us
from tsgate.wiring import Services

pytestmark = pytest.mark.anyio
SITE = "elm_school"
START_MS = 1_759_276_800_000  # 2025-10-01T00:00:00Z
END_MS = START_MS + 86_400_000
PARAMS = {
    "start_time": "2025-10-01T00:00:00",
    "end_time": "2025-10-02T00:00:00",
    "page_size": "1000",
    "raw_data": "true",
}


@dataclasses.dataclass
class Gateway:
    api: httpx.AsyncClient
    services: Services
    state: Any  # the app's state, where its background fills live


@contextlib.asynccontextmanager
async def gateway(settings: Settings, sim: Simulator) -> AsyncIterator[Gateway]:
    # upstream pages of 5,000 rows: the site's day is a stream of 7 pages (still fewer
    # rounds than per-point reads), the caller's of 1,000 rows 31
    conf = dataclasses.replace(settings, upstream_page_size=5000)
    app = create_app(conf, upstream=sim_client(sim))
    async with lifespan_client(app) as (api, state):
        yield Gateway(api, state["services"], app.state)


def rows_by_point(pages: list[bytes]) -> dict[str, tuple[list[int], list[float]]]:
    """Every row of the pages, per point: times (µs) and values."""
    out: dict[str, tuple[list[int], list[float]]] = {}
    for page in decoded(pages):
        for row in page["point_samples"]:
            t, v = out.setdefault(row["name"], ([], []))
            t_ms, us = parse_times_us([row["time"]])
            t.append(int(t_ms[0]) * 1000 + int(us[0]))
            v.append(float(row["value"]))
    return out


async def test_pages_come_while_the_stream_arrives_equal_to_upstream_and_the_truth(
    settings: Settings,
) -> None:
    sim = create_simulator(seed=3)
    theirs = await upstream_pages(sim, PARAMS)
    direct_samples = sim.stats.samples
    sim.stats.reset()
    sim.faults.latency_s = 0.1  # the stream takes 0.7 s; the first page needs 1 of its pages
    # one stream (parts side by side are tests/service/test_site_stream_parts.py)
    async with gateway(dataclasses.replace(settings, upstream_concurrency=1), sim) as gw:
        first = await gw.api.get(URL, params=PARAMS, headers=AUTH)
        streamed_at_first = sim.stats.by_route["paginated"]
        ours = await pages_of(gw.api, PARAMS)
        await prefill.settled(gw.state)
        stored = sim.stats.samples
        names = [p.name for p in sim.site_by_name[SITE].collecting]
        rows = await gw.services.reader.rows(SITE, names, START_MS, END_MS)
        sim.faults.latency_s = 0.0
        again = await answers_of(gw.api, PARAMS)
    # the first page did not wait for the whole day
    assert first.status_code == 200 and first.content == ours[0]
    assert 0 < streamed_at_first < sim.stats.by_route["paginated"]
    # upstream's pages, row for row and cursor for cursor, cold and warm
    assert decoded(ours) == decoded(theirs)
    assert decoded([r.content for r in again]) == decoded(theirs)
    # pages cut from the stream were kept once the day was stored (final: kept on)
    assert all(r.headers.get("x-cache-status") == "HIT" for r in again)
    # the day was fetched once (every page shared the one stream) and stored whole
    assert stored == direct_samples and sim.stats.samples == stored
    assert {r.point for r in rows} == set(names)
    assert all(r.final and r.complete for r in rows)
    # and what was served is what the simulator's model holds
    served = rows_by_point(ours)
    for name in names:
        t_us, v = sim.truth(name, START_MS, END_MS)
        got_t, got_v = served.get(name, ([], []))
        assert got_t == t_us.tolist(), name
        np.testing.assert_array_equal(np.array(got_v), v)


async def test_every_page_is_answered_before_the_day_is_stored_the_left_out_points_too(
    settings: Settings,
) -> None:
    """Points the stream does not carry (nothing reported all day) are read per point;
    the pages wait for those reads, not for the store: with every write held back, the
    whole read is answered, equal to upstream's pages, and stored once released."""
    sim = create_simulator(seed=3)
    silent = tuple(p.name for p in sim.site_by_name[SITE].collecting[:5])
    day_ms = END_MS - START_MS
    sim.faults.outages = [  # their gateway offline all day, its backlog never sent
        Outage(START_MS - day_ms, END_MS + day_ms, backlog_ms=None, site=SITE, points=silent)
    ]
    theirs = await upstream_pages(sim, PARAMS)
    sim.stats.reset()
    async with gateway(settings, sim) as gw:
        store = gw.services.reader.store
        release, writes = asyncio.Event(), []
        unheld = store.write

        async def held(*args: Any, **kwargs: Any) -> Any:
            writes.append(len(args[1]))
            await release.wait()
            return await unheld(*args, **kwargs)

        store.write = held  # type: ignore[method-assign]
        ours = await asyncio.wait_for(pages_of(gw.api, PARAMS), timeout=60)
        assert writes and not release.is_set()  # the stream's points wait to be written
        alone = sim.stats.by_route["get_timeseries"] + sim.stats.by_route["point_timeseries"]
        release.set()
        await prefill.settled(gw.state)
        names = [p.name for p in sim.site_by_name[SITE].collecting]
        rows = await gw.services.reader.rows(SITE, names, START_MS, END_MS)
        fetched = sim.stats.samples
        again = await pages_of(gw.api, PARAMS)
    assert alone > 0  # the silent points were read on their own
    assert not {row["name"] for page in decoded(ours) for row in page["point_samples"]} & set(
        silent
    )
    assert decoded(ours) == decoded(theirs)
    assert decoded(again) == decoded(theirs) and sim.stats.samples == fetched
    assert {r.point for r in rows} == set(names) and all(r.final for r in rows)


async def test_a_left_out_point_whose_read_fails_fails_the_pages_and_the_stream_is_kept(
    settings: Settings,
) -> None:
    """The points the stream left out are read on their own while the stream's points
    wait to be written; when those reads fail, the pages waiting for them get upstream's
    error (never a page without them), the stream's points are still stored, and the
    next read asks upstream only for the left-out points."""
    sim = create_simulator(seed=3)
    silent = tuple(p.name for p in sim.site_by_name[SITE].collecting[:5])
    day_ms = END_MS - START_MS
    sim.faults.outages = [
        Outage(START_MS - day_ms, END_MS + day_ms, backlog_ms=None, site=SITE, points=silent)
    ]
    theirs = await upstream_pages(sim, PARAMS)
    sim.stats.reset()
    async with gateway(settings, sim) as gw:
        store, upstream = gw.services.reader.store, gw.services.reader.upstream
        release, writes, refused = asyncio.Event(), [], []
        unheld, reads = store.write, upstream.points_request

        async def held(*args: Any, **kwargs: Any) -> Any:
            writes.append(len(args[1]))
            await release.wait()
            return await unheld(*args, **kwargs)

        async def failing(names: Any, *args: Any, **kwargs: Any) -> Any:
            refused.append(tuple(names))
            raise UpstreamUnavailable("upstream answered HTTP 503")

        store.write = held  # type: ignore[method-assign]
        upstream.points_request = failing  # type: ignore[method-assign]
        query, served, failed = dict(PARAMS), [], None
        for _ in range(100):
            r = await asyncio.wait_for(gw.api.get(URL, params=query, headers=AUTH), 30)
            if r.status_code != 200:
                failed = r
                break
            served.append(r.content)
            body = msgspec.json.decode(r.content)
            if not body["has_more"]:
                break
            query["cursor"] = body["next_cursor"]
        assert writes and not release.is_set()  # the stream's write was pending throughout
        release.set()
        await prefill.settled(gw.state)
        names = [p.name for p in sim.site_by_name[SITE].collecting]
        rows = await gw.services.reader.rows(SITE, names, START_MS, END_MS)
        upstream.points_request = reads  # type: ignore[method-assign]
        streamed = sim.stats.by_route["paginated"]
        sim.stats.reset()
        again = await pages_of(gw.api, PARAMS)
    assert refused and {n for batch in refused for n in batch} <= set(silent)
    assert failed is not None and failed.status_code == 502  # upstream's failure, at once
    assert failed.headers["content-type"].startswith("application/problem+json")
    assert decoded(served) == decoded(theirs)[: len(served)]  # upstream's, up to the failure
    stored = {r.point for r in rows}
    assert stored == set(names) - set(silent)  # the stream's points kept, the others not
    assert all(r.final for r in rows)
    assert streamed > 0 and sim.stats.by_route["paginated"] == 0  # the stream not read again
    assert sim.stats.by_route["get_timeseries"] + sim.stats.by_route["point_timeseries"] > 0
    assert decoded(again) == decoded(theirs)


async def test_a_caller_leaving_mid_stream_leaves_the_fetch_to_finish_and_be_stored(
    settings: Settings,
) -> None:
    sim = create_simulator(seed=3)
    theirs = await upstream_pages(sim, PARAMS)
    sim.stats.reset()
    sim.faults.latency_s = 0.2
    async with gateway(dataclasses.replace(settings, upstream_concurrency=1), sim) as gw:
        asked = asyncio.ensure_future(gw.api.get(URL, params=PARAMS, headers=AUTH))
        while not sim.stats.by_route["paginated"]:  # noqa: ASYNC110 (the stream has begun)
            await asyncio.sleep(0.01)
        asked.cancel()  # the caller leaves while its page waits
        with pytest.raises(asyncio.CancelledError):
            await asked
        left_at = sim.stats.by_route["paginated"]
        await prefill.settled(gw.state)
        fetched = sim.stats.by_route["paginated"]
        sim.faults.latency_s = 0.0
        ours = await pages_of(gw.api, PARAMS)
    assert left_at < fetched == 7  # the whole stream was read, though nobody waited for it
    assert sim.stats.by_route["paginated"] == fetched  # and stored: nothing read again
    assert decoded(ours) == decoded(theirs)


async def test_an_upstream_failing_halfway_fails_the_waiting_pages_and_stores_nothing(
    settings: Settings,
) -> None:
    sim = create_simulator(seed=3)
    theirs = await upstream_pages(sim, PARAMS)
    sim.stats.reset()
    sim.faults.fail_after = 3  # the 4th upstream page of 7 on answers 500, retries too
    names = [p.name for p in sim.site_by_name[SITE].collecting]
    async with gateway(dataclasses.replace(settings, upstream_concurrency=1), sim) as gw:
        first = await gw.api.get(URL, params=PARAMS, headers=AUTH)
        failed: httpx.Response | None = None
        query = dict(PARAMS)
        body = msgspec.json.decode(first.content)
        served = [first.content]
        while body["has_more"]:
            query["cursor"] = body["next_cursor"]
            r = await gw.api.get(URL, params=query, headers=AUTH)
            if r.status_code != 200:
                failed = r
                break
            served.append(r.content)
            body = msgspec.json.decode(r.content)
        await prefill.settled(gw.state)
        rows = await gw.services.reader.rows(SITE, names, START_MS, END_MS)
        sim.faults.fail_after = None
        ours = await answers_of(gw.api, PARAMS)
    assert first.status_code == 200
    # what was served before the failure was upstream's own pages
    assert decoded(served) == decoded(theirs)[: len(served)]
    assert failed is not None and failed.status_code in (502, 503)
    assert failed.headers["content-type"].startswith("application/problem+json")
    assert rows == []  # no chunk of the failed stream was recorded, covered or not
    # pages served from it are not kept: read again (and fetched) once upstream is back
    assert ours[0].headers.get("x-cache-status") != "HIT"
    assert decoded([r.content for r in ours]) == decoded(theirs)
