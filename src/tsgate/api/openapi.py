"""The OpenAPI 3.1 document at ``/api/openapi.json``, built from the app's own routes,
and a browsable page of it at ``/api/docs`` (Swagger UI, vendored: works offline).

Every ``Route`` of the app is described: its path and methods come from the route, what
it takes and answers from ``api/operations.py`` (looked up by endpoint). A route with no
description fails the build, so the document cannot silently fall behind the routes.
Not described: the catch-all pass-through to upstream (upstream documents those paths),
the chart page, static files and these two routes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from tsgate import __version__
from tsgate.api import ace
from tsgate.api.operations import BODY_NOTE, OPERATIONS, SCHEMAS, Operation, Param

STATIC = Path(__file__).parent / "docs_static"
PROBLEM = "application/problem+json"
_CONVERTER = re.compile(r"{(\w+):\w+}")  # Starlette's {name:path} is OpenAPI's {name}
_TROUBLE = {
    "4XX": "bad request: the problem names the parameter (param) or limit (limit)",
    "502": "upstream failed",
    "503": "upstream or storage unavailable (Retry-After)",
    "504": "upstream timed out",
}


class Undocumented(Exception):
    """A route has no entry in ``api/operations.py``."""


def _key(endpoint: Any) -> Any:
    if endpoint in OPERATIONS:
        return endpoint
    return f"{endpoint.__module__}:{endpoint.__name__}"


def _undescribed(route: Route) -> bool:
    # the chart page and its files are not API; /metrics is
    outside = not route.path.startswith("/api/") and route.path != "/metrics"
    return outside or route.endpoint in (ace.passthrough, openapi_json, docs_page)


def document(routes: list[BaseRoute]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``routes``; ``Undocumented`` names a route without one."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        if not isinstance(route, Route) or _undescribed(route):
            continue
        key = _key(route.endpoint)
        operation = OPERATIONS.get(key)
        if operation is None:
            raise Undocumented(f"{route.path}: {key} has no entry in tsgate.api.operations")
        path = _CONVERTER.sub(r"{\1}", route.path)
        for method in sorted((route.methods or set()) - {"HEAD"}):
            # the first route matching a path and method answers it (Starlette's order)
            paths.setdefault(path, {}).setdefault(
                method.lower(), _operation(operation, route, method)
            )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tsgate",
            "version": __version__,
            "description": "A caching gateway for the ACE IoT API: the ACE drop-in routes "
            "it serves natively, its chart API, jobs, saved charts and operations. Any other "
            "path under /api/ is passed through to upstream with the caller's token.",
        },
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "an ACE token"},
                "aceToken": {"type": "apiKey", "in": "header", "name": "X-ACE-Token"},
            },
        },
        # the demo and single-tenant servers answer without a token (a server-side one)
        "security": [{"bearer": []}, {"aceToken": []}, {}],
    }


def _operation(operation: Operation, route: Route, method: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": method.lower() + re.sub(r"\W+", "_", _CONVERTER.sub(r"\1", route.path)),
        "summary": operation.summary,
        "tags": [operation.tag],
        "parameters": _parameters(operation, route.path),
        "responses": _responses(operation),
    }
    if not operation.auth:
        out["security"] = []
    if operation.body is not None:
        out["requestBody"] = {
            "required": True,
            "description": BODY_NOTE,
            "content": {"application/json": {"schema": operation.body}},
        }
    return out


def _parameters(operation: Operation, path: str) -> list[dict[str, Any]]:
    """The declared parameters; path parameters are the route's own, whatever is declared."""
    in_path = re.findall(r"{(\w+)(?::\w+)?}", path)
    declared = {p.name: p for p in operation.params if p.where == "path"}
    found = [
        (declared.get(name) or Param(name, "path", {"type": "string", "minLength": 1})).to_openapi()
        for name in in_path
    ]
    return found + [p.to_openapi() for p in operation.params if p.where != "path"]


def _responses(operation: Operation) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, (what, types, schema) in operation.ok.items():
        answer: dict[str, Any] = {"description": what}
        if types:
            answer["content"] = {t: {"schema": schema} for t in types}
        responses[str(status)] = answer
    problem = {"content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}
    for code, trouble in _TROUBLE.items():
        responses.setdefault(code, {"description": trouble, **problem})
    return responses


_CACHED: dict[int, bytes] = {}


async def openapi_json(request: Request) -> Response:
    app = request.scope["app"]
    body = _CACHED.get(id(app))
    if body is None:
        body = _CACHED[id(app)] = msgspec.json.encode(document(app.routes))
    return Response(body, media_type="application/json")


async def docs_page(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def routes() -> list[BaseRoute]:
    return [
        Route("/api/openapi.json", openapi_json, methods=["GET"]),
        Route("/api/docs", docs_page, methods=["GET"]),
        Mount("/api/docs/static", app=StaticFiles(directory=STATIC), name="api-docs"),
    ]
