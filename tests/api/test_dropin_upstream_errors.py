"""A drop-in read that upstream fails while only part of its range is cached answers as a
read with nothing cached does: upstream's own error, mapped as every upstream error is
(the same status, upstream's Retry-After kept, a problem naming the cause), for each way
upstream fails. What is cached whole is still served, equal to the simulator's truth."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pytest

from tests.asgi import FAST_POLICY, lifespan_app
from tsgate.app import create_app
from tsgate.settings import Settings
from tsgate.upstream.ace import AceClient
from tsgate.upstream.breaker import CircuitBreaker
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.wire.ace import format_time, parse_times_us

pytestmark = pytest.mark.anyio

AUTH = {"Authorization": "Bearer t"}
SITE = "elm_school"
NOW_MS = 1_759_400_000_000  # 2025-10-02T10:13:20Z: 2025-10-01 is settled history
DAY_MS = 1_759_276_800_000  # 2025-10-01T00:00:00Z
HOUR_MS = 3_600_000
CACHED = (DAY_MS + 2 * HOUR_MS, DAY_MS + 4 * HOUR_MS)  # read (cached) before upstream fails
PARTIAL = (DAY_MS + 2 * HOUR_MS, DAY_MS + 6 * HOUR_MS)  # CACHED and two hours never read
# nothing of it cached: not a period (a point's month) of it is stored
COLD = (DAY_MS - 20 * 24 * HOUR_MS, DAY_MS - 20 * 24 * HOUR_MS + 2 * HOUR_MS)
DEADLINE_S = 0.2  # the network's read timeout below; a stalled simulator answers later


class Deadline(httpx.AsyncBaseTransport):
    """An in-process transport that gives up after ``timeout_s`` as a socket read would
    (``httpx.ASGITransport`` waits however long the app takes)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, timeout_s: float) -> None:
        self.inner = inner
        self.timeout_s = timeout_s

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await asyncio.wait_for(self.inner.handle_async_request(request), self.timeout_s)
        except TimeoutError as exc:
            raise httpx.ReadTimeout("no answer in time", request=request) from exc


@dataclass(frozen=True)
class Failure:
    name: str
    breaker_failures: int  # 0: the circuit never opens
    start: Callable[[Simulator], None]  # makes upstream fail this way


def _fail_500(sim: Simulator) -> None:
    sim.faults.fail_after = 0  # every timeseries request answers 500


def _fail_429(sim: Simulator) -> None:
    sim.faults.retry_after_s = 7  # longer than the client waits inline: passed on
    sim.faults.fail_next = {"429": 10**6}


def _fail_timeout(sim: Simulator) -> None:
    sim.faults.timeout_s = 5 * DEADLINE_S
    sim.faults.fail_next = {"timeout": 10**6}


def _fail_truncate(sim: Simulator) -> None:
    sim.faults.fail_next = {"truncate": 10**6}


def _revoke(sim: Simulator) -> None:
    sim.tokens = {}  # upstream no longer knows the token: 401


def _forbid(sim: Simulator) -> None:
    sim.tokens = {"t": frozenset()}  # the token may no longer read the site: 403


FAILURES = [
    Failure("500", 0, _fail_500),
    Failure("429 with Retry-After", 0, _fail_429),
    Failure("timeout", 0, _fail_timeout),
    Failure("truncated body", 0, _fail_truncate),
    Failure("circuit open", 1, _fail_500),
    Failure("token revoked (401)", 0, _revoke),
    Failure("access withdrawn (403)", 0, _forbid),
]


@dataclass
class Env:
    api: httpx.AsyncClient
    direct: httpx.AsyncClient
    sim: Simulator
    names: list[str]

    async def page(self, span: tuple[int, int]) -> httpx.Response:
        params = {"start_time": format_time(span[0]), "end_time": format_time(span[1])}
        params |= {"page_size": "100", "raw_data": "true", "point_names": ",".join(self.names)}
        url = f"/api/sites/{SITE}/timeseries/paginated"
        return await self.api.get(url, params=params, headers=AUTH)

    async def point(self, span: tuple[int, int], *, direct: bool = False) -> httpx.Response:
        params = {"start_time": format_time(span[0]), "end_time": format_time(span[1])}
        url = f"/api/points/{quote(self.names[0], safe='')}/timeseries"
        if direct:
            return await self.direct.get(url, params=params, headers=AUTH)
        return await self.api.get(url, params=params, headers=AUTH)


@contextlib.asynccontextmanager
async def env_of(settings: Settings, failure: Failure) -> AsyncIterator[Env]:
    sim = create_simulator(seed=1, now_ms=lambda: NOW_MS)
    sim.tokens = {"t": frozenset(s.name for s in sim.sites)}
    transport = Deadline(httpx.ASGITransport(app=sim), DEADLINE_S)
    breaker = CircuitBreaker(failure.breaker_failures, 30.0)
    upstream = AceClient("http://simulator/api", FAST_POLICY, transport=transport, breaker=breaker)
    app = create_app(settings, upstream=upstream, clock_ms=lambda: NOW_MS)
    direct_transport = httpx.ASGITransport(app=sim)
    async with (
        lifespan_app(app) as asgi,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://t") as api,
        httpx.AsyncClient(transport=direct_transport, base_url="http://sim") as direct,
    ):
        names = [p.name for p in sim.site_by_name[SITE].collecting[:3]]
        yield Env(api, direct, sim, names)


def _answer(r: httpx.Response) -> tuple[int, str | None, str, str]:
    """What a client tells apart in a refusal: status, Retry-After, media type, title."""
    body: dict[str, Any] = r.json()
    return r.status_code, r.headers.get("retry-after"), r.headers["content-type"], body["title"]


def _rows_of(rows: list[dict[str, str]]) -> tuple[Any, Any]:
    t_ms, us = parse_times_us([row["time"] for row in rows])
    t_us = t_ms.astype(np.int64) * 1000 + us.astype(np.int64)
    return t_us, np.array([float(row["value"]) for row in rows])


@pytest.mark.parametrize("failure", FAILURES, ids=[f.name for f in FAILURES])
async def test_a_partly_cached_drop_in_read_gets_upstreams_own_error(
    settings: Settings, failure: Failure
) -> None:
    async with env_of(settings, failure) as env:
        assert (await env.page(CACHED)).status_code == 200  # cached whole, and the access
        assert (await env.point(CACHED)).status_code == 200
        failure.start(env.sim)
        if failure.breaker_failures:  # one read fails and opens the circuit
            assert (await env.point(COLD)).status_code == 502
        # what a read with nothing cached gets: the reference
        cold_page, cold_point = await env.page(COLD), await env.point(COLD)
        for cold in (cold_page, cold_point):
            assert cold.status_code >= 400, cold.text[:300]
            assert cold.headers["content-type"] == "application/problem+json"
        partial_page, partial_point = await env.page(PARTIAL), await env.point(PARTIAL)
        assert _answer(partial_page) == _answer(cold_page), partial_page.text[:300]
        assert _answer(partial_point) == _answer(cold_point), partial_point.text[:300]
        # the problem names upstream's failure, as the uncached read's does
        cause, cold_cause = partial_point.json()["detail"], cold_point.json()["detail"]
        assert cause.split(":")[0] == cold_cause.split(":")[0], (cause, cold_cause)
        direct = await env.point(PARTIAL, direct=True)
        if direct.status_code in (401, 403):  # the caller's refusal passes as upstream's
            assert partial_point.status_code == direct.status_code
            assert partial_point.json()["message"] == direct.json()["message"]
            return
        if direct.status_code == 429:  # upstream's Retry-After reaches the caller as it is
            assert partial_page.headers["retry-after"] == direct.headers["retry-after"] == "7"
        status, title = partial_page.status_code, partial_page.json()["title"]
        want = {
            "500": (502, "Upstream failure"),
            "429 with Retry-After": (503, "Upstream rate limited"),
            "timeout": (504, "Upstream timeout"),
            "truncated body": (502, "Upstream failure"),
            "circuit open": (503, "Upstream unavailable"),
        }[failure.name]
        assert (status, title) == want
        # what is cached whole is still served, and is upstream's truth
        whole = await env.point(CACHED)
        assert whole.status_code == 200, whole.text[:300]
        got_t, got_v = _rows_of(whole.json()["point_samples"])
        want_t, want_v = env.sim.truth(env.names[0], *CACHED)
        assert want_t.size and np.array_equal(got_t, want_t) and np.array_equal(got_v, want_v)
        page = await env.page(CACHED)
        assert page.status_code == 200, page.text[:300]
        assert page.json()["point_samples"], "the cached page is served"
