"""The job queue seam: wake-ups carrying job ids, nothing more.

Job state lives in the SQL job store; the queue only tells a worker "look, there is
work". A lost or duplicated message therefore costs latency or a wasted claim, never a
job, and workers poll the store when ``wait`` times out.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class JobQueue(Protocol):
    async def publish(self, job_id: str) -> None:
        """Announce that ``job_id`` may be claimable; ``StorageError`` on failure."""
        ...

    async def wait(self, timeout_s: float) -> str | None:
        """The next announced job id, or ``None`` after ``timeout_s`` without one."""
        ...

    async def aclose(self) -> None:
        """Release connections; the queue must not be used afterwards."""
        ...
