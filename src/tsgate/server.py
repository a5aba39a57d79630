"""Serving the app with uvicorn, bounded against slow and hostile connections.

- A connection must finish its request headers within ``header_timeout_s`` of opening
  (or of its request's first byte); otherwise it is closed. uvicorn alone holds such a
  connection forever (its keep-alive timeout only runs between requests).
- Each connection's transport buffers at most ``WRITE_HIGH_BYTES`` before the server
  waits for the reader (with :class:`~tsgate.api.connection.ChunkedBodyMiddleware`
  handing large bodies over in pieces).
- On SIGTERM in-flight requests get ``shutdown_timeout_s`` to finish, then are cancelled.
"""

from __future__ import annotations

import asyncio
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tsgate.settings import Settings

WRITE_HIGH_BYTES = 256 << 10


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for request headers."""

    header_timeout_s = 5.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._header_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        transport.set_write_buffer_limits(high=WRITE_HIGH_BYTES)
        self._arm_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        if self.header_timeout_s > 0:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _disarm_header_timer(self) -> None:
        if getattr(self, "_header_timer", None) is not None:
            assert self._header_timer is not None
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(header_timeout_s: float) -> type[GuardedHttpProtocol]:
    return type(
        "GuardedHttpProtocol", (GuardedHttpProtocol,), {"header_timeout_s": header_timeout_s}
    )


def uvicorn_config(app: Any, settings: Settings, **options: Any) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        http=guarded_protocol(settings.header_timeout_s),
        timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout_s)),
        **options,
    )
