"""The cache seam: hot responses, rate-limit buckets and locks shared by a deployment.

``open_cache(url)`` picks the adapter by URL scheme (``memory://``, ``redis://``);
drivers are imported only when their scheme is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

from tsgate._backends import Adapter, load_adapter
from tsgate.cache.base import Bucket, Cache, CacheUnavailable, LockTimeout

if TYPE_CHECKING:
    from tsgate.cache.memory import MemoryCache
    from tsgate.cache.redis import RedisCache

    # mypy proves here that every adapter satisfies the Protocol.
    def _conforms(a: MemoryCache, b: RedisCache) -> None:
        caches: tuple[Cache, ...] = (a, b)
        del caches


__all__ = ["TABLE", "Bucket", "Cache", "CacheUnavailable", "LockTimeout", "open_cache"]

TABLE = {
    "memory": Adapter("tsgate.cache.memory:MemoryCache"),
    "redis": Adapter("tsgate.cache.redis:RedisCache", extra="redis"),
    "rediss": Adapter("tsgate.cache.redis:RedisCache", extra="redis"),
}


class _CacheClass(Protocol):
    def from_url(self, url: str) -> Cache: ...


def open_cache(url: str) -> Cache:
    """The cache for ``url``; close it with ``aclose()``. No connection is made here:
    a shared cache that is down shows in health checks, not as a failed start."""
    cls = cast(_CacheClass, load_adapter("cache", url, TABLE))
    return cls.from_url(url)
