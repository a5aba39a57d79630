"""One asyncio lock per key, made when first wanted and dropped when nobody holds or
waits for it any more (the map never grows with keys no longer in use)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class KeyLocks(Generic[K]):
    def __init__(self) -> None:
        self._locks: dict[K, tuple[asyncio.Lock, int]] = {}  # lock, holders + waiters

    def __len__(self) -> int:
        """How many keys are held or waited for."""
        return len(self._locks)

    @contextlib.asynccontextmanager
    async def hold(self, key: K, *, wait_s: float | None = None) -> AsyncIterator[None]:
        """Hold ``key``'s lock; ``TimeoutError`` when not won within ``wait_s``."""
        async with self.hold_all([key], wait_s=wait_s):
            yield

    @contextlib.asynccontextmanager
    async def hold_all(
        self, keys: Sequence[K], *, wait_s: float | None = None
    ) -> AsyncIterator[None]:
        """Hold the locks of ``keys``, taken in the order given (give every caller the
        same order, sorted, and no two can deadlock); ``TimeoutError`` when they are not
        all won within ``wait_s``, and none is held then."""
        wanted = list(dict.fromkeys(keys))  # a key named twice is held once
        for key in wanted:
            lock, users = self._locks.get(key, (asyncio.Lock(), 0))
            self._locks[key] = (lock, users + 1)
        acquired: list[asyncio.Lock] = []
        try:
            async with asyncio.timeout(wait_s):
                for key in wanted:
                    lock = self._locks[key][0]
                    await lock.acquire()
                    acquired.append(lock)
            yield
        finally:
            for lock in acquired:
                lock.release()
            for key in wanted:
                lock, users = self._locks[key]
                if users <= 1:
                    del self._locks[key]
                else:
                    self._locks[key] = (lock, users - 1)
