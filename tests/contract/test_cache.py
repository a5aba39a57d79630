"""Every Cache adapter honours the same contract (memory, and the Redis server here)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from tests.conftest import service_url
from tsgate.api.responses import RESPONSES
from tsgate.cache import Cache, CacheUnavailable, LockTimeout, open_cache
from tsgate.cache.base import Namespace
from tsgate.errors import ConfigError

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def cache_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://?max_bytes=1000"
    # A fresh key prefix per test keeps runs independent on the shared server.
    return f"{service_url('redis')}?prefix=tsgate-test-{uuid.uuid4().hex}:"


@pytest.fixture
async def cache(cache_url: str) -> AsyncIterator[Cache]:
    opened = open_cache(cache_url)
    yield opened
    await opened.delete_prefix("")
    await opened.aclose()


async def test_round_trip_miss_and_delete(cache: Cache) -> None:
    assert await cache.get("a") is None
    await cache.set("a", b"\x00payload")
    assert await cache.get("a") == b"\x00payload"
    await cache.set("a", b"new")
    assert await cache.get("a") == b"new"
    await cache.delete("a")
    await cache.delete("a")  # deleting a missing key is fine
    assert await cache.get("a") is None


async def test_ttl_expires(cache: Cache) -> None:
    await cache.set("short", b"x", ttl_s=0.05)
    await cache.set("long", b"y", ttl_s=60)
    assert await cache.get("short") == b"x"
    await asyncio.sleep(0.15)
    assert await cache.get("short") is None
    assert await cache.get("long") == b"y"


async def test_delete_prefix_removes_only_that_prefix(cache: Cache) -> None:
    for key in ("resp:site1:a", "resp:site1:b", "resp:site10:a", "resp:site2:a", "r*:x"):
        await cache.set(key, b"v")
    assert await cache.delete_prefix("resp:site1:") == 2
    assert await cache.get("resp:site1:a") is None
    assert await cache.get("resp:site10:a") == b"v"
    assert await cache.delete_prefix("r*") == 1  # glob characters are literal
    assert await cache.get("resp:site2:a") == b"v"


async def test_a_namespace_is_cleared_whole_and_alone(cache: Cache) -> None:
    answers, other = Namespace("resp:"), Namespace("res:")  # sharing its first letters
    for name in ("a", "page:b", "prom:c"):
        await cache.set(answers.key(name), b"v")
    await cache.set(other.key("x"), b"w")
    await cache.take("rl:caller", rate_per_s=0.001, burst=5)  # a rate-limit bucket
    assert await answers.clear(cache) == 3 and await answers.clear(cache) == 0
    assert await cache.get(answers.key("page:b")) is None
    assert await cache.get(other.key("x")) == b"w"
    assert (await cache.take("rl:caller", rate_per_s=0.001, burst=5)).remaining == 3
    assert RESPONSES.key("k") == "resp:k"  # what verify and POST /api/cache/invalidate drop


async def test_bucket_allows_burst_then_refuses_with_retry_after(cache: Cache) -> None:
    outcomes = [await cache.take("bucket", rate_per_s=0.5, burst=3) for _ in range(4)]
    assert [b.allowed for b in outcomes] == [True, True, True, False]
    assert [b.remaining for b in outcomes[:3]] == [2, 1, 0]
    refused = outcomes[3]
    assert 1.0 < refused.retry_after_s <= 2.0  # one token at 0.5/s
    assert 5.0 < refused.reset_s <= 6.0
    other = await cache.take("other", rate_per_s=0.5, burst=3)
    assert other.allowed and other.remaining == 2


async def test_bucket_charges_costs_and_debts(cache: Cache) -> None:
    cheap = [await cache.take("b", 0.001, 2, cost=1 / 128, need=1.0) for _ in range(10)]
    assert all(b.allowed for b in cheap) and cheap[-1].remaining == 1  # 2 - 10/128
    debt = await cache.take("b", 0.001, 2, cost=10.0, force=True)
    assert debt.allowed and debt.remaining == -2  # at most a burst deep
    refused = await cache.take("b", 0.001, 2, cost=1 / 128, need=1.0)
    assert not refused.allowed  # in debt until refilled
    assert refused.retry_after_s == pytest.approx((1.0 + 2.0) / 0.001, rel=0.01)


async def test_bucket_is_atomic_under_concurrency(cache: Cache) -> None:
    outcomes = await asyncio.gather(*(cache.take("hot", 0.001, 10) for _ in range(25)))
    assert sum(b.allowed for b in outcomes) == 10


async def test_lock_is_exclusive_and_times_out(cache: Cache) -> None:
    inside: list[str] = []

    async def worker(name: str) -> None:
        async with cache.lock("job", ttl_s=5):
            inside.append(f"{name}+")
            await asyncio.sleep(0.02)
            inside.append(f"{name}-")

    await asyncio.gather(worker("a"), worker("b"))
    assert inside in (["a+", "a-", "b+", "b-"], ["b+", "b-", "a+", "a-"])
    async with cache.lock("held", ttl_s=5):
        with pytest.raises(LockTimeout):
            async with cache.lock("held", ttl_s=5, wait_s=0.05):
                pass
    async with cache.lock("held", ttl_s=5, wait_s=0.5):  # released: free again
        pass


async def test_ping_answers(cache: Cache) -> None:
    assert 0.0 <= await cache.ping() < 1.0


async def test_memory_cache_is_bounded_by_bytes_lru() -> None:
    cache = open_cache("memory://?max_bytes=100")
    await cache.set("a", b"x" * 40)
    await cache.set("b", b"x" * 40)
    assert await cache.get("a") is not None  # a is now the most recently used
    await cache.set("c", b"x" * 40)
    assert await cache.get("b") is None
    assert await cache.get("a") is not None
    assert await cache.get("c") is not None
    await cache.set("huge", b"x" * 101)
    assert await cache.get("huge") is None
    await cache.aclose()


async def test_redis_down_raises_cache_unavailable() -> None:
    cache = open_cache("redis://127.0.0.1:1/0")
    with pytest.raises(CacheUnavailable):
        await cache.ping()
    with pytest.raises(CacheUnavailable):
        await cache.get("a")
    await cache.aclose()


def test_unknown_scheme_and_bad_options_fail_loudly() -> None:
    with pytest.raises(ConfigError, match="memory://, redis://"):
        open_cache("memcached://x")
    with pytest.raises(ConfigError, match="max_bytes"):
        open_cache("memory://?max_bytes=lots")
