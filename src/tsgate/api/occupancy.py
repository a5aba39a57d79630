"""``GET /api/occupancy``: when a site was occupied, from its schedule points.

The chart page shades these spans behind the chart. A schedule point is a point of the
site's catalog with the ``schedule`` marker tag (an occupancy schedule, on/off); its
samples are read through the cache like any read (the token's access checked, the
inline fetch budget applied), each value held until the next sample
(:mod:`tsgate.core.schedule`). The value at the range's start is the last sample in the
week before it; a site with several schedule points is occupied where any says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tsgate.api.auth import token_of
from tsgate.api.limits import MIN_TIME_MS, check_range, refuse_over_fetch_budget
from tsgate.api.negotiation import compressed, encode_body, wants_msgpack
from tsgate.api.services import services_of
from tsgate.core import schedule
from tsgate.core.model import MS_PER_DAY
from tsgate.errors import BadParameter
from tsgate.series.access import check_site_name
from tsgate.series.reader import ReadStats
from tsgate.services import Services
from tsgate.wire.ace import format_time, parse_range

SCHEDULE_TAG = "schedule"
MAX_SCHEDULE_POINTS = 50  # of a site's schedule points, the first this many by name
LOOKBACK_MS = 7 * MS_PER_DAY  # where the value held at the range's start is looked for
HINT = "ask for a shorter range, or open the chart first (its read fetches the days)"


@dataclass(frozen=True)
class Occupancy:
    """A site's occupied spans over a range: per schedule point, and their union."""

    points: list[str]
    per_point: list[list[schedule.Span]]
    occupied: list[schedule.Span]
    stats: ReadStats | None  # of the read (None: the site has no schedule point)


async def occupied(
    services: Services, site: str, start_ms: int, end_ms: int, token: str
) -> Occupancy:
    """The occupied spans of ``[start_ms, end_ms)`` from the site's schedule points, read
    through the cache with ``token`` (its access checked, the inline fetch budget
    applied: a 413 over it)."""
    found = await services.catalog.tagged(site, SCHEDULE_TAG, token, limit=MAX_SCHEDULE_POINTS)
    names = [str(p["name"]) for p in found if p.get("collect_enabled", True) is not False]
    if not names:
        return Occupancy([], [], [], None)
    stop_ms = min(end_ms, services.clock_ms() + 1)  # nothing is known after now
    since_ms = max(MIN_TIME_MS, start_ms - LOOKBACK_MS)
    prepared = await services.reader.prepare(site, names, since_ms, end_ms, token=token)
    refuse_over_fetch_budget(services.settings, prepared.missing_samples, hint=HINT)
    read, stats = await services.reader.read(
        site, names, since_ms, end_ms, token=token, prepared=prepared
    )
    per_point = [schedule.held_spans(read[name], start_ms, stop_ms) for name in names]
    return Occupancy(names, per_point, schedule.union(per_point), stats)


async def occupancy(request: Request) -> Response:
    services = services_of(request)
    q = request.query_params
    site = (q.get("site") or "").strip()
    if not site:
        raise BadParameter("site", "is required (a site name, e.g. rhine_lab)")
    check_site_name(site)
    start_ms, end_ms = parse_range(q.get("start"), q.get("end"), names=("start", "end"))
    check_range(services.settings, start_ms, end_ms, "end")
    token = token_of(request, services.settings.upstream_token)
    found = await occupied(services, site, start_ms, end_ms, token)
    body = {
        "metadata": {
            "siteId": site,
            "startTime": format_time(start_ms),
            "endTime": format_time(end_ms),
            "points": found.points,
            "occupiedMs": schedule.total_ms(found.occupied),
            "lookbackMs": LOOKBACK_MS,
        },
        "occupied": [list(s) for s in found.occupied],
        "schedules": [
            {"name": name, "occupied": [list(s) for s in spans]}
            for name, spans in zip(found.points, found.per_point, strict=True)
        ],
    }
    stats = found.stats
    headers = (
        {"X-Cache-Status": stats.cache_status, "X-Cache-Source": stats.cache_source}
        if stats is not None
        else {"X-Cache-Status": "HIT", "X-Cache-Source": "STORE"}
    )
    data, media_type = encode_body(body, wants_msgpack(request))
    return compressed(request, data, media_type, headers=headers)


def routes() -> list[Route]:
    return [Route("/api/occupancy", occupancy, methods=["GET"])]
