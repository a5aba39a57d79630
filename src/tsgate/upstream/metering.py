"""What one caller's request made tsgate ask of upstream, for charging it to the caller.

The rate limiter opens a :class:`Meter` around each request (a context variable, so
tasks the request starts count towards it too); the ACE client records every upstream
HTTP request and its body bytes into the open meter. Work done outside a request (a
background re-check, a job's worker) is metered by nobody.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class Meter:
    requests: int = 0
    bytes: int = 0


_current: ContextVar[Meter | None] = ContextVar("tsgate_upstream_meter", default=None)


@contextlib.contextmanager
def metered() -> Iterator[Meter]:
    """Count the upstream work of the code run inside into a fresh meter."""
    meter = Meter()
    token = _current.set(meter)
    try:
        yield meter
    finally:
        _current.reset(token)


def record(requests: int, nbytes: int) -> None:
    meter = _current.get()
    if meter is not None:
        meter.requests += requests
        meter.bytes += nbytes
