"""The webhook outbox: pending notifications of finished jobs, claimed one at a time.

A claim moves the notification's due time forward by a hold, so while one worker sends
it no other does; a worker that dies mid-send leaves it due again once the hold passes.
Delivery is therefore at least once: receivers recognise repeats by ``jobId``.
"""

from __future__ import annotations

import sqlalchemy as sa

from tsgate.database.engine import SqlEngine
from tsgate.database.jobs import NOTIFY_FAILED, NOTIFY_PENDING, NOTIFY_SENT, job_of, job_rows
from tsgate.database.tables import jobs
from tsgate.jobs.model import Job


class SqlNotifications:
    """The webhook outbox (``tsgate.jobs.store.Notifications``) in the jobs table."""

    def __init__(self, sql: SqlEngine) -> None:
        self.sql = sql

    async def claim(self, *, now_ms: int, hold_ms: int) -> Job | None:
        """The longest-due pending notification, held for ``hold_ms``; ``None`` if none."""
        due = sa.and_(jobs.c.notify_state == NOTIFY_PENDING, jobs.c.notify_after_ms <= now_ms)
        async with self.sql.write() as conn:
            found = (
                await conn.execute(
                    sa.select(jobs.c.id, jobs.c.notify_after_ms)
                    .where(due)
                    .order_by(jobs.c.notify_after_ms)
                    .limit(1)
                )
            ).first()
            if found is None:
                return None
            job_id, after_ms = found
            # fenced by the due time read: of racing workers exactly one moves it
            held = await conn.execute(
                sa.update(jobs)
                .where(
                    jobs.c.id == job_id,
                    jobs.c.notify_state == NOTIFY_PENDING,
                    jobs.c.notify_after_ms == after_ms,
                )
                .values(
                    notify_after_ms=now_ms + hold_ms,
                    notify_attempts=jobs.c.notify_attempts + 1,
                )
            )
            if held.rowcount != 1:
                return None
            row = (await conn.execute(job_rows().where(jobs.c.id == job_id))).one()
        return job_of(row)

    async def settle(self, job: Job, *, sent: bool, retry_at_ms: int | None) -> None:
        """Record the attempt made on a claimed ``job``: sent, due again at
        ``retry_at_ms``, or (not sent, no retry) failed for good."""
        if sent:
            values: dict[str, object] = {"notify_state": NOTIFY_SENT, "notify_after_ms": None}
        elif retry_at_ms is None:
            values = {"notify_state": NOTIFY_FAILED, "notify_after_ms": None}
        else:
            values = {"notify_after_ms": retry_at_ms}
        async with self.sql.write() as conn:
            await conn.execute(
                sa.update(jobs)
                .where(
                    jobs.c.id == job.id,
                    jobs.c.notify_state == NOTIFY_PENDING,
                    jobs.c.notify_attempts == job.notify_attempts,
                )
                .values(**values)
            )
