"""The caching read policy against the simulator, with real SQLite and a local folder."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import numpy as np
import pytest

from tests.asgi import sim_client
from tests.clock import NOW, OCT1, Clock
from tsgate.core import extents, rollups
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR, Series
from tsgate.errors import UpstreamUnavailable
from tsgate.settings import Settings
from tsgate.upstream.breaker import CircuitBreaker
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.wire.ace import parse_time
from tsgate.wiring import OpenedServices, open_services

pytestmark = pytest.mark.anyio


@dataclass
class Env:
    sim: Simulator
    services: OpenedServices
    clock: Clock

    def names(self, n: int, site: int = 2) -> list[str]:
        return [p.name for p in self.sim.sites[site].collecting[:n]]


@pytest.fixture
async def env(settings: Settings) -> AsyncIterator[Env]:
    clock = Clock(NOW)
    sim = create_simulator(seed=3, now_ms=clock)
    upstream = sim_client(sim, breaker=CircuitBreaker(5, 30.0, clock=lambda: clock.ms / 1000))
    async with open_services(settings, upstream=upstream, clock_ms=clock) as services:
        yield Env(sim, services, clock)


async def read(env: Env, names: list[str], start: int, end: int, site: str = "elm_school"):  # type: ignore[no-untyped-def]
    return await env.services.reader.read(site, names, start, end, token="t")


async def test_second_read_makes_zero_upstream_requests(env: Env) -> None:
    names = env.names(3)
    first, stats1 = await read(env, names, OCT1, OCT1 + 2 * MS_PER_DAY)
    assert stats1.cache_status == "MISS" and stats1.upstream_requests > 0
    before = env.sim.stats.requests
    second, stats2 = await read(env, names, OCT1, OCT1 + 2 * MS_PER_DAY)
    assert env.sim.stats.requests == before
    assert stats2.cache_status == "HIT" and stats2.upstream_requests == 0
    for n in names:
        assert second[n].t_ms.tolist() == first[n].t_ms.tolist()
        assert second[n].v.tolist() == first[n].v.tolist()
    # and it is exactly what upstream has
    direct = await env.services.upstream.points_series(
        names, OCT1, OCT1 + 2 * MS_PER_DAY, token="t"
    )
    for n in names:
        assert first[n].v.tolist() == direct[n].v.tolist()
    # a sub-range is served from the same chunks
    _, stats3 = await read(env, names, OCT1 + 5 * MS_PER_HOUR, OCT1 + 30 * MS_PER_HOUR)
    assert stats3.upstream_requests == 0


async def test_sliding_window_fetches_only_the_new_minutes(env: Env) -> None:
    names = env.names(4)
    await read(env, names, NOW - MS_PER_DAY, NOW)
    env.clock.ms += MS_PER_HOUR
    samples_before = env.sim.stats.samples
    got, stats = await read(env, names, env.clock.ms - MS_PER_DAY, env.clock.ms)
    assert stats.cache_status == "PARTIAL"
    fetched = env.sim.stats.samples - samples_before
    # one hour = 12 sweeps per point, plus the look-back (15 min = 3 sweeps) that the
    # refresh reads again for samples that became visible late (a sweep may straddle)
    assert 4 * 13 <= fetched <= 4 * 16
    for n in names:
        t = got[n].t_ms
        assert t.size > 250 and bool(np.all(np.diff(t) > 0))
        assert t[-1] >= env.clock.ms - 6 * 60_000
    # within the open chunk's TTL a refresh goes nowhere
    env.clock.ms += 30_000
    requests = env.sim.stats.requests
    await read(env, names, env.clock.ms - MS_PER_DAY, env.clock.ms)
    assert env.sim.stats.requests == requests


async def test_final_chunks_are_never_refetched(env: Env) -> None:
    names = env.names(2)
    await read(env, names, OCT1, OCT1 + MS_PER_DAY)
    rows = await env.services.database.chunks.overlapping(
        "elm_school", names, "raw", OCT1, OCT1 + MS_PER_DAY
    )
    assert rows and all(r.final and r.complete for r in rows)
    env.clock.ms += 400 * MS_PER_DAY  # long past any TTL
    samples, point_reads = env.sim.stats.samples, env.sim.stats.by_route["point_timeseries"]
    _, stats = await read(env, names, OCT1, OCT1 + MS_PER_DAY)
    assert stats.cache_status == "HIT"
    # only the token's access was asked again (its grant expired), never the data
    assert env.sim.stats.samples == samples
    assert env.sim.stats.by_route["point_timeseries"] == point_reads
    assert env.sim.stats.by_route["site"] == 2


async def test_historic_window_shifted_by_an_hour_fetches_that_hour(env: Env) -> None:
    names = env.names(2)
    await read(env, names, OCT1, OCT1 + MS_PER_DAY)
    before = env.sim.stats.samples
    await read(env, names, OCT1 + MS_PER_HOUR, OCT1 + MS_PER_DAY + MS_PER_HOUR)
    assert 2 * 10 <= env.sim.stats.samples - before <= 2 * 13


def truth(env: Env, name: str, start: int, end: int) -> tuple[list[int], list[float]]:
    """What upstream holds of ``name`` in ``[start, end)``, straight from the model."""
    t_us, v = env.sim.truth(name, start, end)
    return (t_us // 1000).tolist(), v.tolist()


async def test_a_failed_fetch_keeps_the_whole_months_and_is_a_clear_error(env: Env) -> None:
    names = env.names(3)
    start, end = OCT1 - 60 * MS_PER_DAY, OCT1 + 35 * MS_PER_DAY
    # four months of reads: let the first few succeed, then fail the rest
    env.sim.faults.fail_after = 2
    with pytest.raises(UpstreamUnavailable):
        await read(env, names, start, end)
    store = env.services.reader.store
    rows = await store.rows("elm_school", names, start, end)
    assert len({(r.point, extents.month_floor(r.period_start_ms)) for r in rows}) < 3 * 4
    # what was stored is exactly upstream's samples over all it claims to cover
    for row in rows:
        assert row.coverage == ((row.period_start_ms, row.period_end_ms),)
        loaded = await store.load("elm_school", [row.point], [row], *row.coverage[0])
        got = loaded.series[row.point]
        assert (got.t_ms.tolist(), got.v.tolist()) == truth(env, row.point, *row.coverage[0])
    env.sim.faults.fail_after = None
    env.clock.ms += 30_000
    samples = env.sim.stats.samples
    got_all, _ = await read(env, names, start, end)
    for n in names:
        assert (got_all[n].t_ms.tolist(), got_all[n].v.tolist()) == truth(env, n, start, end)
    # the second read fetched only what the first did not store
    stored = sum(r.samples for r in rows)
    assert env.sim.stats.samples - samples == sum(len(s) for s in got_all.values()) - stored


async def test_concurrent_identical_cold_reads_fetch_once(env: Env) -> None:
    names = env.names(5)
    results = await asyncio.gather(
        *(read(env, names, OCT1, OCT1 + 3 * MS_PER_DAY) for _ in range(20))
    )
    assert (
        env.sim.stats.by_route["point_timeseries"] == 5
    )  # one read per point (3 days: one window)
    first = results[0][0]
    for found, _ in results[1:]:
        for n in names:
            assert found[n].v.tolist() == first[n].v.tolist()


async def test_many_points_use_the_site_stream_when_upstream_is_latency_bound(env: Env) -> None:
    names = env.names(45, site=1)
    # the stream pays when the site is known to be small next to the points asked, and
    # upstream's cost is its latency (the stream's pages come one after another)
    await env.services.catalog.fresh("office_tower", "t")
    reader = env.services.reader
    reader.policy = replace(reader.policy, upstream_sample_us=0.0, site_page_size=500_000)
    await read(env, names, OCT1, OCT1 + MS_PER_DAY, site="office_tower")
    assert env.sim.stats.by_route["paginated"] >= 1
    assert env.sim.stats.by_route["point_timeseries"] == 0
    others = [p.name for p in env.sim.sites[1].collecting[45:60]]
    requests = env.sim.stats.requests
    got, stats = await read(env, others, OCT1, OCT1 + MS_PER_DAY, site="office_tower")
    assert env.sim.stats.requests == requests and stats.cache_status == "HIT"
    assert all(len(s) > 250 for s in got.values())


async def test_transfer_bound_reads_of_many_points_go_in_parallel_batches(env: Env) -> None:
    names = env.names(45, site=1)
    await env.services.catalog.fresh("office_tower", "t")
    got, _ = await read(env, names, OCT1, OCT1 + MS_PER_DAY, site="office_tower")
    # one page after another would take longer than batches side by side
    assert env.sim.stats.by_route["paginated"] == 0
    assert 1 < env.sim.stats.by_route["get_timeseries"] <= 8
    truth = await env.services.upstream.points_series(names, OCT1, OCT1 + MS_PER_DAY, token="t")
    for n in names:
        assert got[n].t_ms.tolist() == truth[n].t_ms.tolist()


async def test_a_few_points_of_a_large_site_are_read_per_point(env: Env) -> None:
    await env.services.catalog.fresh("demo_campus", "t")
    names = env.names(45, site=0)
    await read(env, names, OCT1, OCT1 + 2 * MS_PER_DAY, site="demo_campus")
    assert env.sim.stats.by_route["paginated"] == 0
    data = env.sim.stats.by_route["point_timeseries"] + env.sim.stats.by_route["get_timeseries"]
    assert 1 < data <= 45  # batches of points, a few requests per concurrency slot


async def test_settled_months_are_one_chunk_and_rollups_match_the_samples(env: Env) -> None:
    names = env.names(2)
    start = parse_time("t", "2025-08-01T00:00:00")
    end = parse_time("t", "2025-10-01T00:00:00")
    got, _ = await read(env, names, start, end)
    rows = await env.services.database.chunks.overlapping("elm_school", names, "raw", start, end)
    assert len(rows) == 4  # two months x two points, not 122 day chunks
    buckets, _ = await env.services.reader.read_rollups(
        "elm_school", names, "1h", start, end, token="t"
    )
    for n in names:
        expected = rollups.bucketize(got[n], MS_PER_HOUR)
        assert buckets[n].start_ms.tolist() == expected.start_ms.tolist()
        assert np.allclose(rollups.avg(buckets[n]), rollups.avg(expected))
        assert buckets[n].max.tolist() == expected.max.tolist()


async def test_day_chunks_compact_into_a_month_once_settled(env: Env) -> None:
    name = env.names(1)
    start = parse_time("t", "2025-09-01T00:00:00")
    reader, blobs = env.services.reader, env.services.database.rollups
    for day in range(30):  # a month read one day at a time, as dashboards do
        await read(env, name, start + day * MS_PER_DAY, start + (day + 1) * MS_PER_DAY)
        if day == 9:  # a half-hour zone's chart builds the month's 15-minute blob
            await reader.read_rollups(
                "elm_school", name, "15m", start, start + MS_PER_DAY, token="t"
            )
            assert len(await blobs.get("elm_school", name, "15m", start, start + 1)) == 1
    # the days written after it, and the compaction, kept it in step
    quarters = await reader.store.rollups("elm_school", name, "15m", start, start + 30 * MS_PER_DAY)
    t_us, v = env.sim.truth(name[0], start, start + 30 * MS_PER_DAY)
    want = rollups.bucketize(Series(name[0], t_us // 1000, v), 15 * 60_000)
    assert quarters[name[0]].start_ms.tolist() == want.start_ms.tolist()
    assert quarters[name[0]].count.tolist() == want.count.tolist()
    assert quarters[name[0]].max.tolist() == want.max.tolist()
    rows = await env.services.database.chunks.overlapping(
        "elm_school", name, "raw", start, start + 30 * MS_PER_DAY
    )
    assert len(rows) == 1 and rows[0].period_end_ms - rows[0].period_start_ms == 30 * MS_PER_DAY
    keys = [o.key async for o in env.services.objects.list("chunks/")]
    assert len(keys) == 1
    got, stats = await read(env, name, start, start + 30 * MS_PER_DAY)
    assert stats.upstream_requests == 0 and len(got[name[0]]) > 29 * 280
