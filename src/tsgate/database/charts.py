"""Saved chart configurations: a JSON config per chart, owned by one caller scope.

The scope is a salted hash of the caller's token (never the token); every query filters
on it, so one caller can neither see nor delete another's charts.
"""

from __future__ import annotations

import builtins
import json
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from tsgate.database.engine import SqlEngine
from tsgate.database.tables import charts as charts_table

_ID_BYTES = 9  # 12 URL-safe characters


@dataclass(frozen=True)
class SavedChart:
    id: str
    name: str
    config: dict[str, Any]
    created_at_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "config": self.config,
            "createdAt": self.created_at_ms,
        }


def _saved(row: sa.Row[Any]) -> SavedChart:
    return SavedChart(row.id, row.name, json.loads(row.config), int(row.created_at_ms))


class SavedCharts:
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
        }
        async with self._sql.write() as conn:
            await conn.execute(sa.insert(charts_table), [row])
        return chart

    async def get(self, scope: str, chart_id: str) -> SavedChart | None:
        query = sa.select(charts_table).where(
            charts_table.c.scope == scope, charts_table.c.id == chart_id
        )
        async with self._sql.read() as conn:
            row = (await conn.execute(query)).one_or_none()
        return None if row is None else _saved(row)

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
