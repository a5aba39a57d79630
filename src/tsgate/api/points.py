"""Point metadata: the cached configured_points envelope and the picker's search."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tsgate.api.ace import paged_passthrough
from tsgate.api.auth import token_of
from tsgate.api.negotiation import respond
from tsgate.api.services import services_of
from tsgate.errors import BadParameter
from tsgate.series.access import check_site_name
from tsgate.wire.ace import parse_bool, parse_int, parse_per_page
from tsgate.wire.fieldmask import HEADER as MASK_HEADER
from tsgate.wire.fieldmask import apply_mask, parse_mask

MAX_TAGS = 50
MAX_QUERY_CHARS = 200
# filters the cache does not model go straight to upstream
_UPSTREAM_ONLY = {"created_after", "created_before", "updated_after", "updated_before"}


def _int(request: Request, name: str, default: int, lo: int, hi: int) -> int:
    value = parse_int(name, request.query_params.get(name), lo=lo, hi=hi)
    return default if value is None else value


async def configured_points(request: Request) -> Response:
    if _UPSTREAM_ONLY & request.query_params.keys():
        return await paged_passthrough(request)
    services = services_of(request)
    site = request.path_params["site"]
    mask = parse_mask(request.headers.get(MASK_HEADER, ""))
    page = _int(request, "page", 1, 1, 1_000_000)
    per_page = parse_per_page(request.query_params.get("per_page"))  # the contract's enum
    bypass = parse_bool("bypass_cache", request.query_params.get("bypass_cache"), default=False)
    token = token_of(request, services.settings.upstream_token)
    body, source = await services.catalog.page(site, token, page, per_page, bypass=bypass)
    return respond(
        request,
        apply_mask(body, mask),
        headers={
            "X-Cache-Source": source,
            "X-Cache-Status": "MISS" if source == "ORIGIN" else "HIT",
        },
    )


async def search(request: Request) -> Response:
    services = services_of(request)
    site = (request.query_params.get("site") or "").strip()
    if not site:
        raise BadParameter("site", "is required")
    check_site_name(site)
    q = request.query_params.get("q") or ""
    if len(q) > MAX_QUERY_CHARS:
        raise BadParameter("q", f"at most {MAX_QUERY_CHARS} characters")
    tags = [t for t in (request.query_params.get("tags") or "").split(",") if t.strip()]
    if len(tags) > MAX_TAGS:
        raise BadParameter("tags", f"{len(tags)} tags; at most {MAX_TAGS}")
    limit = _int(request, "limit", 50, 1, 1000)
    token = token_of(request, services.settings.upstream_token)
    found = await services.catalog.search(site, token, q, tags, limit)
    observed = await services.catalog.observed_modes(site, [p["name"] for p in found])
    items: list[dict[str, Any]] = []
    for p in found:
        kind, mode = services.kinds.describe(p, observed.get(p["name"]))
        items.append(
            {
                "name": p["name"],
                "unit": (p.get("kv_tags") or {}).get("unit"),
                "tags": p.get("marker_tags") or [],
                "collect_enabled": bool(p.get("collect_enabled")),
                "kind": kind,  # analog | binary | multistate
                "mode": mode,  # sampled | cov
            }
        )
    return respond(request, {"site": site, "q": q, "tags": tags, "items": items})


def routes() -> list[Route]:
    return [
        Route("/api/points/search", search, methods=["GET"]),
        Route("/api/sites/{site}/configured_points", configured_points, methods=["GET"]),
    ]
