"""Token-bucket refill math, on the in-memory cache with an injected clock."""

from __future__ import annotations

import pytest

from tsgate.api.ratelimit import route_class
from tsgate.cache.bucket import take_token
from tsgate.cache.memory import MemoryCache

pytestmark = pytest.mark.anyio


class Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


@pytest.mark.parametrize(
    ("tokens", "elapsed_s", "allowed", "left", "retry_after_s", "reset_s"),
    [
        (3.0, 0.0, True, 2.0, 0.0, 1.0),  # full bucket (burst 3, 1 token/s)
        (0.0, 0.0, False, 0.0, 1.0, 3.0),  # empty: one token in a second
        (0.0, 0.25, False, 0.25, 0.75, 2.75),  # partly refilled, still short
        (0.0, 1.0, True, 0.0, 0.0, 3.0),  # exactly one token back
        (1.0, 100.0, True, 2.0, 0.0, 1.0),  # refill is capped at the burst
    ],
)
def test_take_token_table(
    tokens: float,
    elapsed_s: float,
    allowed: bool,
    left: float,
    retry_after_s: float,
    reset_s: float,
) -> None:
    new_tokens, bucket = take_token(tokens, 10.0, 10.0 + elapsed_s, 1.0, 3)
    assert bucket.allowed is allowed
    assert new_tokens == pytest.approx(left)
    assert bucket.retry_after_s == pytest.approx(retry_after_s)
    assert bucket.reset_s == pytest.approx(reset_s)


async def test_memory_bucket_refills_with_the_clock() -> None:
    clock = Clock()
    cache = MemoryCache(clock=clock)
    rate = 10 / 60  # 10 per minute
    taken = [await cache.take("k", rate, 5) for _ in range(6)]
    assert [b.allowed for b in taken] == [True] * 5 + [False]
    assert [b.remaining for b in taken] == [4, 3, 2, 1, 0, 0]
    assert taken[-1].retry_after_s == pytest.approx(6.0)
    assert taken[-1].reset_s == pytest.approx(30.0)
    clock.now_s += 5.9
    assert not (await cache.take("k", rate, 5)).allowed
    clock.now_s += 0.1  # 6 s since empty: one token
    again = await cache.take("k", rate, 5)
    assert again.allowed and again.remaining == 0
    clock.now_s += 3600  # idle for an hour: full again, never more than the burst
    assert (await cache.take("k", rate, 5)).remaining == 4
    await cache.aclose()


async def test_memory_buckets_are_independent_per_key() -> None:
    cache = MemoryCache(clock=Clock())
    assert (await cache.take("a", 1.0, 1)).allowed
    assert not (await cache.take("a", 1.0, 1)).allowed
    assert (await cache.take("b", 1.0, 1)).allowed


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/health", None),
        ("/metrics", None),
        ("/", None),
        ("/api/sites", "read"),
        ("/api/timeseries", "read"),
        ("/api/jobs", "jobs"),
        ("/api/jobs/abc/result", "jobs"),
        ("/api/jobsite", "read"),
        ("/api/stats", "admin"),
        ("/api/cache/invalidate", "admin"),
    ],
)
def test_route_classes(path: str, expected: str | None) -> None:
    assert route_class(path) == expected
