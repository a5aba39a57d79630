"""Each read's stats are its own: concurrent reads never count each other's upstream work.

The truth is the simulator's side: every request it answers is attributed to the read it
was for by the site its path, query or body names (each read is of another site).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from urllib.parse import unquote

import pytest
from starlette.types import Message, Receive, Scope, Send

from tests.asgi import sim_client
from tests.clock import NOW, OCT1, Clock
from tsgate.core.model import MS_PER_DAY
from tsgate.series.reader import ReadStats
from tsgate.settings import Settings
from tsgate.upstream import metering
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.wiring import OpenedServices, open_services

pytestmark = pytest.mark.anyio

SITES = ("demo_campus", "office_tower", "elm_school")


@dataclass
class Recorder:
    """An ASGI wrapper of the simulator noting, per request, which site it was for."""

    sim: Simulator
    by_site: Counter[str] = field(default_factory=Counter)
    order: list[str] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.sim(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        text = unquote(scope["path"] + "?" + scope["query_string"].decode()) + body.decode()
        named = [s for s in SITES if s in text]
        site = named[0] if len(named) == 1 else "?"
        self.by_site[site] += 1
        self.order.append(site)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.sim(scope, replay, send)


@dataclass
class Env:
    sim: Simulator
    recorder: Recorder
    services: OpenedServices
    clock: Clock

    def names(self, site: int, n: int) -> list[str]:
        return [p.name for p in self.sim.sites[site].collecting[:n]]


@pytest.fixture
async def env(settings: Settings) -> AsyncIterator[Env]:
    clock = Clock(NOW)
    sim = create_simulator(seed=5, now_ms=clock)
    sim.faults.latency_s = 0.004  # every answer takes a while: the reads interleave
    recorder = Recorder(sim)
    upstream = sim_client(recorder)  # type: ignore[arg-type]  # an ASGI app like the simulator
    async with open_services(settings, upstream=upstream, clock_ms=clock) as services:
        yield Env(sim, recorder, services, clock)


async def _read(env: Env, site: int, n: int, days: int) -> ReadStats:
    names = env.names(site, n)
    _, stats = await env.services.reader.read(
        SITES[site], names, OCT1, OCT1 + days * MS_PER_DAY, token="t"
    )
    return stats


def _interleaved(order: list[str]) -> bool:
    """Some read's requests came both before and after another read's."""
    firsts = {s: order.index(s) for s in set(order)}
    lasts = {s: len(order) - 1 - order[::-1].index(s) for s in set(order)}
    return any(firsts[a] < firsts[b] < lasts[a] for a in firsts for b in firsts if a != b)


async def test_two_concurrent_reads_each_count_only_their_own_requests(env: Env) -> None:
    # per-point reads: 3 points × one window, and 2 points × 2 month windows (40 days)
    office, elm = await asyncio.gather(_read(env, 1, 3, 3), _read(env, 2, 2, 40))
    assert _interleaved(env.recorder.order)  # they did run at the same time
    assert env.recorder.by_site["?"] == 0
    assert sum(env.recorder.by_site.values()) == env.sim.stats.requests
    assert office.upstream_requests == env.recorder.by_site["office_tower"] > 0
    assert elm.upstream_requests == env.recorder.by_site["elm_school"] > 0
    # warm now: the same reads, concurrently again, cost nothing and say so
    before = env.sim.stats.requests
    office, elm = await asyncio.gather(_read(env, 1, 3, 3), _read(env, 2, 2, 40))
    assert (office.upstream_requests, elm.upstream_requests) == (0, 0)
    assert env.sim.stats.requests == before


async def test_retries_are_charged_to_the_read_that_made_them(env: Env) -> None:
    # upstream fails a few requests, whichever read they belong to; the client retries
    env.sim.faults.fail_next = {"500": 3}
    stats = await asyncio.gather(_read(env, 0, 2, 2), _read(env, 1, 3, 3), _read(env, 2, 2, 40))
    assert env.sim.faults.fail_next == {"500": 0}  # all three failures were spent
    assert env.recorder.by_site["?"] == 0
    for site, read in zip(SITES, stats, strict=True):
        assert read.upstream_requests == env.recorder.by_site[site] > 0


async def test_a_read_inside_a_metered_request_still_charges_the_request(env: Env) -> None:
    # the rate limiter's meter around the whole request sees what every read inside made
    with metering.metered() as request:
        first, second = await asyncio.gather(_read(env, 1, 2, 3), _read(env, 2, 2, 3))
    assert request.requests == first.upstream_requests + second.upstream_requests
    assert request.requests == env.sim.stats.requests > 0
