"""Server-sent event streams from an in-process app, read as they come, and virtual time.

httpx's ASGI transport hands a body over only once the app has finished it, so an
endless event stream is driven here at the ASGI level: the app runs as a task, every body
piece is read as it is sent, and ``close()`` is the client going away (``http.disconnect``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.types import ASGIApp, Message

from tests.asgi import sim_client
from tests.clock import Clock
from tsgate.app import create_app
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator
from tsgate.wiring import Services


@dataclass(frozen=True)
class Event:
    name: str
    data: Any
    id: str | None


class Stream:
    """One request to ``app``; its answer is read piece by piece."""

    def __init__(self, app: ASGIApp, path: str, params: dict[str, str], headers: dict[str, str]):
        self._app = app
        self._scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},  # as uvicorn
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": urlencode(params).encode(),
            "root_path": "",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 50000),
            "server": ("tsgate", 80),
        }
        self._pieces: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._started = asyncio.Event()
        self._gone = asyncio.Event()
        self._asked = False
        self._buffer = b""
        self.status = 0
        self.headers: dict[str, str] = {}
        self.comments = 0
        self.hold: asyncio.Event | None = None  # set: send() waits for it (a slow reader)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> Stream:
        self._task = asyncio.create_task(self._app(self._scope, self._receive, self._send))
        await asyncio.wait_for(self._started.wait(), 30)
        return self

    async def _receive(self) -> Message:
        if not self._asked:
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def _send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode(): v.decode() for k, v in message.get("headers", [])}
            self._started.set()
        elif message["type"] == "http.response.body":
            if self.hold is not None:
                await self.hold.wait()
            self._pieces.put_nowait(message.get("body", b""))
            if not message.get("more_body", False):
                self._pieces.put_nowait(None)

    async def body(self) -> bytes:
        """The whole body (of an answer that ends)."""
        out = self._buffer
        while (piece := await asyncio.wait_for(self._pieces.get(), 30)) is not None:
            out += piece
        return out

    async def event(self, wait_s: float = 10.0) -> Event | None:
        """The next event (comments are counted, not returned); ``None`` at the end."""
        while True:
            if b"\n\n" in self._buffer:
                block, self._buffer = self._buffer.split(b"\n\n", 1)
                parsed = self._parse(block.decode())
                if parsed is not None:
                    return parsed
                continue
            piece = await asyncio.wait_for(self._pieces.get(), wait_s)
            if piece is None:
                return None
            self._buffer += piece

    def _parse(self, block: str) -> Event | None:
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                self.comments += 1
                continue
            key, _, value = line.partition(": ")
            fields[key] = value
        if "event" not in fields:
            return None  # the retry field
        return Event(fields["event"], json.loads(fields["data"]), fields.get("id"))

    async def events_until(self, name: str, wait_s: float = 10.0) -> list[Event]:
        """Events up to and including the first named ``name``."""
        out: list[Event] = []
        while (e := await self.event(wait_s)) is not None:
            out.append(e)
            if e.name == name:
                break
        return out

    def pending(self) -> list[Event]:
        """The events already received and not read yet (without waiting)."""
        out: list[Event] = []
        while True:
            while not self._pieces.empty():
                piece = self._pieces.get_nowait()
                if piece is None:
                    self._pieces.put_nowait(None)
                    break
                self._buffer += piece
            if b"\n\n" not in self._buffer:
                return out
            block, self._buffer = self._buffer.split(b"\n\n", 1)
            parsed = self._parse(block.decode())
            if parsed is not None:
                out.append(parsed)

    async def close(self) -> None:
        """The client goes away."""
        self._gone.set()
        if self._task is not None:
            await asyncio.wait_for(self._task, 30)


class Ticks:
    """Virtual time for pollers: ``sleep`` waits until ``tick()`` moves the clock by the
    time slept and lets the sleeper run; ``tick()`` returns once it sleeps again."""

    def __init__(self, clock: Clock, polling: Callable[[], bool] = lambda: True) -> None:
        self.clock = clock
        self._polling = polling  # whether any poller is left to sleep again
        self._sleepers: asyncio.Queue[tuple[float, asyncio.Future[None]]] = asyncio.Queue()
        self._next: tuple[float, asyncio.Future[None]] | None = None

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await self._sleepers.put((seconds, future))
        await future

    async def _sleeper(self) -> tuple[float, asyncio.Future[None]] | None:
        """The next sleeper, or ``None`` once no poller is left."""
        deadline = asyncio.get_running_loop().time() + 30
        while asyncio.get_running_loop().time() < deadline:
            try:
                seconds, future = await asyncio.wait_for(self._sleepers.get(), 0.05)
            except TimeoutError:
                if not self._polling():
                    return None
                continue
            if not future.cancelled():
                return seconds, future
        raise TimeoutError("no poller went back to sleep")

    async def tick(self) -> int:
        """One poll of the (one) poller; returns the ms the clock moved."""
        sleeper = self._next or await self._sleeper()
        assert sleeper is not None, "no poller is left to tick"
        seconds, future = sleeper
        self._next = None
        moved = int(seconds * 1000)
        self.clock.ms += moved
        future.set_result(None)
        self._next = await self._sleeper()  # the poll is done: it sleeps again
        await asyncio.sleep(0.02)  # and the streams have sent what it found
        return moved


@contextlib.asynccontextmanager
async def live_app(
    settings: Settings, sim: Simulator, clock: Clock
) -> AsyncIterator[tuple[Callable[..., Stream], Services, Ticks]]:
    """The app on ``sim`` with the clock ``clock``; pollers sleep in virtual time."""
    app = create_app(settings, upstream=sim_client(sim), clock_ms=clock)
    async with app.router.lifespan_context(app) as state:
        services: Services = state["services"]
        ticks = Ticks(clock, lambda: bool(services.live.pollers))
        services.live.sleep = ticks.sleep

        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            scope["state"] = dict(state)
            await app(scope, receive, send)

        def stream(params: dict[str, str], headers: dict[str, str] | None = None) -> Stream:
            return Stream(asgi, "/api/timeseries/stream", params, headers or {})

        yield stream, services, ticks
