"""Operational endpoints: health (more in the operations issue)."""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tsgate import __version__
from tsgate.api.negotiation import respond
from tsgate.api.services import services_of
from tsgate.errors import Forbidden, TsgateError, Unauthorized


async def health(request: Request) -> Response:
    services = services_of(request)
    checks: dict[str, dict[str, object]] = {}
    started = time.perf_counter()
    try:
        token = services.settings.upstream_token or "health-check"
        await services.upstream.get_json("/sites", token=token, params={"page": 1, "per_page": 1})
        checks["upstream"] = {"status": "ok"}
    except (Unauthorized, Forbidden):
        # upstream answered and judged the token: it is up
        checks["upstream"] = {"status": "ok"}
    except TsgateError as exc:
        checks["upstream"] = {"status": "error", "detail": exc.detail}
    checks["upstream"]["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    status = "healthy" if all(c["status"] == "ok" for c in checks.values()) else "degraded"
    return respond(request, {"status": status, "version": __version__, "checks": checks})


def routes() -> list[Route]:
    return [Route("/api/health", health, methods=["GET"])]
