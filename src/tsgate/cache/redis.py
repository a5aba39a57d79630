"""The shared cache on Redis (redis-py asyncio): ``redis://host:port/db?prefix=tsgate:``.

Every key is namespaced by ``prefix`` so several deployments (or test runs) can share
one server. Rate-limit buckets are updated by a Lua script on the server's clock, so
all processes draw from one bucket atomically.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import LockError, RedisError

from tsgate.cache.base import Bucket, CacheUnavailable, LockTimeout

T = TypeVar("T")
_SCAN_BATCH = 500
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local force = tonumber(ARGV[4])
local need = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local last = tonumber(state[2])
if tokens == nil or last == nil then tokens = burst; last = now end
tokens = math.min(burst, tokens + math.max(0, now - last) * rate)
local allowed = 0
if force == 1 or tokens >= need then tokens = math.max(-burst, tokens - cost); allowed = 1 end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
           'at', string.format('%.17g', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) / rate * 1000) + 1000)
return {allowed, string.format('%.17g', tokens)}
"""


class RedisCache:
    def __init__(self, client: aioredis.Redis, prefix: str = "tsgate:") -> None:
        self._client = client
        self.prefix = prefix
        self._take = client.register_script(_TAKE)

    @classmethod
    def from_url(cls, url: str) -> RedisCache:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query))
        prefix = query.pop("prefix", "tsgate:")
        # fail fast when the server is away: health checks and limits must not hang
        query.setdefault("socket_connect_timeout", "2")
        query.setdefault("socket_timeout", "5")
        clean = urlunsplit(parts._replace(query=urlencode(query)))
        return cls(aioredis.Redis.from_url(clean), prefix)

    async def get(self, key: str) -> bytes | None:
        value = await self._call(self._client.get(self.prefix + key))
        return value.encode() if isinstance(value, str) else value

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        px = None if ttl_s is None else max(1, int(ttl_s * 1000))
        await self._call(self._client.set(self.prefix + key, value, px=px))

    async def delete(self, key: str) -> None:
        await self._call(self._client.delete(self.prefix + key))

    async def delete_prefix(self, prefix: str) -> int:
        pattern = _glob_escape(self.prefix + prefix) + "*"
        removed = 0
        try:
            batch: list[bytes] = []
            async for key in self._client.scan_iter(match=pattern, count=_SCAN_BATCH):
                batch.append(key)
                if len(batch) >= _SCAN_BATCH:
                    removed += await self._client.unlink(*batch)
                    batch = []
            if batch:
                removed += await self._client.unlink(*batch)
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"cache: redis failed: {exc}") from exc
        return removed

    async def take(
        self,
        key: str,
        rate_per_s: float,
        burst: int,
        cost: float = 1.0,
        force: bool = False,
        need: float | None = None,
    ) -> Bucket:
        need = cost if need is None else need
        keys = [self.prefix + key]
        args = [rate_per_s, burst, cost, 1 if force else 0, need]
        allowed, raw = await self._call(self._take(keys=keys, args=args))
        tokens = float(raw)
        return Bucket(
            allowed=bool(allowed),
            remaining=math.floor(tokens),
            retry_after_s=0.0 if allowed else (need - tokens) / rate_per_s,
            reset_s=(burst - tokens) / rate_per_s,
        )

    @contextlib.asynccontextmanager
    async def lock(self, key: str, ttl_s: float, wait_s: float = 10.0) -> AsyncIterator[None]:
        lock = self._client.lock(
            self.prefix + "lock:" + key, timeout=ttl_s, blocking_timeout=wait_s
        )
        if not await self._call(lock.acquire()):
            raise LockTimeout(f"cache: lock {key!r} not acquired in {wait_s} s")
        try:
            yield
        finally:
            with contextlib.suppress(LockError):  # expired meanwhile: someone else may hold it
                await self._call(lock.release())

    async def ping(self) -> float:
        started = time.perf_counter()
        await self._call(self._client.ping())
        return time.perf_counter() - started

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, pending: Awaitable[T]) -> T:
        try:
            return await pending
        except LockError:
            raise
        except (RedisError, OSError) as exc:
            raise CacheUnavailable(f"cache: redis failed: {exc}") from exc


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
