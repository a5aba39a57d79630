"""The chunk index: which (site, point, resolution, period) chunks exist in the object store.

A chunk covers one UTC day while recent; settled days are compacted into one month-wide
chunk by :meth:`ChunkIndex.replace`. Periods are half-open ``[period_start_ms,
period_end_ms)`` and so are query ranges.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from tsgate.database.engine import SqlEngine, batched
from tsgate.database.tables import chunks

# Bound parameters per IN list: far below SQLite's and PostgreSQL's limits, and small
# enough that the planner keeps using the primary-key index.
IN_LIST_MAX = 500
_WRITE_BATCH = 1_000


@dataclass(frozen=True, slots=True)
class ChunkRow:
    site: str
    point: str
    resolution: str  # "raw" | "5min"
    period_start_ms: int
    period_end_ms: int
    object_key: str
    sealed: bool
    covered_end_ms: int  # data fetched up to here; period_end_ms once sealed
    samples: int
    size_bytes: int
    first_ms: int | None
    last_ms: int | None
    fetched_at_ms: int

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> ChunkRow:
        return cls(**row._mapping)


def _overlaps(start_ms: int, end_ms: int) -> sa.ColumnElement[bool]:
    return sa.and_(chunks.c.period_start_ms < end_ms, chunks.c.period_end_ms > start_ms)


class ChunkIndex:
    def __init__(self, sql: SqlEngine) -> None:
        self._sql = sql

    async def overlapping(
        self, site: str, points: Sequence[str], resolution: str, start_ms: int, end_ms: int
    ) -> list[ChunkRow]:
        """Chunks of ``points`` overlapping ``[start_ms, end_ms)``, by point then time."""
        found: list[ChunkRow] = []
        async with self._sql.read() as conn:
            for names in batched(sorted(set(points)), IN_LIST_MAX):
                query = (
                    sa.select(chunks)
                    .where(
                        chunks.c.site == site,
                        chunks.c.point.in_(names),
                        chunks.c.resolution == resolution,
                        _overlaps(start_ms, end_ms),
                    )
                    .order_by(chunks.c.point, chunks.c.period_start_ms)
                )
                found.extend(ChunkRow.from_row(r) for r in await conn.execute(query))
        return found

    async def upsert(self, rows: Sequence[ChunkRow]) -> None:
        """Insert or replace ``rows`` (by primary key) in one transaction."""
        if not rows:
            return
        stmt = self._sql.upsert(chunks)
        async with self._sql.write() as conn:
            for batch in batched(rows, _WRITE_BATCH):
                await conn.execute(stmt, [dataclasses.asdict(r) for r in batch])

    async def replace(
        self,
        site: str,
        point: str,
        resolution: str,
        old_period_starts: Sequence[int],
        new: ChunkRow,
    ) -> None:
        """Atomically swap the ``old_period_starts`` rows for ``new`` (compaction).

        Either the day rows are gone and the month row is there, or nothing changed.
        """
        async with self._sql.write() as conn:
            for starts in batched(list(old_period_starts), IN_LIST_MAX):
                await conn.execute(
                    sa.delete(chunks).where(
                        chunks.c.site == site,
                        chunks.c.point == point,
                        chunks.c.resolution == resolution,
                        chunks.c.period_start_ms.in_(starts),
                    )
                )
            # An upsert: the month row shares its key with the first day's row.
            await conn.execute(self._sql.upsert(chunks), [dataclasses.asdict(new)])

    async def delete(
        self, site: str, points: Sequence[str] | None, start_ms: int, end_ms: int
    ) -> list[ChunkRow]:
        """Remove every chunk (any resolution) overlapping the range; return what went.

        ``points=None`` means every point of ``site``.
        """
        where: list[sa.ColumnElement[bool]] = [chunks.c.site == site, _overlaps(start_ms, end_ms)]
        groups: list[Sequence[str] | None] = (
            [None] if points is None else list(batched(sorted(set(points)), IN_LIST_MAX))
        )
        removed: list[ChunkRow] = []
        async with self._sql.write() as conn:
            for names in groups:
                clause = where if names is None else [*where, chunks.c.point.in_(names)]
                stmt = sa.delete(chunks).where(*clause).returning(*chunks.c)
                removed.extend(ChunkRow.from_row(r) for r in await conn.execute(stmt))
        removed.sort(key=lambda r: (r.point, r.resolution, r.period_start_ms))
        return removed

    async def counts(self) -> dict[str, int]:
        """Totals over the whole index: chunks, sealed, bytes, samples."""
        query = sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.case((chunks.c.sealed, 1), else_=0)), 0),
            sa.func.coalesce(sa.func.sum(chunks.c.size_bytes), 0),
            sa.func.coalesce(sa.func.sum(chunks.c.samples), 0),
        )
        async with self._sql.read() as conn:
            total, sealed, size, samples = (await conn.execute(query)).one()
        # PostgreSQL sums BIGINT into NUMERIC (Decimal).
        return {
            "chunks": int(total),
            "sealed": int(sealed),
            "bytes": int(size),
            "samples": int(samples),
        }
