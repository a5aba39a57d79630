"""Rollup blobs of another format (or damaged) are rebuilt from the chunks, never misread."""

from __future__ import annotations

from collections.abc import AsyncIterator

import numpy as np
import pytest

from tests.asgi import sim_client
from tests.clock import Clock
from tsgate.core import rollups
from tsgate.core.codec import pack_columns
from tsgate.core.model import MS_PER_HOUR
from tsgate.database.rollups import RollupRow
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.wire.ace import parse_time
from tsgate.wiring import Services, open_services

pytestmark = pytest.mark.anyio
SITE = "pune_clinic"
START, END = parse_time("s", "2026-03-01T00:00:00"), parse_time("e", "2026-04-01T00:00:00")


@pytest.fixture
async def env(settings: Settings) -> AsyncIterator[tuple[Simulator, Services]]:
    clock = Clock(parse_time("now", "2026-06-01T00:00:00"))
    sim = create_simulator(seed=4, now_ms=clock)
    async with open_services(settings, upstream=sim_client(sim), clock_ms=clock) as services:
        yield sim, services


def _old_format(b: rollups.Buckets) -> bytes:
    """A blob as written before the format was recorded: no states, no format column."""
    columns = {f: getattr(b, f) for f in rollups.ARRAY_FIELDS}
    return pack_columns({"width_ms": np.array([b.width_ms], dtype=np.int64), **columns})


async def test_old_and_damaged_blobs_are_rebuilt_from_the_chunks(
    env: tuple[Simulator, Services],
) -> None:
    sim, services = env
    site = sim.site_by_name[SITE]
    mode = next(p.name for p in site.points if p.kind == "ahu_mode")
    temp = next(p.name for p in site.points if p.kind == "zone_temp_cov")
    names = [mode, temp]
    reader = services.reader
    samples, _ = await reader.read(SITE, names, START, END, token="t")
    first, _ = await reader.read_rollups(SITE, names, "1h", START, END, token="t")
    assert first[mode].has_states and first[mode].states.tolist() == [1.0, 2.0, 3.0, 4.0]
    # the stored blobs become what an older release wrote (and one is damaged)
    blobs = services.database.rollups
    stored = await blobs.get(SITE, names, "1h", START, END)
    assert {r.point for r in stored} == set(names)
    later = max(r.updated_at_ms for r in stored) + 1
    await blobs.put(
        [
            RollupRow(
                SITE,
                r.point,
                "1h",
                r.period_start_ms,
                _old_format(rollups.unpack(r.blob)) if r.point == mode else b"junk",
                later,
            )
            for r in stored
        ]
    )
    requests = sim.stats.requests
    again, _ = await reader.read_rollups(SITE, names, "1h", START, END, token="t")
    assert sim.stats.requests == requests  # rebuilt from the chunks, not fetched
    for name in names:
        want = rollups.bucketize(samples[name], MS_PER_HOUR)
        got = again[name]
        assert got.start_ms.tolist() == want.start_ms.tolist()
        assert got.count.tolist() == want.count.tolist()
        np.testing.assert_allclose(got.hold, want.hold, rtol=1e-12)
        assert got.has_states == want.has_states
        np.testing.assert_allclose(got.state_ms, want.state_ms, rtol=1e-12)
    # and stored again in the current format
    for r in await blobs.get(SITE, names, "1h", START, END):
        assert rollups.unpack(r.blob).width_ms == MS_PER_HOUR


async def test_months_written_before_the_15_minute_level_are_built_when_read(
    env: tuple[Simulator, Services],
) -> None:
    """An upgrade: months stored with hourly and daily blobs only get their 15-minute
    blobs from the chunks the first time a half-hour zone's days ask for them."""
    sim, services = env
    site = sim.site_by_name[SITE]
    names = [p.name for p in site.collecting[:3]]
    reader = services.reader
    samples, _ = await reader.read(SITE, names, START, END, token="t")
    blobs = services.database.rollups
    # a write stores hourly and daily blobs only: 15-minute ones are built when read
    assert not await blobs.get(SITE, names, "15m", START, END)
    assert len(await blobs.get(SITE, names, "1h", START, END)) == len(names)
    await blobs.delete(SITE, names, START, END)  # every level ...
    # ... and back the hourly and daily ones, as an older release wrote them
    for level, width in (("1h", MS_PER_HOUR), ("1d", 24 * MS_PER_HOUR)):
        await blobs.put(
            [
                RollupRow(
                    SITE, n, level, START, rollups.pack(rollups.bucketize(samples[n], width)), 1
                )
                for n in names
            ]
        )
    services.reader.store.forget(SITE)
    assert not await blobs.get(SITE, names, "15m", START, END)
    requests = sim.stats.requests
    got, _ = await reader.read_rollups(SITE, names, "15m", START, END, token="t")
    assert sim.stats.requests == requests
    for n in names:
        want = rollups.bucketize(samples[n], 15 * 60_000)
        assert got[n].start_ms.tolist() == want.start_ms.tolist() and len(want) > 2000
        np.testing.assert_allclose(got[n].sum, want.sum, rtol=1e-12)
    assert len(await blobs.get(SITE, names, "15m", START, END)) == len(names)
