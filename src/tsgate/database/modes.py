"""The sampling mode each point's reporting pattern shows (``core.kinds.observed_mode``),
kept per (site, point) as chunks are written, for points no tag describes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import sqlalchemy as sa

from tsgate.database.chunks import IN_LIST_MAX
from tsgate.database.engine import SqlEngine, batched
from tsgate.database.tables import point_modes


class ObservedModes:
    def __init__(self, sql: SqlEngine) -> None:
        self._sql = sql

    async def put(self, site: str, modes: Mapping[str, str], now_ms: int) -> None:
        """Record (replace) the observed mode of each named point."""
        if not modes:
            return
        rows = [
            {"site": site, "point": p, "mode": m, "updated_at_ms": now_ms}
            for p, m in sorted(modes.items())
        ]
        async with self._sql.write() as conn:
            await conn.execute(self._sql.upsert(point_modes), rows)

    async def get(self, site: str, names: Sequence[str]) -> dict[str, str]:
        """The observed mode of each named point that has one."""
        found: dict[str, str] = {}
        async with self._sql.read() as conn:
            for batch in batched(sorted(set(names)), IN_LIST_MAX):
                query = sa.select(point_modes.c.point, point_modes.c.mode).where(
                    point_modes.c.site == site, point_modes.c.point.in_(batch)
                )
                found.update((str(p), str(m)) for p, m in await conn.execute(query))
        return found
