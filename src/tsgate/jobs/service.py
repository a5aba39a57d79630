"""What the API and the CLI do with jobs: submit, look, cancel, retry, clean up.

The caller's token becomes a scope (a keyed hash) for ids and visibility; the token
itself is kept only sealed (see ``tokens``), and not at all when the server reads
upstream with its own ``upstream_token``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tsgate.errors import NotFound, QuotaExceeded, StorageError, Unauthorized
from tsgate.jobqueue.base import JobQueue
from tsgate.jobs.model import Job, JobRequest, JobState, job_id
from tsgate.jobs.store import JobStore
from tsgate.jobs.tokens import TokenBox
from tsgate.object_store.base import ObjectStore
from tsgate.series.access import token_hash

log = logging.getLogger("tsgate.jobs")


class Jobs(Protocol):
    """What the job endpoints and the operations views ask (:class:`JobService` is it)."""

    async def submit(self, request: JobRequest, token: str) -> tuple[Job, bool]: ...

    async def get(self, job_id: str, token: str) -> Job: ...

    async def listing(self, token: str, *, state: str | None = None) -> list[Job]: ...

    async def latest(self, job_id: str) -> Job | None: ...

    async def counts(self) -> dict[str, int]: ...

    async def stored_results(self) -> tuple[int, int]: ...

    async def cancel(self, job_id: str, token: str) -> Job: ...

    async def retry(self, job_id: str, token: str) -> Job: ...


@dataclass
class JobService:
    store: JobStore
    queue: JobQueue
    objects: ObjectStore
    box: TokenBox
    scope_key: bytes
    clock_ms: Callable[[], int]
    server_token: str | None = None
    max_attempts: int = 5
    retention_ms: int = 7 * 86_400_000
    max_open: int = 0  # unfinished jobs one caller may have; 0: no limit

    def scope_of(self, token: str) -> str:
        """The caller's identity for jobs: the token hash every scope uses, keyed by the
        secret alone (``TSGATE_TOKEN_SALT`` does not move it), so job ids agree on every
        server."""
        return token_hash(token, self.scope_key)

    async def submit(self, request: JobRequest, token: str) -> tuple[Job, bool]:
        """The job for ``request`` from ``token``'s caller; ``True`` when newly queued."""
        now = self.clock_ms()
        scope = self.scope_of(token)
        new = Job(
            id=job_id(request, scope),
            request=request,
            scope=scope,
            state=JobState.QUEUED,
            priority=request.priority,
            max_attempts=self.max_attempts,
            created_ms=now,
            updated_ms=now,
            run_after_ms=now,
        )
        if self.max_open > 0:
            open_jobs = await self.store.count_open(scope, besides=new.id)
            if open_jobs >= self.max_open:
                raise QuotaExceeded(
                    "max_open_jobs_per_caller",
                    f"{open_jobs} jobs of this caller are not finished; at most "
                    f"{self.max_open} at once — wait for one to end or cancel one",
                )
        # a server-side token needs no copy of the caller's
        sealed = None if self.server_token else self.box.seal(token, new.id)
        job, queued = await self.store.submit(new, token_box=sealed, now_ms=now)
        if queued:
            await self._wake(job.id)
        return job, queued

    async def get(self, job_id: str, token: str) -> Job:
        job = await self.store.get(job_id)
        # another caller's job does not exist as far as this caller can tell
        if job is None or job.scope != self.scope_of(token):
            raise NotFound(f"no job {job_id!r}")
        return job

    async def cancel(self, job_id: str, token: str) -> Job:
        await self.get(job_id, token)
        job = await self.store.cancel(job_id, now_ms=self.clock_ms())
        if job is None:
            raise NotFound(f"no job {job_id!r}")
        return job

    async def retry(self, job_id: str, token: str) -> Job:
        job = await self.get(job_id, token)
        if job.state not in (JobState.DEAD, JobState.CANCELLED, JobState.FAILED):
            return job
        retried = await self.store.retry(job_id, now_ms=self.clock_ms())
        if retried is None:
            raise NotFound(f"no job {job_id!r}")
        if not self.server_token:
            # the sealed token was dropped when the job ended; seal the caller's again
            await self.store.set_token_box(job_id, self.box.seal(token, job_id))
        await self._wake(job_id)
        return retried

    async def token_for(self, job: Job) -> str:
        """The token a worker reads upstream with for ``job``."""
        if self.server_token:
            return self.server_token
        box = await self.store.token_box(job.id)
        if box is None:
            raise Unauthorized("the job's token is gone; submit the job again")
        return self.box.open(box, job.id)

    async def cleanup(self, now_ms: int) -> int:
        """Delete jobs finished more than the retention ago, with their results."""
        return await cleanup_jobs(
            self.store, self.objects, now_ms=now_ms, retention_ms=self.retention_ms
        )

    async def listing(self, token: str, *, state: str | None = None) -> list[Job]:
        """The caller's jobs (of ``state``, if given), newest first."""
        return await self.store.list_jobs(state=state, scope=self.scope_of(token))

    async def latest(self, job_id: str) -> Job | None:
        """The job as stored now, whoever's (for a stream whose access is checked apart)."""
        return await self.store.get(job_id)

    async def counts(self) -> dict[str, int]:
        """``{state: jobs}`` over every caller's jobs."""
        return await self.store.counts()

    async def stored_results(self) -> tuple[int, int]:
        """``(results, bytes)`` of the job results kept in the object store."""
        return await self.store.stored_results()

    async def _wake(self, job_id: str) -> None:
        try:
            await self.queue.publish(job_id)
        except StorageError as exc:
            # the job is safe in the store; workers find it on their next poll
            log.warning("job %s: wake-up not sent: %s", job_id, exc.detail)


async def cleanup_jobs(
    store: JobStore, objects: ObjectStore, *, now_ms: int, retention_ms: int
) -> int:
    """Delete finished jobs older than ``retention_ms`` and their results (and the parts
    of a progressive query's answer); returns how many."""
    removed = 0
    while batch := await store.expired(before_ms=now_ms - retention_ms):
        for done_id, key in batch:
            if key is not None:
                await objects.delete(key)
            async for kept in objects.list(f"jobs/{done_id[:2]}/{done_id}/"):
                await objects.delete(kept.key)
        await store.delete([job_id for job_id, _ in batch])
        removed += len(batch)
    return removed
