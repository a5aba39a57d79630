"""Running the app in-process for tests: its lifespan, and a real server when needed."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from tsgate.app import create_app
from tsgate.settings import Settings
from tsgate.upstream.ace import AceClient, ClientPolicy
from tsgate.upstream.breaker import CircuitBreaker
from tsgate.upstream.simulator import Simulator

FAST_POLICY = ClientPolicy(timeout_s=5.0, retries=2, backoff_s=0.001, backoff_cap_s=0.01)


def sim_client(
    sim: Simulator, policy: ClientPolicy = FAST_POLICY, *, breaker: CircuitBreaker | None = None
) -> AceClient:
    """The real ACE client talking to ``sim`` in-process."""
    transport = httpx.ASGITransport(app=sim)
    return AceClient("http://simulator/api", policy, transport=transport, breaker=breaker)


@contextlib.asynccontextmanager
async def lifespan_app(app: Starlette) -> AsyncIterator[Any]:
    """The app with its lifespan entered, as an ASGI callable carrying the lifespan state."""
    async with app.router.lifespan_context(app) as state:

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = dict(state or {})
            await app(scope, receive, send)

        yield with_state


@contextlib.asynccontextmanager
async def lifespan_client(
    app: Starlette, base_url: str = "http://tsgate"
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, Any]]]:
    """An httpx client on ``app`` with its lifespan entered, and the lifespan state (the
    services, the fast path's answers) for tests that look behind the answers."""
    async with app.router.lifespan_context(app) as state:
        assert state is not None

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            scope["state"] = dict(state)
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
            yield client, dict(state)


@contextlib.asynccontextmanager
async def api_client(
    settings: Settings,
    sim: Simulator,
    policy: ClientPolicy = FAST_POLICY,
    *,
    clock_ms: Callable[[], int] | None = None,
    breaker: CircuitBreaker | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on tsgate, whose upstream is ``sim`` through the real ACE client."""
    upstream = sim_client(sim, policy, breaker=breaker)
    app = create_app(settings, upstream=upstream, clock_ms=clock_ms)
    async with lifespan_app(app) as asgi:
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://tsgate") as client:
            yield client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def live_server(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in a thread; yields the base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
