"""The job store: job rows, claims with leases, and completion fenced by the lease.

One implementation for SQLite and PostgreSQL. A claim is a single
``UPDATE … WHERE id = (SELECT … LIMIT 1 [FOR UPDATE SKIP LOCKED]) RETURNING``: on
PostgreSQL concurrent claimers skip each other's locked rows, on SQLite the write
transaction (``BEGIN IMMEDIATE``) serialises claimers. Every later write by the worker
names ``(worker, attempt)``; a worker whose lease expired and was re-claimed matches no
row, so exactly one attempt can complete a job.

Webhooks use the row as an outbox: a job with a ``notify_url`` is ``armed``; the write
that makes it completed or dead also makes its notification ``pending`` (so a crash can
never lose one), and workers deliver pending ones (``database/notifications.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import sqlalchemy as sa

from tsgate.database.engine import SqlEngine
from tsgate.database.tables import jobs
from tsgate.jobs.model import TERMINAL, Job, JobRequest, JobState

_CLAIMABLE_STATES = (JobState.QUEUED.value, JobState.FAILED.value)
NOTIFIED = (JobState.COMPLETED, JobState.DEAD)  # the states a webhook tells of
NOTIFY_ARMED, NOTIFY_PENDING, NOTIFY_SENT, NOTIFY_FAILED = "armed", "pending", "sent", "failed"
_RESUBMITTABLE = (JobState.DEAD.value, JobState.CANCELLED.value)


class SqlJobStore:
    """The job store (``tsgate.jobs.store.JobStore``) on SQLite or PostgreSQL."""

    def __init__(self, sql: SqlEngine) -> None:
        self.sql = sql

    async def submit(self, job: Job, *, token_box: bytes | None, now_ms: int) -> tuple[Job, bool]:
        """Insert ``job`` or return the existing one with its id; ``True`` when (re)queued.

        A dead or cancelled job with the same id is queued again: asking anew is a retry.
        """
        async with self.sql.write() as conn:
            row = (await conn.execute(job_rows().where(jobs.c.id == job.id))).first()
            if row is None:
                values = _values(job) | {"token_box": token_box}
                await conn.execute(sa.insert(jobs).values(**values))
                return job, True
            if row.state not in _RESUBMITTABLE:
                return job_of(row), False
            await conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == job.id)
                .values(**_requeue(now_ms), token_box=token_box)
            )
            row = (await conn.execute(job_rows().where(jobs.c.id == job.id))).one()
            return job_of(row), True

    async def get(self, job_id: str) -> Job | None:
        async with self.sql.read() as conn:
            row = (await conn.execute(job_rows().where(jobs.c.id == job_id))).first()
        return None if row is None else job_of(row)

    async def token_box(self, job_id: str) -> bytes | None:
        async with self.sql.read() as conn:
            stmt = sa.select(jobs.c.token_box).where(jobs.c.id == job_id)
            box: bytes | None = (await conn.execute(stmt)).scalar_one_or_none()
        return box

    async def set_token_box(self, job_id: str, box: bytes | None) -> None:
        async with self.sql.write() as conn:
            await conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(token_box=box))

    async def list_jobs(
        self, *, state: str | None = None, scope: str | None = None, limit: int = 100
    ) -> list[Job]:
        stmt = job_rows().order_by(jobs.c.created_ms.desc(), jobs.c.id).limit(limit)
        if state is not None:
            stmt = stmt.where(jobs.c.state == state)
        if scope is not None:
            stmt = stmt.where(jobs.c.scope == scope)
        async with self.sql.read() as conn:
            return [job_of(r) for r in await conn.execute(stmt)]

    async def count_open(self, scope: str, *, besides: str) -> int:
        """How many of ``scope``'s jobs other than ``besides`` are not finished."""
        stmt = (
            sa.select(sa.func.count())
            .select_from(jobs)
            .where(
                jobs.c.scope == scope,
                jobs.c.id != besides,
                jobs.c.state.not_in([s.value for s in TERMINAL]),
            )
        )
        async with self.sql.read() as conn:
            return int((await conn.execute(stmt)).scalar_one())

    async def counts(self) -> dict[str, int]:
        stmt = sa.select(jobs.c.state, sa.func.count()).group_by(jobs.c.state)
        async with self.sql.read() as conn:
            return {state: int(n) for state, n in await conn.execute(stmt)}

    # ---- the worker's side ----------------------------------------------------------

    async def claim(self, worker: str, *, now_ms: int, lease_ms: int) -> Job | None:
        """Take the most urgent claimable job with a lease, or ``None``."""
        pick = (
            sa.select(jobs.c.id)
            .where(_claimable(now_ms))
            .order_by(jobs.c.priority, jobs.c.run_after_ms, jobs.c.created_ms)
            .limit(1)
            .with_for_update(skip_locked=True)  # SQLite renders no FOR UPDATE
            .scalar_subquery()
        )
        stmt = (
            sa.update(jobs)
            .where(jobs.c.id == pick)
            .values(
                state=JobState.RUNNING.value,
                attempts=jobs.c.attempts + 1,
                worker=worker,
                lease_until_ms=now_ms + lease_ms,
                started_ms=sa.func.coalesce(jobs.c.started_ms, now_ms),
                updated_ms=now_ms,
                error=None,
            )
            .returning(*jobs.c)
        )
        async with self.sql.write() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else job_of(row)

    async def heartbeat(
        self, job: Job, *, now_ms: int, lease_ms: int, progress: Sequence[float] | None = None
    ) -> tuple[bool, bool]:
        """Extend the lease (and record ``(progress, done, total)``); ``(held, cancel)``."""
        values: dict[str, Any] = {"lease_until_ms": now_ms + lease_ms, "updated_ms": now_ms}
        if progress is not None:
            values |= {
                "progress": progress[0],
                "samples_done": int(progress[1]),
                "samples_total": int(progress[2]),
            }
        stmt = sa.update(jobs).where(_held(job)).values(**values).returning(jobs.c.cancel_requested)
        async with self.sql.write() as conn:
            cancel = (await conn.execute(stmt)).scalar_one_or_none()
        return cancel is not None, bool(cancel)

    async def finish(self, job: Job, state: JobState, *, now_ms: int, **values: Any) -> bool:
        """Move a held job to ``state`` (completed, failed, dead, cancelled, queued).

        ``False`` when the lease was lost: another attempt owns the job now.
        """
        values = {"state": state.value, "updated_ms": now_ms, "lease_until_ms": None} | values
        if state in TERMINAL:
            values["finished_ms"] = now_ms
        if state is JobState.COMPLETED:
            values |= {"progress": 100.0, "error": None}
        if state in NOTIFIED:
            values |= _arm_to_pending(now_ms)
        async with self.sql.write() as conn:
            result = await conn.execute(sa.update(jobs).where(_held(job)).values(**values))
        return result.rowcount == 1

    async def release(self, job: Job, *, now_ms: int) -> bool:
        """Give a job back without counting the attempt (graceful shutdown)."""
        return await self.finish(
            job, JobState.QUEUED, now_ms=now_ms, attempts=job.attempts - 1, run_after_ms=now_ms
        )

    async def expire(self, *, now_ms: int) -> list[str]:
        """Jobs whose lease ran out on their last attempt go dead; returns their ids."""
        cond = sa.and_(
            jobs.c.state == JobState.RUNNING.value,
            jobs.c.lease_until_ms < now_ms,
            jobs.c.attempts >= jobs.c.max_attempts,
        )
        stmt = (
            sa.update(jobs)
            .where(cond)
            .values(
                state=JobState.DEAD.value,
                error="lease expired on the last attempt (worker lost)",
                finished_ms=now_ms,
                updated_ms=now_ms,
                lease_until_ms=None,
                **_arm_to_pending(now_ms),
            )
            .returning(jobs.c.id)
        )
        async with self.sql.write() as conn:
            return [r for (r,) in await conn.execute(stmt)]

    # ---- the caller's side ----------------------------------------------------------

    async def cancel(self, job_id: str, *, now_ms: int) -> Job | None:
        """Cancel a waiting job at once; ask a running one to stop at its next slice."""
        waiting = (*_CLAIMABLE_STATES,)
        async with self.sql.write() as conn:
            await conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state.in_(waiting))
                .values(
                    state=JobState.CANCELLED.value,
                    finished_ms=now_ms,
                    updated_ms=now_ms,
                    token_box=None,
                )
            )
            await conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state == JobState.RUNNING.value)
                .values(cancel_requested=True, updated_ms=now_ms)
            )
            row = (await conn.execute(job_rows().where(jobs.c.id == job_id))).first()
        return None if row is None else job_of(row)

    async def retry(self, job_id: str, *, now_ms: int) -> Job | None:
        """Queue a dead, cancelled or failed job again with a fresh attempt budget."""
        states = (*_RESUBMITTABLE, JobState.FAILED.value)
        async with self.sql.write() as conn:
            await conn.execute(
                sa.update(jobs)
                .where(jobs.c.id == job_id, jobs.c.state.in_(states))
                .values(**_requeue(now_ms))
            )
            row = (await conn.execute(job_rows().where(jobs.c.id == job_id))).first()
        return None if row is None else job_of(row)

    async def expired(self, *, before_ms: int, limit: int = 500) -> list[tuple[str, str | None]]:
        """``(id, result_key)`` of finished jobs older than ``before_ms``."""
        stmt = (
            sa.select(jobs.c.id, jobs.c.result_key)
            .where(jobs.c.state.in_([s.value for s in TERMINAL]), jobs.c.finished_ms < before_ms)
            .limit(limit)
        )
        async with self.sql.read() as conn:
            return [(i, k) for i, k in await conn.execute(stmt)]

    async def stored_results(self) -> tuple[int, int]:
        """``(results, bytes)`` of the jobs whose result object is kept."""
        stmt = sa.select(
            sa.func.count(jobs.c.result_key), sa.func.coalesce(sa.func.sum(jobs.c.result_size), 0)
        ).where(jobs.c.result_key.is_not(None))
        async with self.sql.read() as conn:
            count, size = (await conn.execute(stmt)).one()
        return int(count), int(size)  # PostgreSQL sums BIGINT into NUMERIC

    async def delete(self, ids: Sequence[str]) -> None:
        async with self.sql.write() as conn:
            await conn.execute(sa.delete(jobs).where(jobs.c.id.in_(list(ids))))


def job_rows() -> sa.Select[Any]:
    return sa.select(*(c for c in jobs.c if c.name != "token_box"))


def _claimable(now_ms: int) -> sa.ColumnElement[bool]:
    waiting = sa.and_(jobs.c.state.in_(_CLAIMABLE_STATES), jobs.c.run_after_ms <= now_ms)
    lost = sa.and_(jobs.c.state == JobState.RUNNING.value, jobs.c.lease_until_ms < now_ms)
    return sa.and_(
        sa.or_(waiting, lost),
        jobs.c.attempts < jobs.c.max_attempts,
        sa.not_(jobs.c.cancel_requested),
    )


def _held(job: Job) -> sa.ColumnElement[bool]:
    return sa.and_(
        jobs.c.id == job.id,
        jobs.c.state == JobState.RUNNING.value,
        jobs.c.worker == job.worker,
        jobs.c.attempts == job.attempts,
    )


def _arm_to_pending(now_ms: int) -> dict[str, Any]:
    """An armed webhook becomes due now; other states are left as they are."""
    armed = jobs.c.notify_state == NOTIFY_ARMED
    return {
        "notify_state": sa.case((armed, NOTIFY_PENDING), else_=jobs.c.notify_state),
        "notify_after_ms": sa.case((armed, now_ms), else_=jobs.c.notify_after_ms),
    }


def _requeue(now_ms: int) -> dict[str, Any]:
    # a job run again notifies again when it finishes
    rearm = sa.case((jobs.c.notify_state.is_(None), sa.null()), else_=NOTIFY_ARMED)
    return {
        "notify_state": rearm,
        "notify_attempts": 0,
        "notify_after_ms": None,
        "state": JobState.QUEUED.value,
        "attempts": 0,
        "progress": 0.0,
        "samples_done": 0,
        "error": None,
        "finished_ms": None,
        "run_after_ms": now_ms,
        "updated_ms": now_ms,
        "cancel_requested": False,
        "lease_until_ms": None,
        "worker": None,
    }


def _values(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "scope": job.scope,
        "kind": job.request.kind.value,
        "request": msgspec.json.encode(job.request.to_json()).decode(),
        "state": job.state.value,
        "priority": job.priority,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "progress": job.progress,
        "samples_done": job.samples_done,
        "samples_total": job.samples_total,
        "error": job.error,
        "result_key": job.result_key,
        "result_size": job.result_size,
        "created_ms": job.created_ms,
        "updated_ms": job.updated_ms,
        "started_ms": job.started_ms,
        "finished_ms": job.finished_ms,
        "run_after_ms": job.run_after_ms,
        "lease_until_ms": job.lease_until_ms,
        "worker": job.worker,
        "cancel_requested": job.cancel_requested,
        "notify_state": NOTIFY_ARMED if job.request.notify_url else None,
        "notify_attempts": 0,
        "notify_after_ms": None,
    }


def job_of(row: sa.Row[Any]) -> Job:
    m = row._mapping
    return Job(
        id=m["id"],
        request=JobRequest.from_json(msgspec.json.decode(m["request"])),
        scope=m["scope"],
        state=JobState(m["state"]),
        priority=m["priority"],
        attempts=m["attempts"],
        max_attempts=m["max_attempts"],
        progress=m["progress"],
        samples_done=m["samples_done"],
        samples_total=m["samples_total"],
        error=m["error"],
        result_key=m["result_key"],
        result_size=m["result_size"],
        created_ms=m["created_ms"],
        updated_ms=m["updated_ms"],
        started_ms=m["started_ms"],
        finished_ms=m["finished_ms"],
        run_after_ms=m["run_after_ms"],
        lease_until_ms=m["lease_until_ms"],
        worker=m["worker"],
        cancel_requested=bool(m["cancel_requested"]),
        notify_state=m["notify_state"],
        notify_attempts=m["notify_attempts"],
    )
