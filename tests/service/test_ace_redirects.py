"""The ACE client against upstreams that redirect or answer what is not JSON: redirects
to the same origin are followed (bounded), others never carry the token, headers are
relayed end to end, and a strange answer is the caller's 502, not a breaker failure."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.asgi import FAST_POLICY, api_client, lifespan_app, sim_client
from tsgate.app import create_app
from tsgate.errors import UpstreamBadAnswer
from tsgate.settings import Settings
from tsgate.upstream.ace import MAX_REDIRECTS, AceClient
from tsgate.upstream.breaker import CircuitBreaker
from tsgate.upstream.simulator import create_simulator

pytestmark = pytest.mark.anyio
Handler = Callable[[httpx.Request], httpx.Response]


def client_of(handler: Handler, breaker: CircuitBreaker | None = None) -> AceClient:
    return AceClient(
        "http://up/api",
        FAST_POLICY,
        transport=httpx.MockTransport(handler),
        breaker=breaker or CircuitBreaker(2, 30.0),
    )


async def test_flask_restx_redirects_are_followed() -> None:
    sim = create_simulator(seed=1, redirects="flask")
    client = sim_client(sim)
    try:
        sites = await client.sites_page(1, 10, token="t")
        passed = await client.forward("GET", "/points", token="t", query="per_page=2")
    finally:
        await client.aclose()
    assert [s["name"] for s in sites.items] == [s.name for s in sim.sites]
    # the typed read asks the declared spelling at once; the pass-through follows the 308
    assert client.counters.requests == 3
    assert passed.status == 200 and len(passed.content) > 100


async def test_a_307_keeps_method_and_body_and_a_303_becomes_get() -> None:
    seen: list[tuple[str, str, bytes]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.method, request.url.path, request.content))
        if request.url.path == "/api/a":
            return httpx.Response(307, headers={"Location": "/api/b?x=1"})
        if request.url.path == "/api/b":
            return httpx.Response(303, headers={"Location": "http://up/api/c"})
        return httpx.Response(200, json={"ok": True})

    client = client_of(handler)
    try:
        got = await client.forward("POST", "/a", token="t", body=b'{"k": 1}')
    finally:
        await client.aclose()
    assert got.status == 200
    assert seen == [
        ("POST", "/api/a", b'{"k": 1}'),
        ("POST", "/api/b", b'{"k": 1}'),
        ("GET", "/api/c", b""),
    ]


async def test_redirects_elsewhere_never_carry_the_token() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(302, headers={"Location": "https://evil.example/steal"})

    breaker = CircuitBreaker(2, 30.0)
    client = client_of(handler, breaker)
    try:
        for _ in range(3):
            with pytest.raises(UpstreamBadAnswer, match="another origin"):
                await client.sites_page(1, 10, token="secret")
        relayed = await client.forward("GET", "/sites", token="secret")
    finally:
        await client.aclose()
    assert all(url.startswith("http://up/") for url in seen)
    assert relayed.status == 302 and relayed.headers["location"] == "https://evil.example/steal"
    assert breaker.state == "closed"  # upstream answered: not a failure


async def test_redirect_loops_are_bounded() -> None:
    client = client_of(lambda r: httpx.Response(308, headers={"Location": r.url.path + "x"}))
    try:
        with pytest.raises(UpstreamBadAnswer, match="redirects"):
            await client.sites_page(1, 10, token="t")
    finally:
        await client.aclose()
    assert client.counters.requests == MAX_REDIRECTS + 1


async def test_html_or_empty_answers_are_bad_answers_not_breaker_failures() -> None:
    answers = iter(
        [httpx.Response(200, html="<html>login</html>"), httpx.Response(200, content=b"")] * 3
    )
    breaker = CircuitBreaker(2, 30.0)
    client = client_of(lambda request: next(answers), breaker)
    try:
        for _ in range(6):
            with pytest.raises(UpstreamBadAnswer, match="not JSON"):
                await client.sites_page(1, 10, token="t")
    finally:
        await client.aclose()
    assert breaker.state == "closed" and client.counters.retries == 0


async def test_headers_are_relayed_end_to_end() -> None:
    sent: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers)
        return httpx.Response(
            200,
            json={"ok": True},
            headers={
                "Cache-Control": "max-age=60",
                "X-Upstream-Trace": "abc",
                "Connection": "keep-alive",
                "Keep-Alive": "timeout=5",
                "Access-Control-Allow-Origin": "*",
                "X-Request-ID": "upstream-id",
            },
        )

    client = client_of(handler)
    try:
        got = await client.forward(
            "GET",
            "/sites/",
            token="t",
            headers={
                "X-Fields": "name",
                "Cookie": "session=1",
                "X-ACE-Token": "t",
                "Connection": "x",
            },
        )
    finally:
        await client.aclose()
    assert got.headers["cache-control"] == "max-age=60" and got.headers["x-upstream-trace"] == "abc"
    assert "connection" not in got.headers and "keep-alive" not in got.headers
    assert "access-control-allow-origin" not in got.headers  # tsgate's CORS decides
    assert "x-request-id" not in got.headers
    assert sent[0]["x-fields"] == "name" and sent[0]["authorization"] == "Bearer t"
    assert "cookie" not in sent[0] and "x-ace-token" not in sent[0]


async def test_through_tsgate_a_redirecting_upstream_is_healthy(settings: Settings) -> None:
    sim = create_simulator(seed=1, redirects="flask")
    async with api_client(settings, sim) as api:
        health = await api.get("/api/health")
        sites = await api.get("/api/sites", headers={"Authorization": "Bearer t"})
        declared = await api.get("/api/sites/", headers={"Authorization": "Bearer t"})
    assert health.json()["status"] == "healthy"
    assert sites.status_code == declared.status_code == 200
    assert sites.json() == declared.json() and sites.json()["total"] == len(sim.sites)


async def test_through_tsgate_a_non_json_upstream_is_a_502_problem(settings: Settings) -> None:
    upstream = client_of(lambda request: httpx.Response(200, html="<html>maintenance</html>"))
    app = create_app(settings, upstream=upstream)
    async with lifespan_app(app) as asgi:
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://tsgate") as api:
            r = await api.get("/api/sites", headers={"Authorization": "Bearer t"})
            relayed = await api.get("/api/gateways/", headers={"Authorization": "Bearer t"})
    assert r.status_code == 502 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["title"] == "Bad upstream answer" and "not JSON" in r.json()["detail"]
    assert relayed.status_code == 200 and relayed.text == "<html>maintenance</html>"
    assert upstream.breaker.state == "closed"
