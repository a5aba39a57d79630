"""The point catalog: a site's ACE ``configured_points`` objects, stored whole as JSON.

Name, collect flag, unit and marker tags are lifted into columns so the catalog can be
paged, searched and filtered in SQL; the rest of the ACE object rides along untouched.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from tsgate.database.engine import SqlEngine, batched
from tsgate.database.tables import point_refresh
from tsgate.database.tables import points as points_table

_WRITE_BATCH = 1_000
_IN_LIST_MAX = 500
_UNIT_KEYS = ("unit", "units", "engineering_units", "unit_of_measure")


def _unit(point: Mapping[str, Any]) -> str | None:
    sources = [point.get("kv_tags"), (point.get("bacnet_data") or {}).get("additional_properties")]
    for tags in sources:
        if isinstance(tags, Mapping):
            for key in _UNIT_KEYS:
                value = tags.get(key)
                if isinstance(value, str) and value:
                    return value
    return None


def _tags(point: Mapping[str, Any]) -> str:
    # Padded with spaces so "all tags match" is one LIKE '% tag %' per tag.
    marker = point.get("marker_tags") or []
    return " " + " ".join(str(t).strip().lower() for t in marker if str(t).strip()) + " "


def _row(site: str, point: Mapping[str, Any], now_ms: int, position: int) -> dict[str, Any]:
    return {
        "site": site,
        "position": position,
        "name": point["name"],
        "collect_enabled": bool(point.get("collect_enabled")),
        "unit": _unit(point),
        "tags": _tags(point),
        "data": json.dumps(point, separators=(",", ":")),
        "updated_at_ms": now_ms,
    }


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class PointCatalog:
    def __init__(self, sql: SqlEngine) -> None:
        self._sql = sql

    async def replace_site(
        self, site: str, points: Sequence[Mapping[str, Any]], now_ms: int
    ) -> None:
        """Make ``points`` (ACE point objects) the whole catalog of ``site``, atomically."""
        # a name listed twice keeps its last object, at its last place
        rows = {p["name"]: _row(site, p, now_ms, i) for i, p in enumerate(points)}
        refresh = self._sql.upsert(point_refresh)
        async with self._sql.write() as conn:
            await conn.execute(sa.delete(points_table).where(points_table.c.site == site))
            for batch in batched(list(rows.values()), _WRITE_BATCH):
                await conn.execute(sa.insert(points_table), batch)
            await conn.execute(refresh, [{"site": site, "refreshed_at_ms": now_ms}])

    async def list(self, site: str, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """``(total, page)``: the stored ACE objects of ``site`` in upstream's order."""
        total_q = (
            sa.select(sa.func.count()).select_from(points_table).where(points_table.c.site == site)
        )
        page_q = (
            sa.select(points_table.c.data)
            .where(points_table.c.site == site)
            .order_by(points_table.c.position, points_table.c.name)
            .offset(max(offset, 0))
            .limit(max(limit, 0))
        )
        async with self._sql.read() as conn:
            total = (await conn.execute(total_q)).scalar_one()
            page = (await conn.execute(page_q)).scalars().all()
        return int(total), [json.loads(data) for data in page]

    async def refreshed_at(self, site: str) -> int | None:
        query = sa.select(point_refresh.c.refreshed_at_ms).where(point_refresh.c.site == site)
        async with self._sql.read() as conn:
            value = (await conn.execute(query)).scalar_one_or_none()
        return None if value is None else int(value)

    async def search(
        self, site: str, q: str, tags: Sequence[str], limit: int
    ) -> builtins.list[dict[str, Any]]:
        """Points whose name contains ``q`` (any case) and that carry every tag in ``tags``."""
        where: list[sa.ColumnElement[bool]] = [points_table.c.site == site]
        if q:
            pattern = f"%{_escape_like(q.lower())}%"
            where.append(sa.func.lower(points_table.c.name).like(pattern, escape="\\"))
        for tag in {t.strip().lower() for t in tags if t.strip()}:
            where.append(points_table.c.tags.like(f"% {_escape_like(tag)} %", escape="\\"))
        query = (
            sa.select(points_table.c.data)
            .where(*where)
            .order_by(points_table.c.name)
            .limit(max(limit, 0))
        )
        async with self._sql.read(stale_ok=True) as conn:  # the point picker: a replica may answer
            found = (await conn.execute(query)).scalars().all()
        return [json.loads(data) for data in found]

    async def profiles(self, site: str, names: Sequence[str]) -> dict[str, tuple[bool, int | None]]:
        """``{name: (collect_enabled, collect_interval in seconds or None)}`` of the named
        points the catalog holds (unknown names are left out)."""
        found: dict[str, tuple[bool, int | None]] = {}
        async with self._sql.read() as conn:
            for batch in batched(sorted(set(names)), _IN_LIST_MAX):
                query = sa.select(
                    points_table.c.name, points_table.c.collect_enabled, points_table.c.data
                ).where(points_table.c.site == site, points_table.c.name.in_(batch))
                for name, enabled, data in await conn.execute(query):
                    interval = json.loads(data).get("collect_interval")
                    seconds = (
                        int(interval)
                        if isinstance(interval, int | float) and interval > 0
                        else None
                    )
                    found[name] = (bool(enabled), seconds)
        return found

    async def objects(self, site: str, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The catalog's point objects of the named points (unknown names are left out)."""
        found: dict[str, dict[str, Any]] = {}
        async with self._sql.read() as conn:
            for batch in batched(sorted(set(names)), _IN_LIST_MAX):
                query = sa.select(points_table.c.name, points_table.c.data).where(
                    points_table.c.site == site, points_table.c.name.in_(batch)
                )
                for name, data in await conn.execute(query):
                    found[name] = json.loads(data)
        return found

    async def names(self, site: str, collect_enabled_only: bool = True) -> builtins.list[str]:
        """The site's point names in upstream's catalog order."""
        query = (
            sa.select(points_table.c.name)
            .where(points_table.c.site == site)
            .order_by(points_table.c.position, points_table.c.name)
        )
        if collect_enabled_only:
            query = query.where(points_table.c.collect_enabled.is_(True))
        async with self._sql.read() as conn:
            return builtins.list((await conn.execute(query)).scalars().all())
