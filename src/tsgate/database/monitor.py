"""Monitoring history in SQL: sampled metric values, alert level changes, and the
activity figures the sampler reads (request errors, the job backlog)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from tsgate.database.engine import SqlEngine
from tsgate.database.tables import alert_events, jobs, monitor_samples, request_stats
from tsgate.ops.rules import AlertEvent

SERVER_ERROR = 500


class SqlMonitorHistory:
    def __init__(self, sql: SqlEngine) -> None:
        self._sql = sql

    async def record(self, at_ms: int, values: Mapping[str, float]) -> None:
        rows = [{"metric": k, "at_ms": at_ms, "value": float(v)} for k, v in values.items()]
        if not rows:
            return
        async with self._sql.write() as conn:
            await conn.execute(self._sql.upsert(monitor_samples), rows)

    async def trim(self, before_ms: int) -> int:
        async with self._sql.write() as conn:
            samples = await conn.execute(
                sa.delete(monitor_samples).where(monitor_samples.c.at_ms < before_ms)
            )
            events = await conn.execute(
                sa.delete(alert_events).where(alert_events.c.at_ms < before_ms)
            )
        return max(samples.rowcount, 0) + max(events.rowcount, 0)

    async def value_before(self, metric: str, at_ms: int) -> tuple[int, float] | None:
        """The newest sample of ``metric`` taken at or before ``at_ms``."""
        t = monitor_samples
        return await self._one(
            sa.select(t.c.at_ms, t.c.value)
            .where(t.c.metric == metric, t.c.at_ms <= at_ms)
            .order_by(t.c.at_ms.desc())
        )

    async def value_after(self, metric: str, at_ms: int) -> tuple[int, float] | None:
        """The oldest sample of ``metric`` taken at or after ``at_ms``."""
        t = monitor_samples
        return await self._one(
            sa.select(t.c.at_ms, t.c.value)
            .where(t.c.metric == metric, t.c.at_ms >= at_ms)
            .order_by(t.c.at_ms)
        )

    async def _one(self, query: sa.Select[Any]) -> tuple[int, float] | None:
        async with self._sql.read() as conn:
            row = (await conn.execute(query.limit(1))).one_or_none()
        return None if row is None else (int(row.at_ms), float(row.value))

    async def history(
        self, since_ms: int, until_ms: int, metrics: Sequence[str] | None = None
    ) -> dict[str, list[tuple[int, float]]]:
        t = monitor_samples
        query = sa.select(t.c.metric, t.c.at_ms, t.c.value).where(
            t.c.at_ms >= since_ms, t.c.at_ms < until_ms
        )
        if metrics:
            query = query.where(t.c.metric.in_(list(metrics)))
        out: dict[str, list[tuple[int, float]]] = {}
        async with self._sql.read(stale_ok=True) as conn:
            rows = (await conn.execute(query.order_by(t.c.metric, t.c.at_ms))).all()
        for metric, at, value in rows:
            out.setdefault(str(metric), []).append((int(at), float(value)))
        return out

    async def levels(self) -> dict[str, str]:
        """The level each rule was last changed to."""
        t = alert_events
        latest = sa.select(sa.func.max(t.c.id)).group_by(t.c.rule).scalar_subquery()
        query = sa.select(t.c.rule, t.c.level).where(t.c.id.in_(latest))
        async with self._sql.read() as conn:
            rows = (await conn.execute(query)).all()
        return {str(rule): str(level) for rule, level in rows}

    async def add_events(self, events: Sequence[AlertEvent]) -> None:
        if not events:
            return
        rows = [
            {
                "at_ms": e.at_ms,
                "rule": e.rule,
                "previous": e.previous,
                "level": e.level,
                "value": e.value,
                "message": e.message,
            }
            for e in events
        ]
        async with self._sql.write() as conn:
            await conn.execute(sa.insert(alert_events), rows)

    async def events(self, since_ms: int, limit: int = 500) -> list[AlertEvent]:
        t = alert_events
        query = sa.select(t).where(t.c.at_ms >= since_ms).order_by(t.c.id.desc()).limit(limit)
        async with self._sql.read(stale_ok=True) as conn:
            rows = (await conn.execute(query)).all()
        return [
            AlertEvent(int(r.at_ms), r.rule, r.previous, r.level, r.value, r.message)
            for r in reversed(rows)
        ]

    async def request_errors(self, since_ms: int) -> tuple[int, int]:
        """``(requests, server errors)`` recorded since ``since_ms``."""
        t = request_stats
        server_errors = sa.case((t.c.status >= SERVER_ERROR, t.c.requests), else_=0)
        query = sa.select(
            sa.func.coalesce(sa.func.sum(t.c.requests), 0),
            sa.func.coalesce(sa.func.sum(server_errors), 0),
        ).where(t.c.at_ms >= since_ms)
        async with self._sql.read() as conn:
            total, failed = (await conn.execute(query)).one()
        return int(total), int(failed)

    async def job_backlog(self) -> tuple[int, int | None]:
        """``(queued jobs, creation time of the oldest)``."""
        query = sa.select(sa.func.count(), sa.func.min(jobs.c.created_ms)).where(
            jobs.c.state == "queued"
        )
        async with self._sql.read() as conn:
            count, oldest = (await conn.execute(query)).one()
        return int(count), None if oldest is None else int(oldest)
