"""The shared live poller against the simulator's truth, under random visibility delays
and jitter (late samples, out of time order): every sample in exactly one batch, and the
first answer plus the batches are exactly what upstream serves."""

from __future__ import annotations

import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.asgi import sim_client
from tests.clock import NOW, Clock
from tests.sse import Ticks
from tsgate.core.model import MS_PER_HOUR
from tsgate.series.live import LiveHub, LiveLimits, Viewer
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator
from tsgate.wiring import open_services

pytestmark = pytest.mark.anyio


async def _run(delay_s: float, jitter_s: float, polls: int, seed: int) -> None:
    clock = Clock(NOW)
    sim = Simulator(seed=seed, now_ms=clock)
    sim.faults.visibility_delay_s = delay_s
    sim.faults.visibility_jitter_s = jitter_s
    names = [p.name for p in sim.sites[0].collecting[:4]]
    site = sim.sites[0].name
    with tempfile.TemporaryDirectory() as tmp:
        conf = Settings(
            database_url=f"sqlite:///{tmp}/t.db",
            objects_url=f"file://{tmp}/objects",
            recheck_interval_s=0,
            maintenance_interval_s=0,
        )
        async with open_services(conf, upstream=sim_client(sim), clock_ms=clock) as services:
            ticks = Ticks(clock, lambda: bool(services.live.pollers))
            hub: LiveHub = services.live
            hub.sleep = ticks.sleep
            viewer = hub.admit("caller")
            poller = await hub.poller_for(site, names, "scope", "t", viewer)
            start = NOW - MS_PER_HOUR
            found, _ = await poller.join(viewer, start)
            got = {n: found[n].t_ms.tolist() for n in names}
            for _ in range(polls):
                await ticks.tick()
            while not viewer.queue.empty():
                push = viewer.queue.get_nowait()
                if push.kind != "samples" or push.seq <= viewer.since:
                    continue
                for name, s in push.samples.items():
                    assert s.t_ms.tolist() == sorted(set(s.t_ms.tolist()))  # in time order
                    got[name] += s.t_ms.tolist()
            for name in names:
                truth_us, _ = sim.truth(name, start, clock.ms + 1, as_of_ms=clock.ms)
                # every sample once: none twice, none missing
                assert len(got[name]) == len(set(got[name]))
                assert sorted(got[name]) == (truth_us // 1000).tolist()
            hub.leave(poller, viewer)
            assert hub.pollers == {}


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    delay_s=st.floats(0, 300),
    jitter_s=st.floats(0, 300),  # late by at most 600 s: within the 900 s look-back
    polls=st.integers(1, 8),
    seed=st.integers(1, 50),
)
def test_every_sample_is_in_exactly_one_batch(
    delay_s: float, jitter_s: float, polls: int, seed: int
) -> None:
    import asyncio

    asyncio.run(_run(delay_s, jitter_s, polls, seed))


async def test_two_viewers_of_one_point_set_share_one_poller_and_its_batches() -> None:
    clock = Clock(NOW)
    sim = Simulator(seed=2, now_ms=clock)
    sim.faults.visibility_delay_s = 90
    names = [p.name for p in sim.sites[0].collecting[:2]]
    with tempfile.TemporaryDirectory() as tmp:
        conf = Settings(
            database_url=f"sqlite:///{tmp}/t.db",
            objects_url=f"file://{tmp}/objects",
            recheck_interval_s=0,
        )
        async with open_services(conf, upstream=sim_client(sim), clock_ms=clock) as services:
            hub = services.live
            ticks = Ticks(clock, lambda: bool(hub.pollers))
            hub.sleep = ticks.sleep
            a, b = hub.admit("x"), hub.admit("x")
            pa = await hub.poller_for(sim.sites[0].name, names, "s", "t", a)
            pb = await hub.poller_for(sim.sites[0].name, list(reversed(names)), "s", "t", b)
            assert pa is pb  # the point set, whatever its order
            await pa.join(a, None)
            await ticks.tick()
            await pb.join(b, None)  # joins later: takes only what comes after it
            await ticks.tick()
            seqs_a = [p.seq for p in _drain(a) if p.kind == "samples" and p.seq > a.since]
            seqs_b = [p.seq for p in _drain(b) if p.kind == "samples" and p.seq > b.since]
            assert seqs_b and set(seqs_b) < set(seqs_a)
            hub.leave(pa, a)
            assert hub.pollers  # b still watches
            hub.leave(pb, b)
            hub.leave(pb, b)  # twice counts once
            assert hub.pollers == {} and hub.viewers == 0
            assert hub.admit("x") is not None and hub.viewers == 1
            assert np.all(np.diff([*seqs_a]) > 0)


def _drain(viewer: Viewer) -> list:  # type: ignore[type-arg]
    out = []
    while not viewer.queue.empty():
        out.append(viewer.queue.get_nowait())
    return out


async def test_the_poll_interval_is_the_points_collect_interval_within_bounds() -> None:
    clock = Clock(NOW)
    sim = Simulator(seed=2, now_ms=clock)
    site = sim.sites[0].name
    names = [p.name for p in sim.sites[0].collecting[:2]]
    with tempfile.TemporaryDirectory() as tmp:
        conf = Settings(database_url=f"sqlite:///{tmp}/t.db", objects_url=f"file://{tmp}/objects")
        async with open_services(conf, upstream=sim_client(sim), clock_ms=clock) as services:
            await services.catalog.fresh(site, "t")
            profiles = await services.reader.profiles(site, names)
            cadences = {p.cadence_ms for p in profiles.values()}
            assert cadences == {300_000}  # the catalog's collect_interval, 300 s
            for limits, expected in [
                (LiveLimits(), 300_000),
                (LiveLimits(min_poll_ms=600_000), 600_000),  # bounded below
                (LiveLimits(poll_ms=20_000), 20_000),  # TSGATE_LIVE_POLL_S
                (LiveLimits(poll_ms=1_000, min_poll_ms=5_000), 5_000),
            ]:
                hub = LiveHub(services.reader, limits)
                viewer = hub.admit("c")
                poller = await hub.poller_for(site, names, "s", "t", viewer)
                assert poller.interval_ms == expected
                hub.leave(poller, viewer)
                await poller.stop()
