"""Upstream slots in turns by caller: the grant order against a brute-force round robin,
the bound held, cancelled waiters, and a real client under one tenant's flood."""

from __future__ import annotations

import asyncio
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.asgi import FAST_POLICY, sim_client
from tsgate.upstream.fairgate import FairGate
from tsgate.upstream.simulator import create_simulator

pytestmark = pytest.mark.anyio


def reference_order(arrivals: list[str], slots: int) -> list[int]:
    """Which arrival gets each slot: the first ``slots`` at once, then the callers with
    someone waiting take turns, in the order they first waited, FIFO per caller."""
    order = list(range(min(slots, len(arrivals))))
    turns: dict[str, deque[int]] = {}
    for i in range(len(order), len(arrivals)):
        turns.setdefault(arrivals[i], deque()).append(i)
    while turns:
        key = next(iter(turns))
        queue = turns.pop(key)
        order.append(queue.popleft())
        if queue:
            turns[key] = queue
    return order


async def _grant_order(arrivals: list[str], slots: int) -> tuple[list[int], int]:
    gate = FairGate(slots)
    granted: list[int] = []
    holding = peak = 0

    async def one(i: int, key: str) -> None:
        nonlocal holding, peak
        async with gate.slot(key):
            granted.append(i)
            holding += 1
            peak = max(peak, holding)
            await asyncio.sleep(0)
            holding -= 1

    tasks = [asyncio.ensure_future(one(i, k)) for i, k in enumerate(arrivals)]
    await asyncio.gather(*tasks)
    assert gate.waiting == 0 and gate._free == slots
    return granted, peak


@settings(max_examples=200, deadline=None)
@given(
    arrivals=st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=0, max_size=60),
    slots=st.integers(1, 6),
)
def test_slots_go_round_robin_by_caller(arrivals: list[str], slots: int) -> None:
    granted, peak = asyncio.run(_grant_order(arrivals, slots))
    assert granted == reference_order(arrivals, slots)
    assert peak <= slots


async def test_a_cancelled_waiter_gives_back_nothing_it_did_not_take() -> None:
    gate = FairGate(1)
    release = asyncio.Event()

    async def hold() -> None:
        async with gate.slot("a"):
            await release.wait()

    holder = asyncio.ensure_future(hold())
    await asyncio.sleep(0)
    waiters = [asyncio.ensure_future(_enter(gate, k)) for k in ("a", "b", "b")]
    await asyncio.sleep(0)
    assert gate.waiting == 3
    waiters[1].cancel()
    await asyncio.sleep(0)
    assert gate.waiting == 2
    release.set()
    await holder
    done = await asyncio.gather(waiters[0], waiters[2])
    assert done == ["a", "b"] and gate.waiting == 0 and gate._free == 1
    # cancelled just as its slot was handed over: the slot comes back
    async with gate.slot("x"):
        late = asyncio.ensure_future(_enter(gate, "y"))
        await asyncio.sleep(0)
    late.cancel()
    with pytest.raises(asyncio.CancelledError):
        await late
    assert gate._free == 1 and gate.waiting == 0
    with pytest.raises(ValueError, match="at least one slot"):
        FairGate(0)


async def _enter(gate: FairGate, key: str) -> str:
    async with gate.slot(key):
        await asyncio.sleep(0)
    return key


async def test_a_dashboard_is_not_queued_behind_another_tenants_flood() -> None:
    sim = create_simulator(seed=5)
    sim.faults.latency_s = 0.01
    client = sim_client(sim, FAST_POLICY)
    client.reads._gate = FairGate(2)  # type: ignore[attr-defined]
    finished: list[str] = []

    async def read(token: str) -> None:
        await client.sites_page(1, 2, token=token)
        finished.append(token)

    flood = [asyncio.ensure_future(read("export-tenant")) for _ in range(30)]
    await asyncio.sleep(0.005)  # the flood holds both slots and queues the rest
    dashboard = [asyncio.ensure_future(read("dashboard-tenant")) for _ in range(2)]
    await asyncio.gather(*flood, *dashboard)
    await client.aclose()
    last = max(i for i, t in enumerate(finished) if t == "dashboard-tenant")
    assert last < 8, finished  # in turns, not after the 30 queued before it
