"""An in-process queue (``memory://``): the embedded server with its inline worker."""

from __future__ import annotations

import asyncio
from typing import Self

# wake-ups kept unread at most: a server whose jobs run in other processes (whose queues
# are their own) publishes to a queue nobody reads; the oldest go, the sweep finds all
MAX_PENDING = 1024


class MemoryJobQueue:
    """An ``asyncio.Queue`` of ids; each ``from_url`` call gives a new, empty queue.

    It reaches only this process's worker: workers in other processes (``tsgate serve``'s
    job processes) find new jobs by their poll of the store (``TSGATE_JOB_POLL_S``)."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue()

    @classmethod
    def from_url(cls, url: str) -> Self:
        return cls()

    async def publish(self, job_id: str) -> None:
        if self._queue.qsize() >= MAX_PENDING:
            self._queue.get_nowait()
        self._queue.put_nowait(job_id)

    async def wait(self, timeout_s: float) -> str | None:
        try:
            return await asyncio.wait_for(self._queue.get(), timeout_s)
        except TimeoutError:
            return None

    async def aclose(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()
