"""A rollup blob's version only grows, so no process keeps a decoded copy of a blob that
was replaced: not when two writes share a millisecond, nor when the clock stands still
or steps back (the decoded copies are keyed by it, here and in every other process)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.asgi import sim_client
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR, Series
from tsgate.series.rollupcache import Period, RollupCache, next_version
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator
from tsgate.wire.ace import parse_time
from tsgate.wiring import Services, open_services

pytestmark = pytest.mark.anyio
SITE, POINT = "elm_school", "p/one"
DAY = parse_time("s", "2026-03-02T00:00:00")
NOW = parse_time("now", "2026-06-01T00:00:00")


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    sim = create_simulator(seed=4, now_ms=lambda: NOW)
    async with open_services(settings, upstream=sim_client(sim), clock_ms=lambda: NOW) as s:
        yield s


def _day(values: list[float]) -> Period:
    """One day of hourly samples of ``POINT`` with these values, hour after hour."""
    t = DAY + np.arange(len(values), dtype=np.int64) * MS_PER_HOUR
    return Period(POINT, DAY, DAY + MS_PER_DAY, Series(POINT, t, np.array(values, dtype=float)))


async def _hourly_means(cache: RollupCache) -> list[float]:
    found = await cache.read(SITE, [POINT], "1h", DAY, DAY + MS_PER_DAY)
    b = found[POINT]
    return (b.sum / b.count).tolist()


@pytest.mark.parametrize("step_ms", [0, -5_000], ids=["same millisecond", "clock stepped back"])
async def test_a_second_process_never_serves_the_blob_another_replaced(
    services: Services, step_ms: int
) -> None:
    blobs = services.database.rollups
    # two processes over one database, each with its own decoded copies
    here, there = RollupCache(blobs, memory_bytes=1 << 20), RollupCache(blobs, memory_bytes=1 << 20)
    await here.update(SITE, [_day([1.0, 2.0, 3.0])], NOW)
    assert await there.read(SITE, [POINT], "1h", DAY, DAY + MS_PER_DAY)  # decoded there now
    assert await _hourly_means(there) == [1.0, 2.0, 3.0]
    # a late sample rewrites the day in the first process, at the same ms or earlier
    await here.update(SITE, [_day([1.0, 2.0, 3.0, 7.0])], NOW + step_ms)
    assert await _hourly_means(there) == [1.0, 2.0, 3.0, 7.0]
    assert await _hourly_means(here) == [1.0, 2.0, 3.0, 7.0]
    # and the versions stored only grew
    rows = await blobs.get(SITE, [POINT], "1h", DAY, DAY + MS_PER_DAY)
    assert [r.updated_at_ms for r in rows] == [NOW + 1]


@settings(max_examples=200, deadline=None)
@given(
    old=st.one_of(st.none(), st.integers(0, 2**53)),
    now=st.integers(0, 2**53),
)
def test_a_new_version_is_now_and_above_the_one_it_replaces(old: int | None, now: int) -> None:
    was = {} if old is None else {(POINT, DAY): old}
    got = next_version(was, POINT, DAY, now)
    assert got >= now
    assert old is None or got > old
    assert got == (now if old is None or now > old else old + 1)
