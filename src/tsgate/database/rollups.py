"""Rollup blobs: one opaque packed blob per (site, point, level, UTC month).

One blob per series-month reads 50 points × 1 year of hourly rollups in ~26 ms where
one SQL row per bucket took 0.5–0.8 s (DESIGN §7). The blob layout belongs to
``core.rollups``; here it is bytes in, bytes out.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from tsgate.database.chunks import IN_LIST_MAX
from tsgate.database.engine import SqlEngine, batched
from tsgate.database.tables import rollups
from tsgate.series.rollupcache import BASIS_LEVEL, BuiltRow, RollupRow

# Few rows per statement: each may carry a large blob.
_WRITE_BATCH = 100


def _rollup_row(row: sa.Row[Any]) -> RollupRow:
    values = dict(row._mapping)
    values["blob"] = bytes(values["blob"])  # psycopg returns memoryview for BYTEA
    return RollupRow(**values)


def month_start_ms(ms: int) -> int:
    """The start of the UTC month containing ``ms``."""
    at = datetime.fromtimestamp(ms / 1000, tz=UTC)
    start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return int(start.timestamp()) * 1000


def _months(start_ms: int, end_ms: int) -> sa.ColumnElement[bool]:
    # Rows are keyed by month start, so "month overlaps [start, end)" reduces to this.
    return sa.and_(
        rollups.c.period_start_ms >= month_start_ms(start_ms),
        rollups.c.period_start_ms < end_ms,
    )


class RollupStore:
    """The SQL store of rollup blobs (``series.rollupcache.RollupBlobs``)."""

    def __init__(self, sql: SqlEngine) -> None:
        self._sql = sql

    async def put(self, rows: Sequence[RollupRow]) -> None:
        """Insert or replace ``rows`` (by primary key) in one transaction."""
        if not rows:
            return
        async with self._sql.write() as conn:
            await self._upsert(conn, rows)

    async def _upsert(self, conn: AsyncConnection, rows: Sequence[RollupRow]) -> None:
        # in key order, as ``put_built`` locks them: two writers never wait on each other
        ordered = sorted(rows, key=lambda r: (r.site, r.point, r.level, r.period_start_ms))
        stmt = self._sql.upsert(rollups)
        for batch in batched(ordered, _WRITE_BATCH):
            await conn.execute(stmt, [dataclasses.asdict(r) for r in batch])

    async def put_built(self, site: str, rows: Sequence[BuiltRow]) -> list[RollupRow]:
        """Store each built row whose guard holds, in one transaction: the hourly rows
        (and the rows replaced) are read ``FOR UPDATE`` on PostgreSQL, so a write of the
        hourly blob waits for it or makes it see the new version; a SQLite write
        transaction holds the database's one write lock from its start."""
        if not rows:
            return []
        levels = sorted({BASIS_LEVEL, *(b.row.level for b in rows)})
        months = sorted({b.row.period_start_ms for b in rows})
        columns = (
            rollups.c.point,
            rollups.c.level,
            rollups.c.period_start_ms,
            rollups.c.updated_at_ms,
        )
        async with self._sql.write() as conn:
            now: dict[tuple[str, str, int], int] = {}
            for names in batched(sorted({b.row.point for b in rows}), IN_LIST_MAX):
                query = (
                    sa.select(*columns)
                    .where(
                        rollups.c.site == site,
                        rollups.c.point.in_(names),
                        rollups.c.level.in_(levels),
                        rollups.c.period_start_ms.in_(months),
                    )
                    .order_by(rollups.c.point, rollups.c.level, rollups.c.period_start_ms)
                    .with_for_update()
                )
                for point, level, month, version in await conn.execute(query):
                    now[(str(point), str(level), int(month))] = int(version)
            stored = [
                b.row
                for b in rows
                if b.row.site == site
                and now.get((b.row.point, BASIS_LEVEL, b.row.period_start_ms)) == b.basis
                and now.get((b.row.point, b.row.level, b.row.period_start_ms)) == b.replaces
            ]
            await self._upsert(conn, stored)
        return stored

    async def versions(
        self, site: str, points: Sequence[str], level: str, start_ms: int, end_ms: int
    ) -> list[tuple[str, int, int]]:
        """``(point, month, updated_at_ms)`` of the rows ``get`` would return, without blobs.

        Lets a reader keep decoded blobs in memory and fetch only those that changed.
        """
        found: list[tuple[str, int, int]] = []
        columns = (rollups.c.point, rollups.c.period_start_ms, rollups.c.updated_at_ms)
        async with self._sql.read() as conn:
            for names in batched(sorted(set(points)), IN_LIST_MAX):
                query = sa.select(*columns).where(
                    rollups.c.site == site,
                    rollups.c.point.in_(names),
                    rollups.c.level == level,
                    _months(start_ms, end_ms),
                )
                found.extend((str(p), int(m), int(u)) for p, m, u in await conn.execute(query))
        return found

    async def get(
        self,
        site: str,
        points: Sequence[str],
        level: str,
        start_ms: int,
        end_ms: int,
        *,
        months: Sequence[int] | None = None,
    ) -> list[RollupRow]:
        """Rows of ``points`` whose month overlaps ``[start_ms, end_ms)``, by point then month.

        ``months`` narrows it to those month starts.
        """
        found: list[RollupRow] = []
        async with self._sql.read() as conn:
            for names in batched(sorted(set(points)), IN_LIST_MAX):
                query = (
                    sa.select(rollups)
                    .where(
                        rollups.c.site == site,
                        rollups.c.point.in_(names),
                        rollups.c.level == level,
                        _months(start_ms, end_ms),
                    )
                    .order_by(rollups.c.point, rollups.c.period_start_ms)
                )
                if months is not None:
                    query = query.where(rollups.c.period_start_ms.in_(sorted(set(months))))
                found.extend(_rollup_row(r) for r in await conn.execute(query))
        return found

    async def delete(
        self, site: str, points: Sequence[str] | None, start_ms: int, end_ms: int
    ) -> int:
        """Remove rows (every level) whose month overlaps the range; return how many.

        ``points=None`` means every point of ``site``.
        """
        where = [rollups.c.site == site, _months(start_ms, end_ms)]
        groups: list[Sequence[str] | None] = (
            [None] if points is None else list(batched(sorted(set(points)), IN_LIST_MAX))
        )
        removed = 0
        async with self._sql.write() as conn:
            for names in groups:
                clause = where if names is None else [*where, rollups.c.point.in_(names)]
                result = await conn.execute(sa.delete(rollups).where(*clause))
                removed += max(result.rowcount, 0)
        return removed
