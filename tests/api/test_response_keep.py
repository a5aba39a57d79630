"""Chart answers with provisional days are kept until their samples could change: until
the next due re-check, not just the open TTL; a late upload after the kept answer is in
the next answer once the re-check is due."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import numpy as np
import pytest
from starlette.types import Receive, Scope, Send

from tests.asgi import sim_client
from tests.clock import Clock
from tsgate.app import create_app
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE
from tsgate.series.planning import changes_at
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.upstream.visibility import Outage
from tsgate.wire.ace import format_time, parse_time
from tsgate.wiring import Services

pytestmark = pytest.mark.anyio
SITE = "elm_school"
DAY = parse_time("day", "2025-11-14T00:00:00")  # the day with the gateway outage
START, END = DAY - MS_PER_DAY, DAY + MS_PER_DAY
OUTAGE = (DAY + 6 * MS_PER_HOUR, DAY + 12 * MS_PER_HOUR)
# 30 minutes before the day's second re-check (6 h after its end); the backlog arrives
# 15 minutes later
NOW = DAY + MS_PER_DAY + 6 * MS_PER_HOUR - 30 * MS_PER_MINUTE
BACKLOG = NOW + 15 * MS_PER_MINUTE


@dataclass
class Env:
    api: httpx.AsyncClient
    sim: Simulator
    services: Services
    clock: Clock
    name: str

    async def chart(self, token: str = "a") -> httpx.Response:
        query = {
            "site": SITE,
            "points": self.name,
            "start": format_time(START),
            "end": format_time(END),
        }
        r = await self.api.get(
            "/api/timeseries", params=query, headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 200, r.text
        return r


@pytest.fixture
async def env(settings: Settings) -> AsyncIterator[Env]:
    clock = Clock(NOW)
    sim = create_simulator(seed=5, now_ms=clock)
    name = sim.sites[2].collecting[0].name
    sim.faults.outages.append(Outage(*OUTAGE, backlog_ms=BACKLOG, site=SITE, points=(name,)))
    # as the benchmarks run it: ranges still open are read again on every request
    conf = dataclasses.replace(settings, open_ttl_s=0, access_ttl_s=7200, rate_limit_per_min=0)
    app = create_app(conf, upstream=sim_client(sim), clock_ms=clock)
    async with app.router.lifespan_context(app) as state:
        assert state is not None

        async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = dict(state)
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://tsgate") as api:
            yield Env(api, sim, state["services"], clock, name)


def _samples(r: httpx.Response) -> tuple[np.ndarray, np.ndarray]:
    data = r.json()["series"][0]["data"]
    return np.array([t for t, _ in data], dtype=np.int64), np.array([v for _, v in data])


def _assert_truth(env: Env, r: httpx.Response) -> None:
    t_us, v = env.sim.truth(env.name, START, END)
    got_t, got_v = _samples(r)
    assert np.array_equal(got_t, t_us // 1000) and np.allclose(got_v, v)


def _served_whole(r: httpx.Response) -> bool:
    return r.headers["server-timing"].startswith("cache;")


async def test_a_late_upload_is_in_the_answer_after_the_due_recheck(env: Env) -> None:
    first = await env.chart()
    _assert_truth(env, first)  # as upstream has it now: nothing in the outage
    t, _ = _samples(first)
    assert not np.any((t >= OUTAGE[0]) & (t < OUTAGE[1]))
    assert env.services.reader.policy.open_ttl_ms == 0
    assert first.json()["metadata"]["provisional"], "the outage day is provisional"

    kept = await env.chart()
    assert _served_whole(kept) and kept.content == first.content

    # the backlog reaches upstream; tsgate reads the day again only at its re-check
    env.clock.ms = BACKLOG + 1
    still = await env.chart()
    fresh = await env.chart(token="another")  # its own scope: computed from the store now
    assert _served_whole(still) and not _served_whole(fresh)
    assert still.content == fresh.content  # kept exactly as long as nothing could differ

    rows = await env.services.reader.rows(SITE, [env.name], START, END)
    recheck = min(r.recheck_at_ms for r in rows if r.recheck_at_ms is not None)
    assert recheck == DAY + MS_PER_DAY + 6 * MS_PER_HOUR
    env.clock.ms = recheck
    after = await env.chart()
    assert not _served_whole(after)
    _assert_truth(env, after)
    t, _ = _samples(after)
    assert np.count_nonzero((t >= OUTAGE[0]) & (t < OUTAGE[1])) > 50
    # the repair moved the site's data version while that answer was computed; it was kept
    # under the version it was asked under, so the next one is computed once more, then kept
    again = await env.chart()
    third = await env.chart()
    assert _served_whole(third) and third.content == again.content == after.content


async def test_an_answer_reaching_now_is_read_again_every_time(env: Env) -> None:
    query = {
        "site": SITE,
        "points": env.name,
        "start": format_time(NOW - MS_PER_DAY),
        "end": format_time(NOW + MS_PER_HOUR),
    }
    for _ in range(3):
        r = await env.api.get(
            "/api/timeseries", params=query, headers={"Authorization": "Bearer t"}
        )
        assert r.status_code == 200 and not _served_whole(r)


def test_changes_at_of_final_open_and_provisional_rows() -> None:
    from tsgate.series.index import ChunkRow

    def row(state: str, *, tail: bool = False, recheck: int | None = None) -> ChunkRow:
        return ChunkRow(
            SITE, "p", "raw", DAY, DAY + MS_PER_DAY, "k", "c", ((DAY, DAY + MS_PER_DAY),),
            DAY + MS_PER_DAY - MS_PER_HOUR if tail else 0, DAY + MS_PER_DAY if tail else 0,
            state, (), 0, recheck, 10, 10, DAY, DAY + 1, NOW - 1000,
        )  # fmt: skip

    span = (DAY, DAY + MS_PER_DAY)
    assert changes_at(["p"], [row("final")], *span, NOW, 60_000) is None
    assert changes_at(["p"], [row("open")], *span, NOW, 60_000) == NOW - 1000 + 60_000
    assert changes_at(["p"], [row("provisional", recheck=NOW + 5)], *span, NOW, 60_000) == NOW + 5
    tailed = row("provisional", tail=True, recheck=NOW + 10**6)
    assert changes_at(["p"], [tailed], *span, NOW, 60_000) == NOW - 1000 + 60_000
    assert changes_at(["p"], [row("provisional")], *span, NOW, 60_000) is None
    # a point with nothing stored would be fetched now; a range past now grows
    assert changes_at(["p", "q"], [row("final")], *span, NOW, 60_000) == NOW
    late = (DAY, NOW + MS_PER_HOUR)
    assert changes_at(["p"], [row("final")], *late, NOW, 60_000) == NOW
