"""CORS: the gateway's middleware answers as Starlette's ``CORSMiddleware`` does (the
reference, run on the same inner app), preflights included, and a cached chart answer
from the fast path carries the headers the full path gives it, for allowed, refused and
absent origins."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.middleware.cors import CORSMiddleware
from starlette.types import Receive, Scope, Send

from tests.asgi import lifespan_client, sim_client
from tsgate.api.cors import CorsMiddleware, CorsPolicy
from tsgate.api.fastpath import FastAnswers
from tsgate.app import EXPOSED_HEADERS, create_app
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator

pytestmark = pytest.mark.anyio
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
ALLOWED = "https://dash.example"
REFUSED = "https://evil.example"
NOW = 1_763_208_000_000  # 2025-11-15T12:00Z
SITE = "elm_school"
GOOD = {"Authorization": "Bearer good"}
WEEK = {"start": "2025-10-01T00:00:00", "end": "2025-10-08T00:00:00"}
_PER_EXCHANGE = {"x-request-id", "x-processing-time", "server-timing", "ratelimit-remaining"}
_PER_EXCHANGE |= {"ratelimit-reset", "x-cache-source"}


def _inner(vary: list[bytes]) -> object:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"text/plain"), *((b"vary", v) for v in vary)]
        headers.append((b"x-after", b"1"))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"inner"})

    return app


def _pair(origins: tuple[str, ...], vary: list[bytes]) -> tuple[object, object]:
    inner = _inner(vary)
    config = {"allow_methods": METHODS, "allow_headers": ["*"], "expose_headers": EXPOSED_HEADERS}
    ours = CorsMiddleware(inner, CorsPolicy(origins, **config))  # type: ignore[arg-type]
    theirs = CORSMiddleware(inner, allow_origins=list(origins), **config)  # type: ignore[arg-type]
    return ours, theirs


REQUESTS = [
    ("GET", {}),
    ("GET", {"Origin": ALLOWED}),
    ("GET", {"Origin": REFUSED}),
    ("POST", {"Origin": ALLOWED}),
    ("OPTIONS", {"Origin": ALLOWED}),  # no Access-Control-Request-Method: not a preflight
    ("OPTIONS", {"Origin": ALLOWED, "Access-Control-Request-Method": "GET"}),
    ("OPTIONS", {"Origin": REFUSED, "Access-Control-Request-Method": "GET"}),
    ("OPTIONS", {"Origin": ALLOWED, "Access-Control-Request-Method": "TRACE"}),
    (
        "OPTIONS",
        {
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, x-fields",
        },
    ),
    (
        "OPTIONS",
        {
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Private-Network": "true",
        },
    ),
    ("OPTIONS", {"Access-Control-Request-Method": "GET"}),  # no Origin: not a preflight
]


@pytest.mark.parametrize("origins", [("*",), (ALLOWED,), (ALLOWED, "https://other.example")])
@pytest.mark.parametrize("vary", [[], [b"Accept-Encoding"], [b"Accept", b"Accept-Encoding"]])
@pytest.mark.parametrize(("method", "headers"), REQUESTS)
async def test_answers_are_starlettes_header_for_header(
    origins: tuple[str, ...], vary: list[bytes], method: str, headers: dict[str, str]
) -> None:
    ours, theirs = _pair(origins, vary)
    answers = []
    for app in (ours, theirs):
        transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            r = await client.request(method, "/x", headers=headers)
        answers.append((r.status_code, r.content, r.headers.multi_items()))
    assert answers[0] == answers[1]


@dataclasses.dataclass
class Env:
    client: httpx.AsyncClient
    answers: FastAnswers
    point: str
    origins: tuple[str, ...]

    async def chart(self, headers: dict[str, str]) -> httpx.Response:
        query = {"site": SITE, "points": self.point, **WEEK}
        return await self.client.get("/api/timeseries", params=query, headers=headers)


@pytest.fixture(params=[("*",), (ALLOWED,)], ids=["any-origin", "one-origin"])
async def env(settings: Settings, request: pytest.FixtureRequest) -> AsyncIterator[Env]:
    sim = create_simulator(seed=5, tokens={"good": [SITE]}, now_ms=lambda: NOW)
    conf = dataclasses.replace(settings, cors_origins=request.param, rate_limit_per_min=600)
    app = create_app(conf, upstream=sim_client(sim), clock_ms=lambda: NOW)
    point = next(s for s in sim.sites if s.name == SITE).collecting[0].name
    async with lifespan_client(app) as (client, state):
        yield Env(client, state["fast_answers"], point, request.param)


def _answer(r: httpx.Response) -> tuple[int, bytes, list[tuple[str, str]]]:
    kept = [(k, v) for k, v in r.headers.multi_items() if k not in _PER_EXCHANGE]
    return r.status_code, r.content, sorted(kept)


@pytest.mark.parametrize("origin", [None, ALLOWED, REFUSED])
async def test_the_fast_path_gives_the_full_paths_cors_headers(
    env: Env, origin: str | None
) -> None:
    headers = {**GOOD, **({"Origin": origin} if origin else {})}
    assert (await env.chart(GOOD)).status_code == 200  # computed and kept
    env.answers.clear()  # the next one comes from the response cache on the full path
    hits = env.answers.hits
    full = await env.chart(headers)
    assert env.answers.hits == hits and full.headers["x-cache-status"] == "HIT"
    fast = await env.chart(headers)
    assert env.answers.hits == hits + 1, "the fast path serves cross-origin requests too"
    assert _answer(fast) == _answer(full)
    assert "Origin" in fast.headers["vary"].split(", ")
    allowed = fast.headers.get("access-control-allow-origin")
    if origin is None:
        assert allowed is None and "access-control-expose-headers" not in fast.headers
    elif origin == REFUSED and "*" not in env.origins:
        assert allowed is None
    else:
        assert allowed == ("*" if "*" in env.origins else origin)
        assert "X-Cache-Status" in fast.headers["access-control-expose-headers"]
    revalidate = {**headers, "If-None-Match": fast.headers["etag"]}
    fast_304 = await env.chart(revalidate)
    assert fast_304.status_code == 304 and env.answers.hits == hits + 2
    env.answers.clear()
    full_304 = await env.chart(revalidate)
    assert full_304.status_code == 304 and env.answers.hits == hits + 2
    assert _answer(fast_304) == _answer(full_304)


async def test_a_preflight_of_the_chart_path_is_answered_before_any_token_check(
    env: Env,
) -> None:
    client = env.client
    asked = {"Origin": ALLOWED, "Access-Control-Request-Method": "GET"}
    ok = await client.options(
        "/api/timeseries", headers={**asked, "Access-Control-Request-Headers": "authorization"}
    )
    assert ok.status_code == 200 and ok.text == "OK"
    assert ok.headers["access-control-allow-origin"] in ("*", ALLOWED)
    assert ok.headers["access-control-allow-headers"] == "authorization"
    assert "Origin" in ok.headers["vary"]
    refused = await client.options("/api/timeseries", headers={**asked, "Origin": REFUSED})
    assert refused.status_code == (200 if "*" in env.origins else 400)
    bad_method = await client.options(
        "/api/timeseries", headers={**asked, "Access-Control-Request-Method": "TRACE"}
    )
    assert bad_method.status_code == 400 and "method" in bad_method.text
