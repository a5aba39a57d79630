"""Upstream slots shared fairly between callers: one tenant's export must not starve
another's dashboard.

:class:`FairGate` admits at most ``slots`` holders at once, like a semaphore; when
callers wait, a freed slot goes to the caller next in turn (round robin over the callers
with someone waiting, first come first served within one caller), so a caller with a
hundred requests queued and a caller with two each get every other slot. The key is the
caller's credential as sent upstream; it is held only while its requests wait, never
logged, and no table outlives the waits.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator


class FairGate:
    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("a gate needs at least one slot")
        self._free = slots
        # callers with requests waiting, in turn order (dicts keep insertion order)
        self._waiting: dict[str, deque[asyncio.Future[None]]] = {}

    @property
    def waiting(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    @contextlib.asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[None]:
        await self._acquire(key)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, key: str) -> None:
        if self._free > 0 and not self._waiting:
            self._free -= 1
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue = self._waiting.get(key)
        if queue is None:
            queue = self._waiting[key] = deque()
        queue.append(granted)
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._release()  # the slot was handed over as the waiter was cancelled
            else:
                self._forget(key, granted)
            raise

    def _forget(self, key: str, granted: asyncio.Future[None]) -> None:
        queue = self._waiting.get(key)
        if queue is None:
            return
        with contextlib.suppress(ValueError):
            queue.remove(granted)
        if not queue:
            del self._waiting[key]

    def _release(self) -> None:
        """Hand the slot to the caller next in turn; it goes to the back of the line."""
        while self._waiting:
            key = next(iter(self._waiting))
            queue = self._waiting.pop(key)
            granted = queue.popleft()
            if queue:
                self._waiting[key] = queue  # back of the turn order
            if not granted.done():
                granted.set_result(None)
                return
        self._free += 1
