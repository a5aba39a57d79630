"""The point catalog of each site, cached in SQL from upstream's configured_points.

Refreshed when older than ``ttl_ms`` (or on ``bypass``); upstream's page envelope is
not trusted (its ``pages`` can be wrong): paging stops on a short page or the total.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from tsgate.clock import wall_clock_ms
from tsgate.errors import UpstreamUnavailable
from tsgate.series.access import AccessCheck
from tsgate.upstream.base import Upstream

if TYPE_CHECKING:
    from tsgate.database import Database

PAGE = 1000
MAX_PAGES = 1000  # 1,000,000 points: beyond this upstream is looping


class PointCatalog:
    def __init__(
        self,
        upstream: Upstream,
        db: Database,
        access: AccessCheck,
        *,
        ttl_ms: int = 3_600_000,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self.upstream = upstream
        self.db = db
        self.access = access
        self.ttl_ms = ttl_ms
        self._clock = clock_ms or wall_clock_ms

    async def fresh(self, site: str, token: str, *, bypass: bool = False) -> str:
        """Make the site's catalog fresh for ``token``; returns the source (STORE or ORIGIN)."""
        await self.access.check(site, token)
        refreshed = await self.db.points.refreshed_at(site)
        now = self._clock()
        if not bypass and refreshed is not None and now - refreshed <= self.ttl_ms:
            return "STORE"
        points = await self._fetch_all(site, token)
        await self.db.points.replace_site(site, points, now)
        return "ORIGIN"

    async def page(
        self, site: str, token: str, page: int, per_page: int, *, bypass: bool = False
    ) -> tuple[dict[str, Any], str]:
        source = await self.fresh(site, token, bypass=bypass)
        total, items = await self.db.points.list(site, (page - 1) * per_page, per_page)
        pages = -(-total // per_page)
        return {
            "page": page,
            "pages": pages,
            "per_page": per_page,
            "total": total,
            "items": items,
        }, source

    async def search(
        self, site: str, token: str, q: str, tags: Sequence[str], limit: int
    ) -> list[dict[str, Any]]:
        await self.fresh(site, token)
        return await self.db.points.search(site, q, tags, limit)

    async def _fetch_all(self, site: str, token: str) -> list[dict[str, Any]]:
        path = f"/sites/{quote(site, safe='')}/configured_points"
        out: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            body = await self.upstream.get_json(
                path, token=token, params={"page": page, "per_page": PAGE}
            )
            items = body.get("items") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise UpstreamUnavailable(f"upstream {path}: no 'items' list in page {page}")
            out.extend(i for i in items if isinstance(i, dict) and isinstance(i.get("name"), str))
            total = body.get("total")
            if len(items) < PAGE or (isinstance(total, int) and len(out) >= total):
                return out
        raise UpstreamUnavailable(f"upstream {path}: more than {MAX_PAGES} pages")
