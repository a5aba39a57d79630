"""User files' metadata: one row per file; the bytes are an object named by the row.

Every query names what it filters on (owner scope, site, chart); who may read what is
decided by ``tsgate.api.files`` with the access check, never here.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from tsgate.database.engine import SqlEngine
from tsgate.database.tables import charts
from tsgate.database.tables import files as files_table
from tsgate.files.model import StoredFile


def _stored(row: sa.Row[Any]) -> StoredFile:
    return StoredFile(
        row.id,
        row.scope,
        row.site,
        row.chart_id,
        row.name,
        row.media_type,
        int(row.size_bytes),
        row.sha256,
        row.object_key,
        int(row.created_at_ms),
    )


class StoredFiles:
    def __init__(self, sql: SqlEngine) -> None:
        self._sql = sql

    async def insert(self, file: StoredFile) -> None:
        row = {c.name: getattr(file, c.name) for c in files_table.columns}
        async with self._sql.write() as conn:
            await conn.execute(sa.insert(files_table), [row])

    async def get(self, file_id: str) -> StoredFile | None:
        query = sa.select(files_table).where(files_table.c.id == file_id)
        async with self._sql.read() as conn:
            row = (await conn.execute(query)).one_or_none()
        return None if row is None else _stored(row)

    async def list(
        self,
        *,
        scope: str | None = None,
        site: str | None = None,
        chart_id: str | None = None,
        shared_only: bool = False,
        limit: int = 200,
    ) -> builtins.list[StoredFile]:
        """Files matching every filter given, newest first. ``shared_only``: a site's
        files that are not any chart's attachment."""
        query = sa.select(files_table)
        if scope is not None:
            query = query.where(files_table.c.scope == scope)
        if site is not None:
            query = query.where(files_table.c.site == site)
        if chart_id is not None:
            query = query.where(files_table.c.chart_id == chart_id)
        if shared_only:
            query = query.where(files_table.c.chart_id.is_(None))
        query = query.order_by(files_table.c.created_at_ms.desc(), files_table.c.id)
        async with self._sql.read() as conn:
            rows = (await conn.execute(query.limit(max(limit, 0)))).all()
        return [_stored(r) for r in rows]

    async def usage(self, scope: str | None = None) -> tuple[int, int]:
        """``(files, bytes)`` of one owner scope, or of every file."""
        query = sa.select(
            sa.func.count(), sa.func.coalesce(sa.func.sum(files_table.c.size_bytes), 0)
        ).select_from(files_table)
        if scope is not None:
            query = query.where(files_table.c.scope == scope)
        async with self._sql.read() as conn:
            count, size = (await conn.execute(query)).one()
        return int(count), int(size)  # PostgreSQL sums BIGINT into NUMERIC

    async def delete(self, file_id: str) -> bool:
        query = sa.delete(files_table).where(files_table.c.id == file_id)
        async with self._sql.write() as conn:
            result = await conn.execute(query)
        return bool(result.rowcount)

    async def orphans(self, limit: int = 1000) -> builtins.list[StoredFile]:
        """Attachments whose saved chart is gone (deleted or expired)."""
        query = (
            sa.select(files_table)
            .where(files_table.c.chart_id.is_not(None))
            .where(~sa.exists().where(charts.c.id == files_table.c.chart_id))
            .limit(limit)
        )
        async with self._sql.read() as conn:
            rows = (await conn.execute(query)).all()
        return [_stored(r) for r in rows]

    async def delete_many(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        async with self._sql.write() as conn:
            await conn.execute(sa.delete(files_table).where(files_table.c.id.in_(list(ids))))
