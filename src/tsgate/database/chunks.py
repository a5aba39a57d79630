"""The chunk index in SQL: one row per stored (site, point, resolution, period).

Implements :class:`tsgate.series.index.ChunkIndex`; the row type and its meaning belong
to the domain. Periods are half-open ``[period_start_ms, period_end_ms)`` and so are
query ranges.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from tsgate.database.engine import SqlEngine, batched
from tsgate.database.tables import chunks
from tsgate.series.index import PROVISIONAL, ChunkRow, decode_coverage, encode_coverage

# Bound parameters per IN list: far below SQLite's and PostgreSQL's limits, and small
# enough that the planner keeps using the primary-key index.
IN_LIST_MAX = 500
_WRITE_BATCH = 1_000
_KEY = ("site", "point", "resolution", "period_start_ms")


_FIELDS = tuple(f.name for f in dataclasses.fields(ChunkRow))
_COVERAGE = _FIELDS.index("coverage")
_HOLES = _FIELDS.index("holes")
# the same coverage text comes back for every point of a period: decoded once
_decoded = functools.lru_cache(maxsize=4096)(decode_coverage)


def _from_row(row: sa.Row[Any]) -> ChunkRow:
    if row._fields == _FIELDS:  # the table's columns, in the row type's order
        values = list(row)
        values[_COVERAGE] = _decoded(values[_COVERAGE])
        values[_HOLES] = _decoded(values[_HOLES])
        return ChunkRow(*values)
    named = dict(row._mapping)
    named["coverage"] = _decoded(named["coverage"])
    named["holes"] = _decoded(named["holes"])
    return ChunkRow(**named)


def _to_row(row: ChunkRow) -> dict[str, Any]:
    return {
        "site": row.site,
        "point": row.point,
        "resolution": row.resolution,
        "period_start_ms": row.period_start_ms,
        "period_end_ms": row.period_end_ms,
        "object_key": row.object_key,
        "checksum": row.checksum,
        "coverage": encode_coverage(row.coverage),
        "tail_start_ms": row.tail_start_ms,
        "tail_end_ms": row.tail_end_ms,
        "state": row.state,
        "holes": encode_coverage(row.holes),
        "rechecks": row.rechecks,
        "recheck_at_ms": row.recheck_at_ms,
        "samples": row.samples,
        "size_bytes": row.size_bytes,
        "first_ms": row.first_ms,
        "last_ms": row.last_ms,
        "fetched_at_ms": row.fetched_at_ms,
    }


def _overlaps(start_ms: int, end_ms: int) -> sa.ColumnElement[bool]:
    return sa.and_(chunks.c.period_start_ms < end_ms, chunks.c.period_end_ms > start_ms)


def _is(row: ChunkRow) -> sa.ColumnElement[bool]:
    return sa.and_(
        chunks.c.site == row.site,
        chunks.c.point == row.point,
        chunks.c.resolution == row.resolution,
        chunks.c.period_start_ms == row.period_start_ms,
    )


class SqlChunkIndex:
    def __init__(self, sql: SqlEngine) -> None:
        self._sql = sql

    async def overlapping(
        self, site: str, points: Sequence[str], resolution: str, start_ms: int, end_ms: int
    ) -> list[ChunkRow]:
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
                found.extend(_from_row(r) for r in await conn.execute(query))
        return found

    async def swap(self, remove: Sequence[ChunkRow], add: Sequence[ChunkRow]) -> None:
        if not remove and not add:
            return
        added = {tuple(getattr(r, k) for k in _KEY) for r in add}
        async with self._sql.write() as conn:
            for row in remove:
                if tuple(getattr(row, k) for k in _KEY) not in added:
                    await conn.execute(sa.delete(chunks).where(_is(row)))
            stmt = self._sql.upsert(chunks)
            for batch in batched(list(add), _WRITE_BATCH):
                await conn.execute(stmt, [_to_row(r) for r in batch])

    async def drop_if(self, row: ChunkRow) -> bool:
        async with self._sql.write() as conn:
            stmt = sa.delete(chunks).where(_is(row), chunks.c.object_key == row.object_key)
            result = await conn.execute(stmt)
        return bool(result.rowcount)

    async def due(self, now_ms: int, limit: int) -> list[ChunkRow]:
        query = (
            sa.select(chunks)
            .where(chunks.c.state == PROVISIONAL, chunks.c.recheck_at_ms <= now_ms)
            .order_by(chunks.c.recheck_at_ms)
            .limit(max(0, limit))
        )
        async with self._sql.read() as conn:
            return [_from_row(r) for r in await conn.execute(query)]

    async def delete(
        self, site: str, points: Sequence[str] | None, start_ms: int, end_ms: int
    ) -> list[ChunkRow]:
        where: list[sa.ColumnElement[bool]] = [chunks.c.site == site, _overlaps(start_ms, end_ms)]
        groups: list[Sequence[str] | None] = (
            [None] if points is None else list(batched(sorted(set(points)), IN_LIST_MAX))
        )
        removed: list[ChunkRow] = []
        async with self._sql.write() as conn:
            for names in groups:
                clause = where if names is None else [*where, chunks.c.point.in_(names)]
                stmt = sa.delete(chunks).where(*clause).returning(*chunks.c)
                removed.extend(_from_row(r) for r in await conn.execute(stmt))
        removed.sort(key=lambda r: (r.point, r.resolution, r.period_start_ms))
        return removed

    async def counts(self) -> dict[str, int]:
        def _state(name: str) -> sa.ColumnElement[Any]:
            return sa.func.coalesce(sa.func.sum(sa.case((chunks.c.state == name, 1), else_=0)), 0)

        query = sa.select(
            sa.func.count(),
            _state("final"),
            _state(PROVISIONAL),
            sa.func.coalesce(sa.func.sum(chunks.c.size_bytes), 0),
            sa.func.coalesce(sa.func.sum(chunks.c.samples), 0),
        )
        async with self._sql.read() as conn:
            total, final, provisional, size, samples = (await conn.execute(query)).one()
        # PostgreSQL sums BIGINT into NUMERIC (Decimal).
        return {
            "chunks": int(total),
            "final": int(final),
            "provisional": int(provisional),
            "bytes": int(size),
            "samples": int(samples),
        }
