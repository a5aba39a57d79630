"""The cache seam: hot response bytes, rate-limit buckets and cross-process locks.

Every adapter keeps the same narrow contract (bytes in and out, ``None`` on a miss,
:class:`~tsgate.errors.StorageError` when the backend fails, ``aclose()``), so the
embedded ``memory://`` cache and a shared ``redis://`` one are interchangeable.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from tsgate.errors import StorageError


class CacheUnavailable(StorageError):
    """The cache backend did not answer (connection refused, timeout, protocol error)."""


class LockTimeout(StorageError):
    """A lock was not acquired within its wait time."""


@dataclass(frozen=True, slots=True)
class Bucket:
    """A rate-limit bucket after one ``take``: was it allowed, and what is left."""

    allowed: bool
    remaining: int  # whole tokens left after this take
    retry_after_s: float  # until one token is available (0 when allowed)
    reset_s: float  # until the bucket is full again


@dataclass(frozen=True, slots=True)
class Namespace:
    """The keys of one user of a shared cache: ``prefix`` + name, so its entries can be
    dropped as a whole without touching anyone else's (rate limits, locks)."""

    prefix: str

    def key(self, name: str) -> str:
        return self.prefix + name

    async def clear(self, cache: Cache) -> int:
        """Drop every entry of this namespace from ``cache``; return how many went."""
        return await cache.delete_prefix(self.prefix)


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None:
        """The bytes stored at ``key``, or ``None`` (absent or expired)."""
        ...

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        """Store ``value`` at ``key``, expiring after ``ttl_s`` seconds (``None``: never)."""
        ...

    async def delete(self, key: str) -> None: ...

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every key starting with ``prefix``; return how many went."""
        ...

    async def take(
        self,
        key: str,
        rate_per_s: float,
        burst: int,
        cost: float = 1.0,
        force: bool = False,
        need: float | None = None,
    ) -> Bucket:
        """Take ``cost`` tokens from the token bucket at ``key`` if it holds ``need``
        (default ``cost``), atomically across processes sharing the backend; it refills at
        ``rate_per_s`` up to ``burst`` tokens. ``force`` takes them even into debt (at
        most ``burst`` deep), for work already done."""
        ...

    def lock(
        self, key: str, ttl_s: float, wait_s: float = 10.0
    ) -> AbstractAsyncContextManager[None]:
        """Hold an exclusive lock on ``key``; it expires after ``ttl_s`` if never released.
        Raises :class:`LockTimeout` when not acquired within ``wait_s``."""
        ...

    async def ping(self) -> float:
        """Round-trip latency in seconds; raises :class:`CacheUnavailable` when down."""
        ...

    async def aclose(self) -> None: ...
