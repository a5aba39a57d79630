"""Administrative endpoints, behind ``X-Admin-Key`` (``TSGATE_ADMIN_KEY``).

``POST /api/cache/invalidate`` body ``{site, points?, start?, end?}`` drops the cached
chunks, their objects, the rollups and the decoded copies of those points (every point
of the site without ``points``) in the UTC months overlapping the range (all time
without one), and every cached response; the next read refetches from upstream.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tsgate.api.bodies import decode_json
from tsgate.api.negotiation import respond
from tsgate.api.responses import RESPONSES
from tsgate.api.services import services_of
from tsgate.errors import BadParameter, Forbidden
from tsgate.wire.ace import format_time, parse_time

log = logging.getLogger("tsgate.admin")


def require_admin(request: Request) -> None:
    expected = services_of(request).settings.admin_key
    if not expected:
        raise Forbidden("no admin key configured (set TSGATE_ADMIN_KEY)")
    given = request.headers.get("x-admin-key", "")
    if not secrets.compare_digest(given.encode(), expected.encode()):
        raise Forbidden("X-Admin-Key is missing or wrong")


def _parse(raw: bytes) -> tuple[str, list[str] | None, int | None, int | None]:
    body = decode_json(raw)
    if not isinstance(body, dict):
        raise BadParameter("body", "must be a JSON object {site, points?, start?, end?}")
    site = body.get("site")
    if not isinstance(site, str) or not site:
        raise BadParameter("site", "is required (a site name)")
    points = body.get("points")
    if points is not None and (
        not isinstance(points, list)
        or not points
        or not all(isinstance(p, str) and p for p in points)
    ):
        raise BadParameter("points", "must be a non-empty list of point names")
    start, end = (_time(body, name) for name in ("start", "end"))
    if start is not None and end is not None and end <= start:
        raise BadParameter("end", "must be after start")
    return site, points, start, end


def _time(body: dict[str, Any], name: str) -> int | None:
    raw = body.get(name)
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise BadParameter(name, "must be an ISO 8601 time string")
    return parse_time(name, raw)


async def invalidate_cache(request: Request) -> Response:
    require_admin(request)
    site, points, start, end = _parse(await request.body())
    services = services_of(request)
    dropped = await services.reader.invalidate(site, points, start, end)
    responses = await RESPONSES.clear(services.cache)
    log.info(
        "cache invalidated: site %s, %s points, %d chunks, %d rollups",
        site,
        "all" if points is None else len(points),
        dropped.chunks,
        dropped.rollups,
    )
    body = {
        "deletedChunks": dropped.chunks,
        "deletedObjects": dropped.objects,
        "deletedRollups": dropped.rollups,
        "deletedResponses": responses,
        # the periods actually dropped (whole days or months); null where the range was open
        "startTime": None if start is None else format_time(dropped.start_ms),
        "endTime": None if end is None else format_time(dropped.end_ms),
    }
    return respond(request, body)


def routes() -> list[Route]:
    return [Route("/api/cache/invalidate", invalidate_cache, methods=["POST"])]
