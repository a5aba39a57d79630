"""Hostile ``/api/quality`` callers: junk and revoked tokens (also when the answer's hours
are kept in memory), another site's point, absurd ranges, thousands of listed points and
a cold read over the inline fetch budget: each a clear 4xx problem, never a 500."""

from __future__ import annotations

import dataclasses

import httpx
import numpy as np
import pytest

from tests.asgi import api_client
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator

pytestmark = pytest.mark.anyio
NOW = 1_763_208_000_000  # 2025-11-15T12:00Z
GOOD = {"Authorization": "Bearer good"}
SITE = "elm_school"
# whole settled days (more than the 7-day re-check schedule back): every day final
FINAL = {"site": SITE, "start": "2025-11-01T00:00:00", "end": "2025-11-03T00:00:00"}


def simulator() -> Simulator:
    return create_simulator(seed=3, tokens={"good": [SITE]}, now_ms=lambda: NOW)


def problem(r: httpx.Response, status: int, param: str | None = None) -> None:
    assert r.status_code == status, r.text[:300]
    assert r.headers["content-type"] == "application/problem+json"
    if param is not None:
        assert r.json()["param"] == param


async def test_junk_and_revoked_tokens_get_nothing_even_from_kept_hours(
    settings: Settings,
) -> None:
    sim = simulator()
    now = [NOW]
    conf = dataclasses.replace(settings, access_ttl_s=300)
    async with api_client(conf, sim, clock_ms=lambda: now[0]) as api:
        for header in ({"Authorization": "Bearer junk"}, {"Authorization": "Basic dXNlcjpwdw=="}):
            problem(await api.get("/api/quality", params=FINAL, headers=header), 401)
        first = await api.get("/api/quality", params=FINAL, headers=GOOD)
        again = await api.get("/api/quality", params=FINAL, headers=GOOD)
        assert first.status_code == again.status_code == 200
        assert again.headers["X-Cache-Source"] == "MEMORY"  # served from the kept hours
        assert again.headers["X-Cache-Status"] == "HIT"  # the kept answer itself
        problem(
            await api.get("/api/quality", params=FINAL, headers={"Authorization": "Bearer junk"}),
            401,
        )
        assert sim.tokens is not None
        del sim.tokens["good"]  # upstream revokes the token
        now[0] += 301_000  # TSGATE_ACCESS_TTL_S passes
        problem(await api.get("/api/quality", params=FINAL, headers=GOOD), 401)


async def test_other_sites_points_ranges_and_counts(settings: Settings) -> None:
    sim = simulator()
    other = sim.site_by_name["office_tower"].collecting[0].name
    mine = sim.site_by_name[SITE].collecting[0].name
    async with api_client(settings, sim, clock_ms=lambda: NOW) as api:

        async def ask(**params: str) -> httpx.Response:
            return await api.get("/api/quality", params={**FINAL, **params}, headers=GOOD)

        async def listing(count: int) -> httpx.Response:
            # commas as they are (not %2C), so that 10,001 names fit in one URL
            names = ",".join(np.base_repr(i, 36) for i in range(count))
            query = "&".join(f"{k}={v}" for k, v in FINAL.items()) + f"&points={names}"
            return await api.get(f"/api/quality?{query}", headers=GOOD)

        problem(await ask(points=f"{mine},{other}"), 400, "points")  # another site's point
        problem(await ask(site="office_tower"), 403)  # a site this token may not read
        problem(await ask(start="2025-11-03T00:00:00", end="2025-11-01T00:00:00"), 400)
        problem(await ask(start="0001-01-01T00:00:00", end="9999-12-31T00:00:00"), 413)
        problem(await ask(start="2025-01-01T00:00:00", end="2025-04-04T00:00:00"), 413)
        problem(await ask(end="2025-11-01T00:00:00.000001"), 400)
        problem(await listing(10_001), 413)
        r = await listing(10_000)
        problem(r, 400, "points")
        assert len(r.text) < 1_000  # names a few, not all ten thousand


async def test_a_cold_read_over_the_inline_fetch_budget_is_refused(settings: Settings) -> None:
    sim = simulator()
    conf = dataclasses.replace(settings, inline_fetch_samples=1_000)
    async with api_client(conf, sim, clock_ms=lambda: NOW) as api:
        r = await api.get("/api/quality", params=FINAL, headers=GOOD)
        problem(r, 413)
        assert "inline_fetch_samples" in r.text
        assert sim.stats.samples == 0  # nothing was fetched


async def test_a_kept_answer_is_sent_again_in_the_encoding_each_caller_accepts(
    settings: Settings,
) -> None:
    now = [NOW]
    async with api_client(settings, simulator(), clock_ms=lambda: now[0]) as api:
        answers: dict[str, list[dict[str, object]]] = {}
        for encoding in ("gzip", "identity", "gzip", "identity"):
            now[0] += 1_000  # a computed answer says when it was judged, a kept one keeps it
            headers = {**GOOD, "Accept-Encoding": encoding}
            r = await api.get("/api/quality", params=FINAL, headers=headers)
            assert r.status_code == 200, r.text[:300]
            assert r.headers.get("content-encoding") == (None if encoding == "identity" else "gzip")
            answers.setdefault(encoding, []).append(r.json())
        for first, again in answers.values():
            assert again == first  # the kept answer, judged at the same time
        gzip, identity = answers["gzip"][0], answers["identity"][0]
        assert gzip["metadata"]["now"] != identity["metadata"]["now"]  # each computed once
        assert gzip["points"] == identity["points"]
