"""The composition root: the only module that builds concrete backends."""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from tsgate.series.reader import SeriesReader
from tsgate.settings import Settings
from tsgate.upstream import open_upstream
from tsgate.upstream.base import Upstream

log = logging.getLogger("tsgate")


@dataclass
class Services:
    """Everything a request handler may use, opened once per process."""

    settings: Settings
    upstream: Upstream
    reader: SeriesReader
    salt: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings, *, upstream: Upstream | None = None
) -> AsyncIterator[Services]:
    """Open every backend named by ``settings``; close them all on exit.

    ``upstream`` may be given by tests that drive a simulator with fault switches.
    """
    async with contextlib.AsyncExitStack() as stack:
        up = upstream if upstream is not None else open_upstream(settings)
        stack.push_async_callback(up.aclose)
        reader = SeriesReader(up)
        stack.push_async_callback(reader.aclose)
        yield Services(settings=settings, upstream=up, reader=reader)
