"""Durable secrets by name (the generated ``TSGATE_SECRET``), written once, never changed.

They live in the database because it is the durable store: the object store is a cache
of upstream that operators may empty, and a secret lost there would hide every saved
chart and job behind new token hashes.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from tsgate.database.engine import SqlEngine
from tsgate.database.tables import secrets as secrets_table
from tsgate.errors import StorageError


class Secrets:
    def __init__(self, sql: SqlEngine) -> None:
        self._sql = sql

    async def get(self, name: str) -> str | None:
        query = sa.select(secrets_table.c.value).where(secrets_table.c.name == name)
        async with self._sql.read() as conn:
            value: str | None = (await conn.execute(query)).scalar_one_or_none()
        return value

    async def put_if_absent(self, name: str, value: str, now_ms: int) -> str:
        """Store ``value`` unless ``name`` has one; returns the one stored (of racing
        processes exactly one's value wins, and all of them return it)."""
        insert = sqlite.insert if self._sql.dialect == "sqlite" else postgresql.insert
        stmt = (
            insert(secrets_table)
            .values(name=name, value=value, created_at_ms=now_ms)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        async with self._sql.write() as conn:
            await conn.execute(stmt)
        stored = await self.get(name)
        if stored is None:  # pragma: no cover - the row was just written
            raise StorageError(f"database: secret {name!r} vanished after being written")
        return stored
