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
import weakref
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tsgate.settings import Settings

WRITE_HIGH_BYTES = 256 << 10


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for request headers.

    A connection only notes when its headers began (``loop.time()``, or None once they are
    complete); one :class:`_HeaderSweep` per event loop closes the late ones. A timer armed
    and cancelled for every request cost a cached answer about a tenth of its CPU time."""

    header_timeout_s = 5.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._headers_since: float | None = None
        super().connection_made(transport)
        transport.set_write_buffer_limits(high=WRITE_HIGH_BYTES)
        if self.header_timeout_s > 0:
            self._headers_since = self.loop.time()
            _HeaderSweep.of(self.loop, self.header_timeout_s).watch(self)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._headers_since = self.loop.time()

    def on_headers_complete(self) -> None:
        self._headers_since = None
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._headers_since = None
        sweep = _SWEEPS.get(self.loop)
        if sweep is not None:
            sweep.forget(self)
        super().connection_lost(exc)

    def headers_late(self, now: float) -> bool:
        since = self._headers_since
        return since is not None and now - since >= self.header_timeout_s

    def close_late(self) -> None:
        self._headers_since = None
        if not self.transport.is_closing():
            self.transport.close()


class _HeaderSweep:
    """The open guarded connections of one event loop, checked every ``period_s`` (a
    quarter of the header timeout, at most a second): a late one is closed within
    ``header_timeout_s + period_s`` of its headers' start."""

    def __init__(self, timeout_s: float) -> None:
        # no reference to the loop: it is this sweep's key in _SWEEPS
        self.period_s = min(1.0, timeout_s / 4)
        self.open: set[GuardedHttpProtocol] = set()
        self._handle: asyncio.TimerHandle | None = None

    @staticmethod
    def of(loop: asyncio.AbstractEventLoop, timeout_s: float) -> _HeaderSweep:
        sweep = _SWEEPS.get(loop)
        if sweep is None:
            sweep = _SWEEPS[loop] = _HeaderSweep(timeout_s)
        return sweep

    def watch(self, conn: GuardedHttpProtocol) -> None:
        self.open.add(conn)
        if self._handle is None:
            self._handle = asyncio.get_running_loop().call_later(self.period_s, self._sweep)

    def forget(self, conn: GuardedHttpProtocol) -> None:
        self.open.discard(conn)

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for conn in [c for c in self.open if c.headers_late(now)]:
            self.open.discard(conn)
            conn.close_late()
        self._handle = loop.call_later(self.period_s, self._sweep) if self.open else None


_SWEEPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _HeaderSweep] = (
    weakref.WeakKeyDictionary()
)


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
