"""Read-only usage queries for ``/api/stats``: jobs by state."""

from __future__ import annotations

import sqlalchemy as sa

from tsgate.database.engine import SqlEngine
from tsgate.database.tables import metadata


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
