"""The embedded cache: an LRU bounded by bytes, in this process only."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from urllib.parse import parse_qs, urlsplit

from tsgate.cache.base import Bucket, LockTimeout
from tsgate.cache.bucket import take_token
from tsgate.errors import ConfigError
from tsgate.keylocks import KeyLocks
from tsgate.lru import LRU

DEFAULT_MAX_BYTES = 64 << 20
# Beyond this many buckets, full (idle) ones are dropped: they equal a fresh bucket.
_MAX_BUCKETS = 100_000


class MemoryCache:
    """``memory://?max_bytes=N``: least recently used entries go first when full."""

    def __init__(
        self, max_bytes: int = DEFAULT_MAX_BYTES, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if max_bytes <= 0:
            raise ConfigError(f"cache: max_bytes must be positive, not {max_bytes}")
        self.max_bytes = max_bytes
        self._clock = clock
        # value, expires at (s); a value as large as the whole cache is still kept
        self._entries: LRU[str, tuple[bytes, float | None]] = LRU(
            max_bytes, lambda entry: len(entry[0]), largest=max_bytes
        )
        self._buckets: dict[str, tuple[float, float, float]] = {}  # tokens, at_s, full_at_s
        self._locks: KeyLocks[str] = KeyLocks()

    @classmethod
    def from_url(cls, url: str) -> MemoryCache:
        query = parse_qs(urlsplit(url).query)
        raw = query.get("max_bytes", [str(DEFAULT_MAX_BYTES)])[0]
        try:
            return cls(int(raw))
        except ValueError as exc:
            raise ConfigError(f"cache: max_bytes={raw!r} is not an integer") from exc

    @property
    def size_bytes(self) -> int:
        return self._entries.bytes

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if expires_at is not None and self._clock() >= expires_at:
            self._entries.pop(key)
            return None
        return value

    async def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        self._entries.pop(key)  # a value larger than the whole cache is not kept
        expires_at = None if ttl_s is None else self._clock() + ttl_s
        self._entries.put(key, (bytes(value), expires_at))

    async def delete(self, key: str) -> None:
        self._entries.pop(key)

    async def delete_prefix(self, prefix: str) -> int:
        return self._entries.drop_where(lambda key: key.startswith(prefix))

    async def take(
        self,
        key: str,
        rate_per_s: float,
        burst: int,
        cost: float = 1.0,
        force: bool = False,
        need: float | None = None,
    ) -> Bucket:
        now_s = self._clock()
        tokens, last_s, _ = self._buckets.get(key, (float(burst), now_s, now_s))
        tokens, bucket = take_token(tokens, last_s, now_s, rate_per_s, burst, cost, force, need)
        self._buckets[key] = (tokens, now_s, now_s + bucket.reset_s)
        if len(self._buckets) > _MAX_BUCKETS:
            self._buckets = {k: b for k, b in self._buckets.items() if b[2] > now_s}
        return bucket

    @contextlib.asynccontextmanager
    async def lock(self, key: str, ttl_s: float, wait_s: float = 10.0) -> AsyncIterator[None]:
        # One process: an asyncio lock is enough and never outlives its holder.
        held = self._locks.hold(key, wait_s=wait_s)
        try:
            await held.__aenter__()
        except TimeoutError as exc:
            raise LockTimeout(f"cache: lock {key!r} not acquired in {wait_s} s") from exc
        try:
            yield
        finally:
            await held.__aexit__(None, None, None)

    async def ping(self) -> float:
        return 0.0

    async def aclose(self) -> None:
        self._entries.clear()
        self._buckets.clear()
