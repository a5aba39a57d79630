"""The chart page: ``/`` serves the page, ``/ui/v/<digest>/…`` its files (no build step)."""

from __future__ import annotations

from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from tsgate.ui.assets import PAGE, Asset, StaticAssets

STATIC = Path(__file__).parent / "static"
IMMUTABLE = "public, max-age=31536000, immutable"
# revalidated on every use, so a new release is picked up at once
REVALIDATE = "no-cache"


def routes(*, compress_min_bytes: int = 1024) -> list[BaseRoute]:
    assets = StaticAssets(STATIC, compress_min_bytes=compress_min_bytes)

    async def page(request: Request) -> Response:
        asset = assets.get(PAGE, request.headers.get("accept-encoding", ""))
        return _send(request, asset, REVALIDATE)

    async def versioned(request: Request) -> Response:
        asset = assets.get(request.path_params["path"], request.headers.get("accept-encoding", ""))
        # an older page may ask for its own version: answer with today's file, uncached
        current = request.path_params["version"] == assets.version
        return _send(request, asset, IMMUTABLE if current else REVALIDATE)

    async def plain(request: Request) -> Response:
        asset = assets.get(request.path_params["path"], request.headers.get("accept-encoding", ""))
        return _send(request, asset, REVALIDATE)

    return [
        Route("/", page, methods=["GET", "HEAD"]),
        Route("/ui/v/{version}/{path:path}", versioned, methods=["GET", "HEAD"]),
        Route("/ui/{path:path}", plain, methods=["GET", "HEAD"]),
    ]


def _send(request: Request, asset: Asset, cache_control: str) -> Response:
    headers = {"Cache-Control": cache_control, "ETag": asset.etag, "Vary": "Accept-Encoding"}
    if asset.encoding is not None:
        headers["Content-Encoding"] = asset.encoding
    if asset.etag in _tags(request.headers.get("if-none-match", "")):
        return Response(status_code=304, headers=headers)
    return Response(asset.body, headers=headers, media_type=asset.media_type)


def _tags(if_none_match: str) -> set[str]:
    return {tag.strip().removeprefix("W/") for tag in if_none_match.split(",") if tag.strip()}
