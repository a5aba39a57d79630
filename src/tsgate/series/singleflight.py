"""Single-flight upstream fetches: one fetch per point however many readers want it.

Within a process, an asyncio lock per (site, point). Across processes sharing a cache
(``redis://``), a lock in the cache seam per (site, bucket) where a point's bucket is a
hash of its name: at most ``buckets`` lock round trips per fetch however many points it
has, and two readers that want the same point always meet on the same key (unrelated
points sharing a bucket only wait for each other). Locks are taken in sorted order, the
in-process ones first, so no two readers can deadlock. A cache that fails or a lock not
won in time never fails a read: the fetch goes ahead unlocked (at worst, fetched twice).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from tsgate.errors import StorageError
from tsgate.keylocks import KeyLocks

if TYPE_CHECKING:
    from tsgate.cache.base import Cache

log = logging.getLogger("tsgate.reader")


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=8).digest()


class FetchLocks:
    def __init__(
        self, cache: Cache | None = None, *, buckets: int = 64, ttl_s: float = 120.0
    ) -> None:
        self.cache = cache
        self.buckets = buckets
        self.ttl_s = ttl_s  # a crashed holder's lock lapses after this
        self._local: KeyLocks[tuple[str, str]] = KeyLocks()

    def keys(self, site: str, names: Sequence[str]) -> list[str]:
        """The cache-seam lock keys for fetching ``names`` of ``site`` (sorted, unique)."""
        site_h = _digest(site).hex()
        found = {int.from_bytes(_digest(n), "big") % self.buckets for n in names}
        return [f"fetch:{site_h}:{b:02x}" for b in sorted(found)]

    @contextlib.asynccontextmanager
    async def hold(self, site: str, names: Sequence[str]) -> AsyncIterator[None]:
        # sorted order: no two readers can deadlock
        local = self._local.hold_all([(site, n) for n in sorted(set(names))])
        async with local, contextlib.AsyncExitStack() as stack:
            if self.cache is not None:
                for key in self.keys(site, names):
                    if not await self._shared(stack, self.cache, key):
                        break
            yield

    async def _shared(self, stack: contextlib.AsyncExitStack, cache: Cache, key: str) -> bool:
        # waiting as long as a holder may live: after that its lock has lapsed anyway
        lock = cache.lock(key, ttl_s=self.ttl_s, wait_s=self.ttl_s)
        try:
            await lock.__aenter__()
        except StorageError as exc:
            log.warning("fetching without the shared lock %s: %s", key, exc)
            return False

        async def release(*_: object) -> bool:
            try:
                await lock.__aexit__(None, None, None)
            except StorageError as exc:  # it lapses after ttl_s; the fetch itself went well
                log.warning("shared lock %s not released: %s", key, exc)
            return False

        stack.push_async_exit(release)
        return True
