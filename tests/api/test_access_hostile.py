"""Hostile callers and caller-owned things: revoked and junk tokens, token rotation,
budgets, denial caching and a breaker that only upstream's health can open."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import httpx
import pytest

from tests.api.test_jobs_api import body as job_body
from tests.asgi import FAST_POLICY, api_client, lifespan_app
from tsgate.app import create_app
from tsgate.settings import Settings
from tsgate.upstream.ace import AceClient
from tsgate.upstream.breaker import CircuitBreaker
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.wiring import open_services

pytestmark = pytest.mark.anyio
NOW = 1_763_208_000_000  # 2025-11-15T12:00Z
GOOD = {"Authorization": "Bearer good"}
CHART = {"name": "c", "config": {"site": "elm_school", "points": ["p"], "view": "line"}}


def simulator() -> Simulator:
    return create_simulator(seed=3, tokens={"good": ["elm_school"]}, now_ms=lambda: NOW)


def point() -> str:
    return simulator().sites[2].collecting[0].name


async def _finished(api: httpx.AsyncClient, url: str) -> dict[str, Any]:
    for _ in range(400):
        status: dict[str, Any] = (await api.get(url, headers=GOOD)).json()
        if status.get("status") in {"completed", "dead", "cancelled"}:
            return status
        await asyncio.sleep(0.01)
    raise AssertionError("the job did not finish")


async def test_a_revoked_token_loses_its_jobs_results_and_charts(settings: Settings) -> None:
    sim = simulator()
    now = [NOW]
    conf = dataclasses.replace(settings, job_poll_s=0.05, access_ttl_s=300)
    async with api_client(conf, sim, clock_ms=lambda: now[0]) as api:
        posted = await api.post("/api/jobs", json=job_body(format="csv"), headers=GOOD)
        assert posted.status_code == 202, posted.text
        url = posted.headers["location"]
        assert (await _finished(api, url))["status"] == "completed"
        chart = await api.post("/api/charts", json=CHART, headers=GOOD)
        assert chart.status_code == 201
        chart_url = chart.headers["location"]
        reads = [url, f"{url}/result", f"{url}/events", "/api/jobs", chart_url, "/api/charts"]
        assert [(await api.get(u, headers=GOOD)).status_code for u in reads] == [200] * 6

        assert sim.tokens is not None
        del sim.tokens["good"]  # upstream revokes the token
        now[0] += 301_000  # TSGATE_ACCESS_TTL_S passes
        after = [(await api.get(u, headers=GOOD)).status_code for u in reads]
        resubmitted = await api.post("/api/jobs", json=job_body(format="csv"), headers=GOOD)
        cancelled = await api.delete(url, headers=GOOD)
        deleted = await api.delete(chart_url, headers=GOOD)
    assert after == [401] * 6
    assert [resubmitted.status_code, cancelled.status_code, deleted.status_code] == [401] * 3


async def test_junk_tokens_create_nothing(settings: Settings) -> None:
    sim = simulator()
    async with api_client(settings, sim, clock_ms=lambda: NOW) as api:
        answers = []
        for header in ({"Authorization": "Bearer junk"}, {"Authorization": "Basic dXNlcjpwdw=="}):
            answers.append(await api.post("/api/jobs", json=job_body(), headers=header))
            answers.append(await api.post("/api/charts", json=CHART, headers=header))
        listed = await api.get("/api/jobs", headers={"Authorization": "Bearer junk"})
    assert [a.status_code for a in answers] == [401] * 4
    assert all(a.headers["content-type"] == "application/problem+json" for a in answers)
    assert listed.status_code == 401
    async with open_services(settings) as services:
        assert await services.database.charts.count(services.access.scope("junk")) == 0
        assert await services.jobs.store.list_jobs() == []


async def test_rotating_junk_tokens_share_one_address_budget(settings: Settings) -> None:
    sim = simulator()
    # one token a minute refills the budget: the 150 requests end long before the next
    conf = dataclasses.replace(settings, rate_limit_per_min=1, rate_limit_burst=20)
    params = {"site": "elm_school", "points": "p", "start": "2025-10-01", "end": "2025-10-02"}
    async with api_client(conf, sim, clock_ms=lambda: NOW) as api:
        before = sim.stats.requests
        answers = [
            await api.get("/api/timeseries", params=params, headers={"X-ACE-Token": f"junk{i}"})
            for i in range(150)
        ]
        upstream_calls = sim.stats.requests - before
    statuses = [a.status_code for a in answers]
    assert statuses.count(401) == 20 and statuses.count(429) == 130
    assert upstream_calls == 20


async def test_a_trusted_proxy_header_names_the_client(settings: Settings) -> None:
    conf = dataclasses.replace(
        settings, rate_limit_per_min=60, rate_limit_burst=2, trusted_proxy_header="X-Forwarded-For"
    )
    async with api_client(conf, simulator(), clock_ms=lambda: NOW) as api:

        def via(client: str) -> dict[str, str]:
            return {"X-Forwarded-For": f"203.0.113.9, {client}", "X-ACE-Token": "junk"}

        first = [(await api.get("/api/sites", headers=via("198.51.100.1"))).status_code]
        first += [(await api.get("/api/sites", headers=via("198.51.100.1"))).status_code]
        first += [(await api.get("/api/sites", headers=via("198.51.100.1"))).status_code]
        other = await api.get("/api/sites", headers=via("198.51.100.2"))
    assert first == [401, 401, 429]
    assert other.status_code == 401  # another client behind the same proxy: its own budget


async def test_denials_are_cached_per_token_and_site(settings: Settings) -> None:
    sim = simulator()
    params = {"site": "elm_school", "points": "p", "start": "2025-10-01", "end": "2025-10-02"}
    async with api_client(settings, sim, clock_ms=lambda: NOW) as api:
        before = sim.stats.requests
        answers = [
            await api.get("/api/timeseries", params=params, headers={"X-ACE-Token": "bad"})
            for _ in range(10)
        ]
    assert [a.status_code for a in answers] == [401] * 10
    assert sim.stats.requests - before == 1  # one upstream call for ten requests


async def test_malformed_sites_never_reach_upstream_nor_open_the_breaker(
    settings: Settings,
) -> None:
    sim = simulator()
    breaker = CircuitBreaker(5, 30.0)
    async with api_client(settings, sim, clock_ms=lambda: NOW, breaker=breaker) as api:
        before = sim.stats.requests
        answers = [
            await api.get(
                "/api/timeseries",
                params={"site": f"nosuch{i}/x", "points": "p", "start": "2025-10-01"}
                | {"end": "2025-10-02"},
                headers={"X-ACE-Token": f"junk{i}"},
            )
            for i in range(8)
        ]
        assert sim.stats.requests == before
        good = await api.get(
            "/api/timeseries",
            params={"site": "elm_school", "points": point()}
            | {"start": "2025-10-01", "end": "2025-10-02"},
            headers=GOOD,
        )
    assert [a.status_code for a in answers] == [404] * 8
    assert all(a.json()["param"] == "site" for a in answers)
    assert breaker.state == "closed" and good.status_code == 200


async def test_redirects_from_upstream_are_not_failures(settings: Settings) -> None:
    # an upstream answering the access check with empty 308s without end (redirects are
    # followed a bounded number of times): a 502 for that caller, never a count towards
    # the breaker, so other tenants are not cut off
    breaker = CircuitBreaker(3, 30.0)
    transport = httpx.MockTransport(
        lambda request: httpx.Response(308, headers={"Location": str(request.url) + "/"})
    )
    upstream = AceClient("http://up/api", FAST_POLICY, transport=transport, breaker=breaker)
    app = create_app(settings, upstream=upstream)
    params = {"site": "nosuch", "points": "p", "start": "2025-10-01", "end": "2025-10-02"}
    async with (
        lifespan_app(app) as asgi,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://t") as api,
    ):
        answers = [
            await api.get("/api/timeseries", params=params, headers={"X-ACE-Token": f"j{i}"})
            for i in range(8)
        ]
    assert [a.status_code for a in answers] == [502] * 8
    assert breaker.state == "closed" and breaker.opens == 0


async def test_budgets_for_saved_charts_and_open_jobs(settings: Settings) -> None:
    conf = dataclasses.replace(
        settings, max_charts_per_caller=2, max_open_jobs_per_caller=1, inline_worker=False
    )
    async with api_client(conf, simulator(), clock_ms=lambda: NOW) as api:
        charts = [(await api.post("/api/charts", json=CHART, headers=GOOD)) for _ in range(3)]
        first = await api.post("/api/jobs", json=job_body(), headers=GOOD)
        same = await api.post("/api/jobs", json=job_body(), headers=GOOD)
        second = await api.post("/api/jobs", json=job_body(format="csv"), headers=GOOD)
        await api.delete(first.headers["location"], headers=GOOD)
        after_cancel = await api.post("/api/jobs", json=job_body(format="csv"), headers=GOOD)
    assert [c.status_code for c in charts] == [201, 201, 429]
    assert charts[2].json()["limit"] == "max_charts_per_caller"
    assert [first.status_code, same.status_code, second.status_code] == [202, 202, 429]
    assert second.json()["limit"] == "max_open_jobs_per_caller"
    assert "Retry-After" in second.headers
    assert after_cancel.status_code == 202


async def test_saved_charts_expire_when_unused(settings: Settings) -> None:
    day_ms = 86_400_000
    conf = dataclasses.replace(settings, chart_ttl_s=10 * 86400.0, maintenance_interval_s=0)
    async with open_services(conf, upstream=None) as services:
        charts = services.database.charts
        old = await charts.create("s", "old", {"site": "x"}, NOW - 30 * day_ms)
        used = await charts.create("s", "used", {"site": "x"}, NOW - 30 * day_ms)
        await charts.get("s", used.id, now_ms=NOW - day_ms)  # read yesterday
        fresh = await charts.create("s", "fresh", {"site": "x"}, NOW - day_ms)
        report = await services.maintenance.run(NOW)
        kept = {c.id for c in await charts.list("s", 10)}
    assert report.charts_expired == 1
    assert kept == {used.id, fresh.id} and old.id not in kept
