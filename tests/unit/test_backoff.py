"""The one backoff: exponential, capped, equal jitter — and what its three users get."""

from __future__ import annotations

import math
import random
from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from tsgate import backoff
from tsgate.jobs.model import RetryPolicy
from tsgate.jobs.webhooks import WebhookSender
from tsgate.upstream.ace import ClientPolicy

bases = st.integers(1, 1_000)
factors = st.integers(1, 5)
caps = st.integers(1, 100_000)
attempts = st.integers(0, 60)


@given(attempts, bases, factors, caps)
def test_the_ceiling_is_the_exact_capped_power(
    attempt: int, base: int, factor: int, cap: int
) -> None:
    # integers: the reference is exact, no float on its side
    expected = min(cap, base * factor**attempt)
    got = backoff.ceiling_s(attempt, base_s=base, cap_s=cap, factor=factor)
    assert math.isclose(got, expected, rel_tol=1e-12)


@given(attempts, bases, factors, caps)
def test_the_ceiling_never_shrinks_and_never_passes_the_cap(
    attempt: int, base: int, factor: int, cap: int
) -> None:
    now = backoff.ceiling_s(attempt, base_s=base, cap_s=cap, factor=factor)
    later = backoff.ceiling_s(attempt + 1, base_s=base, cap_s=cap, factor=factor)
    assert now <= later <= cap


@given(st.floats(0, 1e6), st.floats(0, 1, exclude_max=True))
def test_equal_jitter_keeps_half_and_draws_half(ceiling: float, u: float) -> None:
    delay = backoff.equal_jitter_s(ceiling, u)
    exact = Fraction(ceiling) / 2 + Fraction(ceiling) / 2 * Fraction(u)
    assert math.isclose(delay, float(exact), rel_tol=1e-12, abs_tol=1e-300)
    assert ceiling / 2 <= delay <= ceiling


def test_it_is_equal_jitter_not_full_jitter() -> None:
    # full jitter would let a retry come back at once; equal jitter waits half at least
    assert backoff.equal_jitter_s(8.0, 0.0) == 4.0
    assert backoff.equal_jitter_s(8.0, 0.999) < 8.0


def test_an_absurd_attempt_is_capped_not_an_overflow() -> None:
    assert backoff.ceiling_s(10**6, base_s=0.5, cap_s=10.0) == 10.0
    assert backoff.ceiling_s(10**6, base_s=0.5) == math.inf  # uncapped: no end, no error
    assert backoff.ceiling_s(-3, base_s=0.5, cap_s=10.0) == 0.5  # never below the base


def test_the_three_users_share_it() -> None:
    client = ClientPolicy(backoff_s=0.5, backoff_cap_s=10.0)
    for attempt, ceiling in ((0, 0.5), (1, 1.0), (4, 8.0), (5, 10.0), (30, 10.0)):
        assert client.delay_s(attempt, 0.0) == ceiling / 2
        assert client.delay_s(attempt, 0.5) == backoff.equal_jitter_s(ceiling, 0.5)
    jobs = RetryPolicy(base_s=2.0, factor=3.0, cap_s=300.0)
    rng, same = random.Random(7), random.Random(7)
    for attempt in range(1, 8):
        ceiling = min(300.0, 2.0 * 3.0 ** (attempt - 1))  # attempt 1 waits the base
        assert jobs.delay_s(attempt, rng) == backoff.equal_jitter_s(ceiling, same.random())
    sender = WebhookSender(b"k", retries=40, backoff_s=1.5)
    assert [sender.retry_in_s(n) for n in (1, 2, 3, 40)] == [1.5, 3.0, 6.0, 1.5 * 2.0**39]
    assert sender.retry_in_s(41) is None
