"""Connections that go away or read slowly: stop the work, bound the buffers.

:class:`DisconnectMiddleware` cancels a request's handler when its client disconnects
before the answer is complete, so a cold read nobody waits for stops fetching from
upstream (jobs run in workers and never depend on a connection). The request is
recorded with status 499 (client closed request).

:class:`ChunkedBodyMiddleware` hands the server large bodies in ``CHUNK_BYTES`` pieces.
The server waits for the socket to drain between pieces, so a slow reader holds at most
a piece plus the transport's high-water mark in buffers, not a second copy of the body.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CHUNK_BYTES = 64 << 10
CLIENT_CLOSED = 499


class DisconnectMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # one message at a time: a request body is read no faster than the handler reads it
        inbox: asyncio.Queue[Message] = asyncio.Queue(maxsize=1)
        state = {"started": False, "done": False, "gone": False}

        async def tracked_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["started"] = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                state["done"] = True
            await send(message)

        handler = asyncio.ensure_future(self.app(scope, inbox.get, tracked_send))

        async def watch() -> None:
            # the only reader of the server's receive: the handler reads from the inbox
            while True:
                message = await receive()
                await inbox.put(message)
                if message["type"] == "http.disconnect":
                    if not state["done"]:
                        state["gone"] = True
                        handler.cancel()
                    return

        watcher = asyncio.ensure_future(watch())
        try:
            await handler
        except asyncio.CancelledError:
            if not state["gone"]:
                handler.cancel()  # cancelled from outside (a shutdown past its grace)
                raise
            if not state["started"]:
                # the server drops it (the client is gone); telemetry records a 499
                await send({"type": "http.response.start", "status": CLIENT_CLOSED})
                await send({"type": "http.response.body", "body": b""})
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


class ChunkedBodyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def chunked_send(message: Message) -> None:
            body = message.get("body", b"")
            if message["type"] != "http.response.body" or len(body) <= CHUNK_BYTES:
                await send(message)
                return
            more = message.get("more_body", False)
            view = memoryview(body)
            for start in range(0, len(body), CHUNK_BYTES):
                last = start + CHUNK_BYTES >= len(body)
                piece = bytes(view[start : start + CHUNK_BYTES])
                await send(
                    {"type": "http.response.body", "body": piece, "more_body": more or not last}
                )

        await self.app(scope, receive, chunked_send)
