"""Saved chart configurations: ``/api/charts`` (create, list, get, delete).

A chart belongs to the caller's scope (a salted hash of its token); other callers get
404 for it. Creating, listing and reading ask the same cached access check as data reads
whether the token may read the chart's site, so a revoked token loses its charts with
its access; each caller keeps at most ``TSGATE_MAX_CHARTS_PER_CALLER`` charts.
The config is what the chart page needs to draw the chart again; the fields
the page relies on are checked here so a bad save fails now, not on the next visit.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tsgate.api.auth import token_of
from tsgate.api.bodies import json_object
from tsgate.api.limits import over_points_limit
from tsgate.api.negotiation import respond
from tsgate.api.services import services_of
from tsgate.errors import BadParameter, Forbidden, NotFound, QuotaExceeded
from tsgate.series.access import check_site_name
from tsgate.series.savedcharts import SavedChart
from tsgate.services import Services
from tsgate.settings import Settings

MAX_BODY_BYTES = 64 << 10
MAX_NAME_CHARS = 200
LIST_LIMIT = 200
VIEWS = ("line", "area", "scatter", "calendar", "quality")
PRESETS = ("1h", "24h", "7d", "30d", "365d", "custom")
_CHART_ID = re.compile(r"[A-Za-z0-9_-]{12}")  # 9 random bytes, URL-safe base64


def _links(chart_id: str) -> dict[str, str]:
    """Where the chart is drawn: the chart page, and the server-drawn image."""
    return {"url": f"/?chart={chart_id}", "image": f"/api/charts/{chart_id}.png"}


def _token(request: Request) -> str:
    return token_of(request, services_of(request).settings.upstream_token)


def _chart_id(request: Request) -> str:
    chart_id: str = request.path_params["chart_id"]
    if not _CHART_ID.fullmatch(chart_id):
        raise NotFound(f"no saved chart {chart_id[:60]!r}", param="chart_id")
    return chart_id


async def _readable(services: Services, chart: SavedChart, token: str) -> bool:
    try:
        await services.access.check(str(chart.config.get("site", "")), token)
    except (Forbidden, NotFound):
        return False
    return True


async def own_chart(request: Request) -> tuple[SavedChart, str]:
    """The caller's chart named in the path, once its token may (still) read the site."""
    services = services_of(request)
    token = _token(request)
    chart_id = _chart_id(request)
    scope = services.access.scope(token)
    chart = await services.charts.get(scope, chart_id, now_ms=services.clock_ms())
    if chart is None:
        # an unknown id and a junk token look alike until upstream is asked
        await services.access.validate(token)
        raise NotFound(f"no saved chart {chart_id!r}", param="chart_id")
    await services.access.check(str(chart.config.get("site", "")), token)
    return chart, scope


def _name(body: dict[str, Any]) -> str:
    name = body.get("name", "")
    if not isinstance(name, str) or len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise BadParameter(
            "name", f"must be a string of at most {MAX_NAME_CHARS} printable characters"
        )
    return name.strip()


def _config(body: dict[str, Any], settings: Settings) -> dict[str, Any]:
    config = body.get("config")
    if not isinstance(config, dict):
        raise BadParameter("config", "is required: a JSON object {site, points, …}")
    site = config.get("site")
    if not isinstance(site, str) or not site.strip():
        raise BadParameter("config.site", "is required (a site name)")
    check_site_name(site, "config.site")
    points = config.get("points")
    if (
        not isinstance(points, list)
        or not points
        or not all(isinstance(p, str) and p.strip() for p in points)
    ):
        raise BadParameter("config.points", "must be a non-empty list of point names")
    limit = over_points_limit(settings, len(points))
    if limit is not None:
        # a saved configuration is checked like a request's points, but is bad input (400)
        raise BadParameter("config.points", f"{len(points)} given; at most {limit}")
    view = config.get("view", "line")
    if view not in VIEWS:
        raise BadParameter("config.view", f"{view!r} is not one of {', '.join(VIEWS)}")
    _check_range(config.get("range"))
    return config


def _check_range(rng: Any) -> None:
    if rng is None:
        return
    if not isinstance(rng, dict):
        raise BadParameter("config.range", "must be an object {preset} or {start, end}")
    preset = rng.get("preset", "custom")
    if preset not in PRESETS:
        raise BadParameter("config.range.preset", f"{preset!r} is not one of {', '.join(PRESETS)}")
    if preset == "custom":
        for key in ("start", "end"):
            if not isinstance(rng.get(key), str | int) or isinstance(rng.get(key), bool):
                raise BadParameter(f"config.range.{key}", "is required for a custom range")


async def create(request: Request) -> Response:
    services = services_of(request)
    token = _token(request)
    body = await json_object(request, max_bytes=MAX_BODY_BYTES, shape="an object {name, config}")
    name, config = _name(body), _config(body, services.settings)
    # the caller's token must read the chart's site now, as it must at every read
    await services.access.check(config["site"], token)
    scope = services.access.scope(token)
    limit = services.settings.max_charts_per_caller
    if limit > 0 and await services.charts.count(scope) >= limit:
        raise QuotaExceeded(
            "max_charts_per_caller",
            f"this caller keeps {limit} saved charts, the most allowed; delete some first",
        )
    chart = await services.charts.create(scope, name, config, services.clock_ms())
    out = chart.to_json() | _links(chart.id)
    return respond(request, out, status=201, headers={"Location": f"/api/charts/{chart.id}"})


async def listing(request: Request) -> Response:
    services = services_of(request)
    token = _token(request)
    await services.access.validate(token)
    found = await services.charts.list(services.access.scope(token), LIST_LIMIT)
    items = [c.to_json() | _links(c.id) for c in found if await _readable(services, c, token)]
    return respond(request, {"items": items, "total": len(items)})


async def show(request: Request) -> Response:
    chart, _ = await own_chart(request)
    return respond(request, chart.to_json() | _links(chart.id))


async def delete(request: Request) -> Response:
    chart, scope = await own_chart(request)
    if not await services_of(request).charts.delete(scope, chart.id):
        raise NotFound(f"no saved chart {chart.id!r}", param="chart_id")
    return Response(status_code=204)


def routes() -> list[Route]:
    return [
        Route("/api/charts", create, methods=["POST"]),
        Route("/api/charts", listing, methods=["GET"]),
        Route("/api/charts/{chart_id}", show, methods=["GET"]),
        Route("/api/charts/{chart_id}", delete, methods=["DELETE"]),
    ]
