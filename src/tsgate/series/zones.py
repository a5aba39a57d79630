"""Each site's IANA time zone: configured, or derived offline from its coordinates.

ACE sites carry ``latitude`` and ``longitude`` but no zone. tsgate looks the zone up in
the time-zone boundary polygons shipped with ``tzfpy`` (no network; 0.8 µs a lookup,
4.8 MB installed), unless ``TSGATE_SITE_ZONES`` names it (``site=Zone,…``), which wins.
A site without usable coordinates is UTC. Zones are remembered per process: a site's
coordinates do not move.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from tsgate.core.calendar import UTC, zone
from tsgate.errors import ConfigError
from tsgate.lru import LRU
from tsgate.series.access import AccessCheck
from tsgate.upstream.base import Upstream

_MAX_SITES = 100_000


def zone_at(latitude: Any, longitude: Any) -> str | None:
    """The IANA zone at a WGS84 position, or None when the position is not usable."""
    if not all(
        isinstance(x, int | float) and not isinstance(x, bool) for x in (latitude, longitude)
    ):
        return None
    lat, lng = float(latitude), float(longitude)
    if not (math.isfinite(lat) and math.isfinite(lng) and -90 <= lat <= 90 and -180 <= lng <= 180):
        return None
    if lat == 0.0 and lng == 0.0:  # "null island": coordinates never filled in
        return None
    import tzfpy  # imported on first use: nothing happens at import

    name = str(tzfpy.get_tz(lng, lat))
    try:
        zone(name)  # the polygons may name a zone this system's tz database lacks
    except ValueError:
        return None
    return name


def parse_overrides(entries: Iterable[str]) -> dict[str, str]:
    """``site=Zone`` entries (``TSGATE_SITE_ZONES``), each zone checked."""
    out: dict[str, str] = {}
    for entry in entries:
        site, sep, name = entry.partition("=")
        if not sep or not site.strip() or not name.strip():
            raise ConfigError(f"TSGATE_SITE_ZONES: {entry!r} is not site=Zone")
        try:
            zone(name.strip())
        except ValueError as exc:
            raise ConfigError(f"TSGATE_SITE_ZONES: {exc}") from exc
        out[site.strip()] = name.strip()
    return out


class SiteZones:
    def __init__(
        self, upstream: Upstream, access: AccessCheck, overrides: Mapping[str, str] | None = None
    ) -> None:
        self.upstream = upstream
        self.access = access
        self.overrides = dict(overrides or {})
        self._found: LRU[str, str] = LRU.counted(_MAX_SITES)

    async def zone_of(self, site: str, token: str) -> str:
        """The site's zone (checking the token's access first, as any read does)."""
        await self.access.check(site, token)
        if site in self.overrides:
            return self.overrides[site]
        found = self._found.get(site)
        if found is None:
            body = await self.upstream.site(site, token=token)
            found = zone_at(body.get("latitude"), body.get("longitude")) or UTC
            self._found.put(site, found)
        return found
