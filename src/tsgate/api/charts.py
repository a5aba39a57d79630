"""Saved chart configurations: ``/api/charts`` (create, list, get, delete).

A chart belongs to the caller's scope (a salted hash of its token); other callers get
404 for it. The config is what the chart page needs to draw the chart again; the fields
the page relies on are checked here so a bad save fails now, not on the next visit.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tsgate.api.auth import token_of
from tsgate.api.bodies import json_object
from tsgate.api.negotiation import respond
from tsgate.api.services import services_of
from tsgate.errors import BadParameter, NotFound
from tsgate.settings import Settings

MAX_BODY_BYTES = 64 << 10
MAX_NAME_CHARS = 200
LIST_LIMIT = 200
VIEWS = ("line", "area", "scatter", "calendar")
PRESETS = ("1h", "24h", "7d", "30d", "365d", "custom")


def _scope(request: Request) -> str:
    services = services_of(request)
    return services.access.scope(token_of(request, services.settings.upstream_token))


async def _body(request: Request) -> dict[str, Any]:
    return await json_object(
        request, max_bytes=MAX_BODY_BYTES, shape="a JSON object {name, config}"
    )


def _name(body: dict[str, Any]) -> str:
    name = body.get("name", "")
    if not isinstance(name, str) or len(name) > MAX_NAME_CHARS:
        raise BadParameter("name", f"must be a string of at most {MAX_NAME_CHARS} characters")
    return name.strip()


def _config(body: dict[str, Any], settings: Settings) -> dict[str, Any]:
    config = body.get("config")
    if not isinstance(config, dict):
        raise BadParameter("config", "is required: a JSON object {site, points, …}")
    site = config.get("site")
    if not isinstance(site, str) or not site.strip():
        raise BadParameter("config.site", "is required (a site name)")
    points = config.get("points")
    if (
        not isinstance(points, list)
        or not points
        or not all(isinstance(p, str) and p.strip() for p in points)
    ):
        raise BadParameter("config.points", "must be a non-empty list of point names")
    limit = settings.max_points_per_request
    if limit > 0 and len(points) > limit:
        # a saved configuration is checked like a request: too many points is bad input
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
    scope = _scope(request)
    body = await json_object(request, max_bytes=MAX_BODY_BYTES, shape="an object {name, config}")
    chart = await services.database.charts.create(
        scope, _name(body), _config(body, services.settings), services.reader.clock_ms()
    )
    out = chart.to_json() | {"url": f"/?chart={chart.id}"}
    return respond(request, out, status=201, headers={"Location": f"/api/charts/{chart.id}"})


async def listing(request: Request) -> Response:
    found = await services_of(request).database.charts.list(_scope(request), LIST_LIMIT)
    items = [c.to_json() | {"url": f"/?chart={c.id}"} for c in found]
    return respond(request, {"items": items, "total": len(items)})


async def show(request: Request) -> Response:
    chart_id = request.path_params["chart_id"]
    chart = await services_of(request).database.charts.get(_scope(request), chart_id)
    if chart is None:
        raise NotFound(f"no saved chart {chart_id!r}", param="chart_id")
    return respond(request, chart.to_json() | {"url": f"/?chart={chart.id}"})


async def delete(request: Request) -> Response:
    chart_id = request.path_params["chart_id"]
    if not await services_of(request).database.charts.delete(_scope(request), chart_id):
        raise NotFound(f"no saved chart {chart_id!r}", param="chart_id")
    return Response(status_code=204)


def routes() -> list[Route]:
    return [
        Route("/api/charts", create, methods=["POST"]),
        Route("/api/charts", listing, methods=["GET"]),
        Route("/api/charts/{chart_id}", show, methods=["GET"]),
        Route("/api/charts/{chart_id}", delete, methods=["DELETE"]),
    ]
