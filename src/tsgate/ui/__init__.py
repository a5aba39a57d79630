"""The chart page: static files (no build step) and ``/`` serving the page."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"


async def page(request: Request) -> Response:
    # revalidated on every visit so a new release is picked up at once
    return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


def routes() -> list[BaseRoute]:
    return [
        Route("/", page, methods=["GET", "HEAD"]),
        Mount("/ui", app=StaticFiles(directory=STATIC), name="ui"),
    ]
