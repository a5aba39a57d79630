"""Read-only usage queries for ``/api/stats``: request groups and jobs by state."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from tsgate.database.engine import SqlEngine
from tsgate.database.tables import metadata, request_stats


@dataclass(frozen=True, slots=True)
class RequestGroup:
    cache_status: str
    count: int
    samples: int
    bytes_out: int


async def request_groups(sql: SqlEngine, since_ms: int) -> list[RequestGroup]:
    """Requests since ``since_ms`` grouped by their recorded cache status."""
    t = request_stats
    query = (
        sa.select(
            t.c.cache_status,
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(t.c.samples), 0),
            sa.func.coalesce(sa.func.sum(t.c.bytes_out), 0),
        )
        .where(t.c.at_ms >= since_ms)
        .group_by(t.c.cache_status)
    )
    async with sql.read() as conn:
        rows = (await conn.execute(query)).all()
    # PostgreSQL sums BIGINT into NUMERIC (Decimal), hence the int()s.
    return [RequestGroup(str(s), int(c), int(n), int(b)) for s, c, n, b in rows]


async def jobs_by_state(sql: SqlEngine) -> dict[str, int] | None:
    """``{state: count}`` of the jobs table, or ``None`` where there is no jobs table."""
    jobs = metadata.tables.get("jobs")
    column = None if jobs is None else (jobs.c.get("status") or jobs.c.get("state"))
    if jobs is None or column is None:
        return None
    query = sa.select(column, sa.func.count()).group_by(column)
    async with sql.read() as conn:
        rows = (await conn.execute(query)).all()
    return {str(state): int(count) for state, count in rows}
