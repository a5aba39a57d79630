"""The point catalog of each site, cached in SQL from upstream's configured_points.

Refreshed when older than ``ttl_ms`` (or on ``bypass``); upstream's page envelope is
not trusted (its ``pages`` can be wrong): paging stops on a short page or the total.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from tsgate.clock import wall_clock_ms
from tsgate.core.kinds import PeriodMode, PointKinds
from tsgate.core.quality import GAP_MS, holds, profile_of
from tsgate.errors import TsgateError, UpstreamBadAnswer, UpstreamError, UpstreamUnavailable
from tsgate.keylocks import KeyLocks
from tsgate.series.access import UNKNOWN_SITE, AccessCheck
from tsgate.upstream.base import Upstream

log = logging.getLogger(__name__)

PAGE = 1000
MAX_PAGES = 1000  # 1,000,000 points: beyond this upstream is looping


class PointRows(Protocol):
    """The stored catalog the domain reads and refreshes (``tsgate.database.points``
    implements it in SQL). Point objects are upstream's, kept as they came."""

    async def replace_site(
        self, site: str, points: Sequence[Mapping[str, Any]], now_ms: int
    ) -> None:
        """Make ``points`` the whole catalog of ``site``, atomically."""

    async def refreshed_at(self, site: str) -> int | None:
        """When ``site``'s catalog was last replaced; ``None`` if never."""

    async def list(self, site: str, offset: int, limit: int) -> tuple[int, list[dict[str, Any]]]:
        """``(total, page)``: the stored point objects of ``site`` in upstream's order."""

    async def search(
        self, site: str, q: str, tags: Sequence[str], limit: int
    ) -> builtins.list[dict[str, Any]]:
        """Points whose name contains ``q`` (any case) and that carry every tag in ``tags``."""

    async def profiles(self, site: str, names: Sequence[str]) -> dict[str, tuple[bool, int | None]]:
        """``{name: (collect_enabled, collect_interval_s or None)}`` of the known names."""

    async def objects(self, site: str, names: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored point objects of the named points (unknown names are left out)."""

    async def names(self, site: str, collect_enabled_only: bool = True) -> builtins.list[str]:
        """The site's point names in upstream's catalog order."""


class ObservedModeRows(Protocol):
    """The sampling mode each point's reporting pattern shows, kept per (site, point)
    as chunks are written (``tsgate.database.modes`` implements it in SQL): what each
    stored period showed, and the mode they decide together (``core.kinds.settled_mode``)."""

    async def put(self, site: str, periods: Sequence[PeriodMode], now_ms: int) -> None:
        """Record what each written period showed and decide the points' modes again."""

    async def get(self, site: str, names: Sequence[str]) -> dict[str, str]:
        """The observed mode of each named point that has one."""

    async def cadences(
        self, site: str, names: Sequence[str], span: tuple[int, int]
    ) -> dict[str, int]:
        """The regular cadence each named point's stored periods show over ``span``
        (``core.kinds.judged_cadence_ms``; points showing none left out)."""


class Catalog(Protocol):
    """What handlers ask of the point catalog (:class:`PointCatalog` is it)."""

    async def fresh(
        self, site: str, token: str, *, bypass: bool = False, access_checked: bool = False
    ) -> str: ...

    def refresh_ahead(self, site: str, token: str) -> asyncio.Task[None]: ...

    async def stored_objects(
        self, site: str, names: Sequence[str], token: str, *, access_checked: bool = False
    ) -> dict[str, dict[str, Any]]: ...

    async def describe(
        self,
        site: str,
        names: Sequence[str],
        token: str,
        kinds: PointKinds,
        *,
        access_checked: bool = False,
    ) -> dict[str, tuple[str, str]]: ...

    async def described_objects(
        self,
        site: str,
        names: Sequence[str],
        token: str,
        kinds: PointKinds,
        *,
        access_checked: bool = False,
    ) -> tuple[dict[str, dict[str, Any]], dict[str, tuple[str, str]]]: ...

    async def tagged(
        self, site: str, tag: str, token: str, *, limit: int
    ) -> list[dict[str, Any]]: ...

    async def gap_limits(
        self,
        site: str,
        names: Sequence[str],
        token: str,
        kinds: PointKinds,
        *,
        span: tuple[int, int],
        floor_ms: int = GAP_MS,
        access_checked: bool = False,
    ) -> dict[str, int]: ...

    async def observed_modes(self, site: str, names: Sequence[str]) -> dict[str, str]: ...

    async def observed_cadences(
        self, site: str, names: Sequence[str], span: tuple[int, int]
    ) -> dict[str, int]: ...

    async def page(
        self, site: str, token: str, page: int, per_page: int, *, bypass: bool = False
    ) -> tuple[dict[str, Any], str]: ...

    async def search(
        self, site: str, token: str, q: str, tags: Sequence[str], limit: int
    ) -> list[dict[str, Any]]: ...


class PointCatalog:
    def __init__(
        self,
        upstream: Upstream,
        points: PointRows,
        access: AccessCheck,
        modes: ObservedModeRows,
        *,
        ttl_ms: int = 3_600_000,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self.upstream = upstream
        self.points = points
        self.access = access
        self.modes = modes
        self.ttl_ms = ttl_ms
        self._clock = clock_ms or wall_clock_ms
        self._refreshing: KeyLocks[str] = KeyLocks()

    async def fresh(
        self, site: str, token: str, *, bypass: bool = False, access_checked: bool = False
    ) -> str:
        """Make the site's catalog fresh for ``token``; returns the source (STORE or ORIGIN).

        ``access_checked``: the caller checked this token's access to ``site`` for the
        same request (a prepared read), so it is not asked again."""
        if not access_checked:
            await self.access.check(site, token)
        if not bypass and await self._is_fresh(site):
            return "STORE"
        # one refresh of a site at a time: a caller arriving meanwhile (a chart's refresh
        # ahead of its fetch, then its own gaps) waits for it instead of fetching again
        async with self._refreshing.hold(site):
            if not bypass and await self._is_fresh(site):
                return "STORE"
            now = self._clock()
            points = await self._fetch_all(site, token)
            await self.points.replace_site(site, points, now)
        return "ORIGIN"

    def refresh_ahead(self, site: str, token: str) -> asyncio.Task[None]:
        """Make ``site``'s catalog fresh in the background (the token's access to it
        checked by the caller already), while the caller's fetch runs: what the answer
        asks of the catalog afterwards is there by then, or joins the refresh. A failure
        is logged and goes no further: the caller's own use of the catalog refreshes it
        again, and a refusal (a token upstream no longer allows) reaches the caller
        there. Cancel the task when the caller no longer needs it."""

        async def refresh() -> None:
            try:
                await self.fresh(site, token, access_checked=True)
            except TsgateError as exc:
                log.warning("point catalog of %s not refreshed ahead: %s", site, exc)

        return asyncio.ensure_future(refresh())

    async def _is_fresh(self, site: str) -> bool:
        refreshed = await self.points.refreshed_at(site)
        return refreshed is not None and self._clock() - refreshed <= self.ttl_ms

    async def stored_objects(
        self, site: str, names: Sequence[str], token: str, *, access_checked: bool = False
    ) -> dict[str, dict[str, Any]]:
        """The catalog's objects of ``names`` (unknown names left out), the catalog
        refreshed when due; as stored while upstream fails, the series being read already
        (maybe stale) rather than the answer failing. ``access_checked``: the caller
        checked the token on the site already.

        On the unknown site (points read without one) there is no catalog: the token's
        access is checked per point (unless ``access_checked``) and nothing is stored."""
        if site == UNKNOWN_SITE:
            if not access_checked:
                for name in names:
                    await self.access.check(site, token, point=name)
            return {}
        try:
            await self.fresh(site, token, access_checked=access_checked)
        except (UpstreamError, UpstreamBadAnswer) as exc:
            log.warning("point catalog of %s not refreshed: %s", site, exc)
        return await self.points.objects(site, names)

    async def describe(
        self,
        site: str,
        names: Sequence[str],
        token: str,
        kinds: PointKinds,
        *,
        access_checked: bool = False,
    ) -> dict[str, tuple[str, str]]:
        """Each point's ``(kind, mode)`` from the site's catalog (else from its name);
        ``access_checked``: the caller checked the token on the site already."""
        _, described = await self.described_objects(
            site, names, token, kinds, access_checked=access_checked
        )
        return described

    async def described_objects(
        self,
        site: str,
        names: Sequence[str],
        token: str,
        kinds: PointKinds,
        *,
        access_checked: bool = False,
    ) -> tuple[dict[str, dict[str, Any]], dict[str, tuple[str, str]]]:
        """The catalog's objects of ``names`` (as :meth:`stored_objects`) and each point's
        ``(kind, mode)`` (as :meth:`describe`: the mode its reporting pattern showed
        counts), from one refresh of the catalog."""
        objects = await self.stored_objects(site, names, token, access_checked=access_checked)
        observed = await self.observed_modes(site, names)
        described = {n: kinds.describe(objects.get(n, {"name": n}), observed.get(n)) for n in names}
        return objects, described

    async def gap_limits(
        self,
        site: str,
        names: Sequence[str],
        token: str,
        kinds: PointKinds,
        *,
        span: tuple[int, int],
        floor_ms: int = GAP_MS,
        access_checked: bool = False,
    ) -> dict[str, int]:
        """Each point's gap limit over ``span`` (:func:`~tsgate.core.quality.gap_limit_ms`)
        from its catalog object, kind and mode (as :meth:`described_objects`) and the
        regular cadence its stored periods over ``span`` show, as ``/api/quality`` judges
        it."""
        objects, described = await self.described_objects(
            site, names, token, kinds, access_checked=access_checked
        )
        held = [n for n in names if holds(*described[n])]
        cadences = await self.observed_cadences(site, held, span) if held else {}
        return {
            n: profile_of(objects.get(n, {"name": n}), kinds).gap_ms(
                described[n][1], floor_ms, cadences.get(n)
            )
            for n in names
        }

    async def tagged(
        self, site: str, tag: str, token: str, *, limit: int
    ) -> builtins.list[dict[str, Any]]:
        """The site's points carrying the marker tag ``tag`` (at most ``limit``, by name),
        the catalog refreshed when due; as stored while upstream fails. The token's
        access to the site is checked first, whatever upstream does."""
        await self.access.check(site, token)
        try:
            await self.fresh(site, token, access_checked=True)
        except (UpstreamError, UpstreamBadAnswer) as exc:
            log.warning("point catalog of %s not refreshed: %s", site, exc)
        return await self.points.search(site, "", [tag], limit)

    async def observed_modes(self, site: str, names: Sequence[str]) -> dict[str, str]:
        """The sampling mode each point's stored periods show (points without one left out)."""
        return await self.modes.get(site, names)

    async def observed_cadences(
        self, site: str, names: Sequence[str], span: tuple[int, int]
    ) -> dict[str, int]:
        """The regular cadence each point's stored periods over ``span`` show (points
        showing none left out)."""
        if not names:
            return {}
        return await self.modes.cadences(site, names, span)

    async def page(
        self, site: str, token: str, page: int, per_page: int, *, bypass: bool = False
    ) -> tuple[dict[str, Any], str]:
        source = await self.fresh(site, token, bypass=bypass)
        total, items = await self.points.list(site, (page - 1) * per_page, per_page)
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
        return await self.points.search(site, q, tags, limit)

    async def _fetch_all(self, site: str, token: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            found = await self.upstream.configured_points_page(site, page, PAGE, token=token)
            out.extend(i for i in found.items if isinstance(i.get("name"), str))
            if len(found.items) < PAGE or (found.total is not None and len(out) >= found.total):
                return out
        raise UpstreamUnavailable(f"upstream {site} configured_points: more than {MAX_PAGES} pages")
