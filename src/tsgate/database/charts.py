"""Saved chart configurations: a JSON config per chart, owned by one caller scope.

The scope is a salted hash of the caller's token (never the token); every query filters
on it, so one caller can neither see nor delete another's charts. Reading a chart
records it as used; charts unused for ``TSGATE_CHART_TTL_S`` are deleted by maintenance.
"""

from __future__ import annotations

import builtins
import json
import secrets
from typing import Any

import sqlalchemy as sa

from tsgate.database.engine import SqlEngine
from tsgate.database.tables import charts as charts_table
from tsgate.series.savedcharts import SavedChart

_ID_BYTES = 9  # 12 URL-safe characters
_TOUCH_EVERY_MS = 3_600_000


def _saved(row: sa.Row[Any]) -> SavedChart:
    return SavedChart(row.id, row.name, json.loads(row.config), int(row.created_at_ms))


class SavedCharts:
    """The SQL store of saved charts (``series.savedcharts.SavedChartStore``)."""

    def __init__(self, sql: SqlEngine) -> None:
        self._sql = sql

    async def create(
        self, scope: str, name: str, config: dict[str, Any], now_ms: int
    ) -> SavedChart:
        chart = SavedChart(secrets.token_urlsafe(_ID_BYTES), name, config, now_ms)
        row = {
            "id": chart.id,
            "scope": scope,
            "name": name,
            "config": json.dumps(config, separators=(",", ":")),
            "created_at_ms": now_ms,
            "last_used_ms": now_ms,
        }
        async with self._sql.write() as conn:
            await conn.execute(sa.insert(charts_table), [row])
        return chart

    async def get(
        self, scope: str, chart_id: str, *, now_ms: int | None = None
    ) -> SavedChart | None:
        """One of the scope's charts; with ``now_ms``, recorded as used then (at most
        one write an hour per chart)."""
        query = sa.select(charts_table).where(
            charts_table.c.scope == scope, charts_table.c.id == chart_id
        )
        async with self._sql.read() as conn:
            row = (await conn.execute(query)).one_or_none()
        if row is None:
            return None
        if now_ms is not None and now_ms - int(row.last_used_ms) >= _TOUCH_EVERY_MS:
            touch = (
                sa.update(charts_table)
                .where(charts_table.c.id == chart_id)
                .values(last_used_ms=now_ms)
            )
            async with self._sql.write() as conn:
                await conn.execute(touch)
        return _saved(row)

    async def count(self, scope: str) -> int:
        query = sa.select(sa.func.count()).select_from(charts_table)
        async with self._sql.read() as conn:
            found = await conn.execute(query.where(charts_table.c.scope == scope))
            return int(found.scalar_one())

    async def expire(self, *, unused_since_ms: int) -> int:
        """Delete every chart not used since ``unused_since_ms``; returns how many."""
        query = sa.delete(charts_table).where(charts_table.c.last_used_ms < unused_since_ms)
        async with self._sql.write() as conn:
            result = await conn.execute(query)
        return int(result.rowcount or 0)

    async def used_since(self, since_ms: int, limit: int) -> builtins.list[SavedChart]:
        """Charts of every scope opened (or saved) since ``since_ms``, most recently used
        first (use is recorded at most once an hour per chart)."""
        query = (
            sa.select(charts_table)
            .where(charts_table.c.last_used_ms >= since_ms)
            .order_by(charts_table.c.last_used_ms.desc(), charts_table.c.id)
            .limit(max(limit, 0))
        )
        async with self._sql.read() as conn:
            rows = (await conn.execute(query)).all()
        return [_saved(r) for r in rows]

    async def list(self, scope: str, limit: int) -> builtins.list[SavedChart]:
        """The scope's charts, newest first."""
        query = (
            sa.select(charts_table)
            .where(charts_table.c.scope == scope)
            .order_by(charts_table.c.created_at_ms.desc(), charts_table.c.id)
            .limit(max(limit, 0))
        )
        async with self._sql.read() as conn:
            rows = (await conn.execute(query)).all()
        return [_saved(r) for r in rows]

    async def delete(self, scope: str, chart_id: str) -> bool:
        """Delete one of the scope's charts; ``False`` when it has no such chart."""
        query = sa.delete(charts_table).where(
            charts_table.c.scope == scope, charts_table.c.id == chart_id
        )
        async with self._sql.write() as conn:
            result = await conn.execute(query)
        return bool(result.rowcount)
