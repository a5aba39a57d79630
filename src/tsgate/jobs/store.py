"""The job store and the webhook outbox as the jobs domain sees them: Protocols it owns.

``tsgate.database`` implements both (``SqlJobStore``, ``SqlNotifications``) over SQLite
and PostgreSQL and passes one contract suite; the jobs code imports only this module, so
it never depends on a database driver or on the concrete store.

Every write a worker makes names ``(worker, attempt)`` of the job it holds: a worker
whose lease expired and was re-claimed matches nothing, so one attempt completes a job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from tsgate.jobs.model import Job, JobState


class JobStore(Protocol):
    # ---- the caller's side ---------------------------------------------------------
    async def submit(self, job: Job, *, token_box: bytes | None, now_ms: int) -> tuple[Job, bool]:
        """The stored job with ``job.id`` (queued anew when dead or cancelled); ``True``
        when this call queued it."""
        ...

    async def get(self, job_id: str) -> Job | None: ...

    async def token_box(self, job_id: str) -> bytes | None: ...

    async def set_token_box(self, job_id: str, box: bytes | None) -> None: ...

    async def list_jobs(
        self, *, state: str | None = None, scope: str | None = None, limit: int = 100
    ) -> list[Job]: ...

    async def counts(self) -> dict[str, int]: ...

    async def count_open(self, scope: str, *, besides: str) -> int:
        """How many of ``scope``'s jobs other than ``besides`` are not finished."""
        ...

    async def cancel(self, job_id: str, *, now_ms: int) -> Job | None: ...

    async def retry(self, job_id: str, *, now_ms: int) -> Job | None: ...

    # ---- the worker's side ---------------------------------------------------------
    async def claim(self, worker: str, *, now_ms: int, lease_ms: int) -> Job | None:
        """Take the most urgent claimable job with a lease, or ``None``."""
        ...

    async def heartbeat(
        self, job: Job, *, now_ms: int, lease_ms: int, progress: Sequence[float] | None = None
    ) -> tuple[bool, bool]:
        """Extend the lease: ``(still held, cancel requested)``."""
        ...

    async def finish(self, job: Job, state: JobState, *, now_ms: int, **values: Any) -> bool:
        """Move a held job to ``state``; ``False`` when the lease was lost."""
        ...

    async def release(self, job: Job, *, now_ms: int) -> bool: ...

    async def expire(self, *, now_ms: int) -> list[str]:
        """Requeue running jobs whose lease ran out; their ids."""
        ...

    # ---- retention -----------------------------------------------------------------
    async def expired(self, *, before_ms: int, limit: int = 500) -> list[tuple[str, str | None]]:
        """``(id, result_key)`` of finished jobs older than ``before_ms``."""
        ...

    async def stored_results(self) -> tuple[int, int]:
        """``(results, bytes)`` of the jobs whose result object is kept."""
        ...

    async def delete(self, ids: Sequence[str]) -> None: ...


class Notifications(Protocol):
    """The webhook outbox: notifications of finished jobs, claimed one at a time."""

    async def claim(self, *, now_ms: int, hold_ms: int) -> Job | None:
        """The longest-due pending notification, held for ``hold_ms``; ``None`` if none."""
        ...

    async def settle(self, job: Job, *, sent: bool, retry_at_ms: int | None) -> None: ...
