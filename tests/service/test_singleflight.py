"""Fetches are single-flight across processes that share a cache (Redis)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid

import pytest

from tests.asgi import sim_client
from tests.clock import OCT1
from tests.conftest import service_url
from tsgate.core.model import MS_PER_DAY
from tsgate.series.singleflight import FetchLocks
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator
from tsgate.wiring import open_services

pytestmark = pytest.mark.anyio


async def two_processes_read(settings: Settings, names_n: int = 5) -> tuple[int, int]:
    """Two sets of services (as two server processes would have) on one database, object
    folder and cache, reading the same cold range at once; upstream requests per route."""
    sim = create_simulator(seed=3)
    sim.faults.latency_s = 0.05  # both readers are surely mid-fetch together
    names = [p.name for p in sim.sites[2].collecting[:names_n]]
    async with (
        open_services(settings, upstream=sim_client(sim)) as one,
        open_services(settings, upstream=sim_client(sim)) as two,
    ):
        reads = [
            s.reader.read("elm_school", names, OCT1, OCT1 + 3 * MS_PER_DAY, token="t")
            for s in (one, two, one, two)
        ]
        results = await asyncio.gather(*reads)
    first = results[0][0]
    for found, _ in results[1:]:
        assert all(found[n].v.tolist() == first[n].v.tolist() for n in names)
    assert all(len(first[n]) > 2 * 280 for n in names)
    return sim.stats.by_route["point_timeseries"], len(names)


async def test_one_upstream_fetch_per_point_across_processes(settings: Settings) -> None:
    url = f"{service_url('redis')}?prefix=tsgate-test-{uuid.uuid4().hex[:8]}:"
    fetches, points = await two_processes_read(dataclasses.replace(settings, cache_url=url))
    assert fetches == points


async def test_without_a_shared_cache_each_process_fetches(settings: Settings) -> None:
    # the contrast: memory:// locks are per process, so both processes go upstream
    fetches, points = await two_processes_read(settings)
    assert fetches == 2 * points


def test_lock_keys_are_hashed_bounded_and_shared_by_overlapping_reads() -> None:
    locks = FetchLocks(buckets=64)
    many = [f"ses/site/dev/analogValue/{i}" for i in range(500)]
    keys = locks.keys("site/../x", many)
    assert len(keys) <= 64 and keys == sorted(set(keys))
    assert all("/" not in k.removeprefix("fetch:") and ".." not in k for k in keys)
    assert set(locks.keys("site/../x", many[7:9])) <= set(keys)
