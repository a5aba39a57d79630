"""What a piece of work made tsgate ask of upstream: per request, per read.

A :class:`Meter` is opened around the work (a context variable, so tasks the work starts
count towards it too); the ACE client records every upstream HTTP request and its body
bytes into every meter open where it runs. Meters nest: the rate limiter opens one
around each caller's request (to charge it), and each read opens its own inside it (its
``ReadStats``), so concurrent reads never count each other's requests. Work nobody
opened a meter around (a background re-check outside its pass) is counted by nobody.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass


@dataclass
class Meter:
    requests: int = 0  # HTTP requests, every redirect hop and retry included
    bytes: int = 0  # of the answers' bodies
    retries: int = 0
    samples: int = 0  # sample rows in the answers, as upstream sent them
    seconds: float = 0.0  # spent waiting for upstream's answers (not for a free slot)


_open: ContextVar[tuple[Meter, ...]] = ContextVar("tsgate_upstream_meters", default=())


@contextlib.contextmanager
def metered() -> Iterator[Meter]:
    """Count the upstream work of the code run inside into a fresh meter (and into the
    meters already open around it)."""
    meter = Meter()
    token = _open.set((*_open.get(), meter))
    try:
        yield meter
    finally:
        _open.reset(token)


def record(requests: int, nbytes: int, seconds: float = 0.0) -> None:
    for meter in _open.get():
        meter.requests += requests
        meter.bytes += nbytes
        meter.seconds += seconds


def retried() -> None:
    for meter in _open.get():
        meter.retries += 1


def sampled(rows: int) -> None:
    for meter in _open.get():
        meter.samples += rows
