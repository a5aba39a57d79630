"""Request statistics: one row per group of requests (a second, a route, a status and a
cache status), trimmed to a retention window."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from tsgate.database.engine import SqlEngine, batched
from tsgate.database.tables import request_stats
from tsgate.ops.stats import RequestGroup, RequestStat

_WRITE_BATCH = 1_000


_COLUMNS = (
    "at_ms", "route", "status", "duration_ms", "samples", "bytes_out", "cache_status", "requests",
)  # fmt: skip


def _row(r: RequestStat) -> dict[str, Any]:
    # spelled out: dataclasses.asdict deep-copies and costs more than the insert itself
    return {
        "at_ms": r.at_ms,
        "route": r.route,
        "status": r.status,
        "duration_ms": r.duration_ms,
        "samples": r.samples,
        "bytes_out": r.bytes_out,
        "cache_status": r.cache_status,
        "requests": r.requests,
    }


class RequestStats:
    """The request statistics table (``tsgate.ops.stats.StatsTable``)."""

    def __init__(self, sql: SqlEngine) -> None:
        self._sql = sql
        self._inserts: dict[str, tuple[str, bool]] = {}  # dialect -> (SQL, positional)

    async def record(self, rows: Sequence[RequestStat]) -> None:
        """Append ``rows`` in one transaction (callers buffer and flush in batches).

        The insert is compiled once and its rows go to the driver as they are, since
        SQLAlchemy's per-row parameter processing costs the event loop a few milliseconds
        for each thousand rows."""
        if not rows:
            return
        async with self._sql.write() as conn:
            text, positional = self._insert(conn.dialect)
            for batch in batched(rows, _WRITE_BATCH):
                params: list[Any] = (
                    [(r.at_ms, r.route, r.status, r.duration_ms, r.samples, r.bytes_out,
                      r.cache_status, r.requests) for r in batch]
                    if positional
                    else [_row(r) for r in batch]
                )  # fmt: skip
                await conn.exec_driver_sql(text, params)

    def _insert(self, dialect: sa.Dialect) -> tuple[str, bool]:
        known = self._inserts.get(dialect.name)
        if known is None:
            compiled = sa.insert(request_stats).compile(dialect=dialect, column_keys=_COLUMNS)
            if compiled.positional and tuple(compiled.positiontup or ()) != _COLUMNS:
                raise AssertionError(f"request_stats insert binds {compiled.positiontup}")
            known = self._inserts[dialect.name] = (str(compiled), compiled.positional)
        return known

    async def trim(self, before_ms: int) -> int:
        """Delete records made before ``before_ms``; return how many rows went."""
        stmt = sa.delete(request_stats).where(request_stats.c.at_ms < before_ms)
        async with self._sql.write() as conn:
            result = await conn.execute(stmt)
        return max(result.rowcount, 0)

    async def groups(self, since_ms: int) -> list[RequestGroup]:
        """Requests since ``since_ms`` grouped by their recorded cache status."""
        t = request_stats
        query = (
            sa.select(
                t.c.cache_status,
                sa.func.sum(t.c.requests),
                sa.func.coalesce(sa.func.sum(t.c.samples), 0),
                sa.func.coalesce(sa.func.sum(t.c.bytes_out), 0),
            )
            .where(t.c.at_ms >= since_ms)
            .group_by(t.c.cache_status)
        )
        async with self._sql.read(stale_ok=True) as conn:  # statistics: a replica may answer
            rows = (await conn.execute(query)).all()
        # PostgreSQL sums BIGINT into NUMERIC (Decimal), hence the int()s.
        return [RequestGroup(str(s), int(c), int(n), int(b)) for s, c, n, b in rows]

    async def summary(self, since_ms: int) -> dict[str, Any]:
        """``{count, by_cache_status: {status: count}, samples, bytes_out}`` since ``since_ms``."""
        groups = await self.groups(since_ms)
        by_status = {g.cache_status: g.count for g in groups}
        return {
            "count": sum(by_status.values()),
            "by_cache_status": by_status,
            "samples": sum(g.samples for g in groups),
            "bytes_out": sum(g.bytes_out for g in groups),
        }
