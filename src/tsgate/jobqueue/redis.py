"""A Redis list as the wake-up channel (``redis://host:port/db?key=…``).

``LPUSH`` + ``BRPOP``: each id wakes one worker. At-most-once delivery is enough since
the store, not the queue, owns the job.
"""

from __future__ import annotations

from typing import Self
from urllib.parse import parse_qs, urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tsgate.errors import StorageError

DEFAULT_KEY = "tsgate:jobs"


class RedisJobQueue:
    def __init__(self, url: str, key: str = DEFAULT_KEY) -> None:
        self.key = key
        self._redis = aioredis.Redis.from_url(url)

    @classmethod
    def from_url(cls, url: str) -> Self:
        parts = urlsplit(url)
        key = parse_qs(parts.query).get("key", [DEFAULT_KEY])[0]
        return cls(urlunsplit(parts._replace(query="")), key)

    async def publish(self, job_id: str) -> None:
        try:
            await self._redis.lpush(self.key, job_id)
        except RedisError as exc:
            raise StorageError(f"queue: redis: {exc}") from exc

    async def wait(self, timeout_s: float) -> str | None:
        try:
            # BRPOP's timeout is in seconds with decimals since Redis 6; 0 would block forever
            item = await self._redis.brpop([self.key], timeout=max(timeout_s, 0.01))
        except RedisError as exc:
            raise StorageError(f"queue: redis: {exc}") from exc
        if item is None:
            return None
        value = item[1]
        return value.decode() if isinstance(value, bytes) else str(value)

    async def aclose(self) -> None:
        await self._redis.aclose()
