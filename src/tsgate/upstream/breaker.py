"""A circuit breaker around upstream calls: stop hammering an upstream that is down.

    closed ──N consecutive failures──▶ open ──reset_s elapsed──▶ half-open
       ▲                                 ▲                          │
       └──────── trial succeeds ─────────┼──────── trial fails ─────┘

A failure is an ``UpstreamError`` (5xx, timeouts, broken bodies, connection errors —
after the client's own retries) on a request tsgate built. Any other outcome — a 4xx
answer, a redirect, upstream's 429s (``UpstreamRateLimited``) — proves upstream is alive
and counts as a success; answers to paths a caller built (the pass-through) are not
counted at all. While open, calls fail at once with
:class:`~tsgate.errors.UpstreamCircuitOpen` carrying ``retry_after_s``. Half-open lets
exactly one trial call through; calls arriving meanwhile wait for its verdict (so a
recovering upstream is not met with a burst of refusals, nor a burst of requests).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tsgate.errors import UpstreamCircuitOpen, UpstreamError, UpstreamRateLimited

T = TypeVar("T")
CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    """``failures=0`` disables it (every call goes through)."""

    def __init__(
        self,
        failures: int = 5,
        reset_s: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.reset_s = reset_s
        self.opens = 0  # how many times it opened, for metrics
        self._clock = clock
        self._consecutive = 0
        self._opened_at: float | None = None
        self._trial: asyncio.Event | None = None  # set when the half-open trial settles

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return CLOSED
        if self._trial is not None or self._clock() - self._opened_at >= self.reset_s:
            return HALF_OPEN
        return OPEN

    async def call(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run ``attempt`` unless the circuit is open; record how it went."""
        trial = await self._admit()
        try:
            result = await attempt()
        except UpstreamRateLimited:
            self._succeeded()  # upstream is alive, only busy: its 429s open nothing
            raise
        except UpstreamError:
            self._failed(trial)
            raise
        except Exception:
            self._succeeded()  # upstream answered (a 4xx, or a body we refused)
            raise
        except BaseException:
            if trial:  # cancelled: no verdict, let a waiting caller try
                self._settle()
            raise
        self._succeeded()
        return result

    def check(self) -> None:
        """Raise ``UpstreamCircuitOpen`` when a call now would be refused (no trial taken)."""
        if self._opened_at is None:
            return
        wait_s = self._opened_at + self.reset_s - self._clock()
        if wait_s > 0:
            raise UpstreamCircuitOpen(
                f"upstream is failing: circuit open after {self.failures} consecutive "
                f"failures; next attempt in {wait_s:.0f} s",
                retry_after_s=wait_s,
            )

    async def _admit(self) -> bool:
        """Let a call through, or raise; True when it is the half-open trial."""
        while self._trial is not None:
            await self._trial.wait()
        if self.failures <= 0 or self._opened_at is None:
            return False
        self.check()
        self._trial = asyncio.Event()
        return True

    def _succeeded(self) -> None:
        self._consecutive = 0
        self._opened_at = None
        self._settle()

    def _failed(self, trial: bool) -> None:
        self._consecutive += 1
        if self.failures > 0 and (trial or self._consecutive >= self.failures):
            if self._opened_at is None or trial:
                self.opens += 1  # closed or half-open → open
            self._opened_at = self._clock()
        if trial:
            self._settle()

    def _settle(self) -> None:
        if self._trial is not None:
            self._trial.set()
            self._trial = None
