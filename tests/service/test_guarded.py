"""The one wrapper around the ACE adapter: fan-out, breaker and counters, against the
simulator's model and its own request counts."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from tests.asgi import FAST_POLICY
from tests.clock import NOW, OCT1
from tsgate.core.model import MS_PER_DAY
from tsgate.errors import UpstreamCircuitOpen, UpstreamUnavailable
from tsgate.upstream import metering
from tsgate.upstream.ace import AceApi
from tsgate.upstream.breaker import CircuitBreaker
from tsgate.upstream.guarded import POINT_WINDOW_MS, GuardedUpstream
from tsgate.upstream.simulator import Simulator, create_simulator

pytestmark = pytest.mark.anyio


def guarded(sim: Simulator, breaker: CircuitBreaker | None = None) -> GuardedUpstream:
    api = AceApi("http://simulator/api", FAST_POLICY, transport=httpx.ASGITransport(app=sim))
    return GuardedUpstream(api, breaker or CircuitBreaker(5, 30.0))


async def test_long_reads_are_month_windows_whose_union_is_upstreams_truth() -> None:
    sim = create_simulator(seed=2, now_ms=lambda: NOW)
    names = [p.name for p in sim.sites[2].collecting[:2]]
    start, end = OCT1 - 40 * MS_PER_DAY, OCT1 + 30 * MS_PER_DAY  # 70 days: 3 windows each
    up = guarded(sim)
    with metering.metered() as caller:
        try:
            got = await up.points_series(names, start, end, token="t")
        finally:
            await up.aclose()
    windows = -(-(end - start) // POINT_WINDOW_MS)
    assert windows == 3 and sim.stats.by_route["point_timeseries"] == len(names) * windows
    for name in names:
        t_us, v = sim.truth(name, start, end)
        assert got[name].t_ms.tolist() == (t_us // 1000).tolist()
        assert np.array_equal(got[name].v, v, equal_nan=True)
    # the counters are the simulator's own counts, and the caller's meter saw the same
    assert up.counters.requests == sim.stats.requests == caller.requests
    assert up.counters.samples == sim.stats.samples == caller.samples
    assert up.counters.retries == 0


async def test_retries_are_counted_and_the_breaker_counts_calls_after_retries() -> None:
    sim = create_simulator(seed=2, now_ms=lambda: NOW)
    name = sim.sites[2].collecting[0].name
    now = [0.0]
    up = guarded(sim, CircuitBreaker(3, 30.0, clock=lambda: now[0]))
    try:
        sim.faults.fail_next = {"500": 2}  # one window retried twice, then answered
        await up.points_series([name], OCT1, OCT1 + MS_PER_DAY, token="t")
        assert up.counters.retries == 2 and up.counters.requests == sim.stats.requests == 3
        assert up.circuit_state() == "closed"
        # three reads whose every attempt fails (3 each: FAST_POLICY retries twice) are
        # three failed calls, which open the circuit; a fourth is refused at once
        sim.faults.fail_next = {"500": 9}
        for day in range(3):
            with pytest.raises(UpstreamUnavailable):
                await up.points_series([name], OCT1 + day, OCT1 + day + MS_PER_DAY, token="t")
            assert up.circuit_state() == ("open" if day == 2 else "closed")
        assert sim.faults.fail_next == {"500": 0} and up.circuit_opens() == 1
        assert up.counters.retries == 2 + 3 * 2
        asked = sim.stats.requests
        with pytest.raises(UpstreamCircuitOpen):
            await up.site("elm_school", token="t")
        with pytest.raises(UpstreamCircuitOpen):
            up.check_circuit()
        assert sim.stats.requests == asked  # refused without asking upstream
        assert up.counters.requests == asked
    finally:
        await up.aclose()
