"""The circuit breaker: opens after N failures, fails fast, one trial when half-open."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from tsgate.errors import NotFound, Unauthorized, UpstreamCircuitOpen, UpstreamUnavailable
from tsgate.upstream.breaker import CircuitBreaker

pytestmark = pytest.mark.anyio


@dataclass
class Clock:
    s: float = 1000.0

    def __call__(self) -> float:
        return self.s


@dataclass
class Upstream:
    """Counts calls; fails with ``error`` while it is set."""

    error: Exception | None = None
    calls: int = 0
    delay_s: float = 0.0

    async def __call__(self) -> str:
        self.calls += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if self.error is not None:
            raise self.error
        return "ok"


async def fail(breaker: CircuitBreaker, up: Upstream, times: int) -> None:
    for _ in range(times):
        with pytest.raises(UpstreamUnavailable):
            await breaker.call(up)


async def test_opens_after_n_consecutive_failures_and_fails_fast() -> None:
    clock, up = Clock(), Upstream(UpstreamUnavailable("HTTP 500"))
    breaker = CircuitBreaker(3, 30.0, clock=clock)
    await fail(breaker, up, 2)
    assert breaker.state == "closed"
    await fail(breaker, up, 1)
    assert breaker.state == "open" and breaker.opens == 1 and up.calls == 3
    clock.s += 10
    with pytest.raises(UpstreamCircuitOpen) as refused:
        await breaker.call(up)
    assert up.calls == 3  # no request while open
    assert refused.value.retry_after_s == pytest.approx(20.0)


async def test_a_success_resets_the_count() -> None:
    up = Upstream(UpstreamUnavailable("HTTP 500"))
    breaker = CircuitBreaker(3, 30.0, clock=Clock())
    await fail(breaker, up, 2)
    up.error = None
    assert await breaker.call(up) == "ok"
    up.error = UpstreamUnavailable("HTTP 500")
    await fail(breaker, up, 2)
    assert breaker.state == "closed"


@pytest.mark.parametrize("answer", [Unauthorized("bad token"), NotFound("no such site")])
async def test_client_errors_are_not_failures(answer: Exception) -> None:
    up = Upstream(answer)
    breaker = CircuitBreaker(2, 30.0, clock=Clock())
    for _ in range(5):
        with pytest.raises(type(answer)):
            await breaker.call(up)
    assert breaker.state == "closed" and up.calls == 5


async def test_half_open_trial_success_closes() -> None:
    clock, up = Clock(), Upstream(UpstreamUnavailable("HTTP 500"))
    breaker = CircuitBreaker(1, 30.0, clock=clock)
    await fail(breaker, up, 1)
    clock.s += 30
    assert breaker.state == "half_open"
    up.error, up.delay_s = None, 0.01
    # callers arriving during the trial wait for its verdict instead of being refused
    results = await asyncio.gather(*(breaker.call(up) for _ in range(5)))
    assert results == ["ok"] * 5 and breaker.state == "closed"


async def test_half_open_trial_failure_reopens_with_one_request() -> None:
    clock, up = Clock(), Upstream(UpstreamUnavailable("HTTP 500"), delay_s=0.01)
    breaker = CircuitBreaker(1, 30.0, clock=clock)
    await fail(breaker, up, 1)
    clock.s += 31
    outcomes = await asyncio.gather(*(breaker.call(up) for _ in range(5)), return_exceptions=True)
    assert up.calls == 2  # the first failure, then exactly one trial
    assert type(outcomes[0]) is UpstreamUnavailable
    assert all(isinstance(o, UpstreamCircuitOpen) for o in outcomes[1:])
    assert breaker.state == "open" and breaker.opens == 2


async def test_a_cancelled_trial_lets_the_next_caller_try() -> None:
    clock, up = Clock(), Upstream(UpstreamUnavailable("HTTP 500"))
    breaker = CircuitBreaker(1, 30.0, clock=clock)
    await fail(breaker, up, 1)
    clock.s += 30
    up.error, up.delay_s = None, 10.0
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(breaker.call(up), 0.01)
    up.delay_s = 0.0
    assert await breaker.call(up) == "ok" and breaker.state == "closed"


async def test_zero_failures_disables_it() -> None:
    up = Upstream(UpstreamUnavailable("HTTP 500"))
    breaker = CircuitBreaker(0, 30.0, clock=Clock())
    await fail(breaker, up, 10)
    assert breaker.state == "closed" and up.calls == 10
