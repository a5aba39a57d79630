"""An in-process queue (``memory://``): the embedded server with its inline worker."""

from __future__ import annotations

import asyncio
from typing import Self


class MemoryJobQueue:
    """An ``asyncio.Queue`` of ids; each ``from_url`` call gives a new, empty queue."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue()

    @classmethod
    def from_url(cls, url: str) -> Self:
        return cls()

    async def publish(self, job_id: str) -> None:
        self._queue.put_nowait(job_id)

    async def wait(self, timeout_s: float) -> str | None:
        try:
            return await asyncio.wait_for(self._queue.get(), timeout_s)
        except TimeoutError:
            return None

    async def aclose(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()
