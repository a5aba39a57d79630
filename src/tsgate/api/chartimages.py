"""``GET /api/charts/{id}.png`` and ``.svg``: a saved chart drawn server-side.

For reports and e-mails. The chart is read as the API reads it for the chart page: the
caller's token must own the chart and still read its site, the range is the saved one
(a preset ends on the next whole minute, as on the page), the series are downsampled to
four points per pixel column (M4: pixel-exact). ``width``/``height`` (pixels) and
``theme`` (``light``/``dark``) are bounded parameters. An image is kept in the response
cache under the site's data generation, so new or repaired data draws a new one; while
upstream is down the cached part is drawn, marked stale in the image and in
``X-Cache-Status``, and not kept. Drawing runs on one thread of its own per process, one
image at a time; more than ``MAX_WAITING`` images waiting is 429.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tsgate.api import plotting, responses
from tsgate.api.auth import token_of
from tsgate.api.chartquery import resolve_zone
from tsgate.api.charts import own_chart
from tsgate.api.limits import check_fetch_budget, check_range
from tsgate.api.services import services_of
from tsgate.core.model import MS_PER_DAY
from tsgate.errors import BadParameter, RateLimited, TooLarge
from tsgate.series.chart import (
    ChartQuery,
    ChartResult,
    estimate_samples,
    reads_raw,
    run_chart,
    saved_range,
)

MEDIA_TYPES = {"png": "image/png", "svg": "image/svg+xml"}
WIDTH_PX = (200, 4000)
HEIGHT_PX = (150, 3000)
MAX_PIXELS = 8_000_000  # 4000 x 2000: an image's canvas is 4 bytes a pixel while drawn
DEFAULT_SIZE = (1200, 600)
COMPARE_MS = -7 * MS_PER_DAY  # the page's "last week"
PLOT_SHARE = 0.85  # of the width: the plot area between the axes
# one drawing thread per process (matplotlib's settings are global while saving); images
# waiting for it wait in its queue, not in the event loop's default thread pool, and a
# queue longer than this is refused (429) rather than held in memory
_DRAWER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tsgate-draw")
MAX_WAITING = 16
_waiting = 0


@dataclasses.dataclass(frozen=True)
class ImageRequest:
    fmt: str
    width: int
    height: int
    theme: str


def _size(request: Request, name: str, bounds: tuple[int, int], default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    lo, hi = bounds
    if not raw.isdigit() or not lo <= int(raw) <= hi:
        raise BadParameter(name, f"{raw[:20]!r} is not a whole number of pixels from {lo} to {hi}")
    return int(raw)


def image_request(request: Request, fmt: str) -> ImageRequest:
    width = _size(request, "width", WIDTH_PX, DEFAULT_SIZE[0])
    height = _size(request, "height", HEIGHT_PX, DEFAULT_SIZE[1])
    if width * height > MAX_PIXELS:
        raise BadParameter("height", f"{width}x{height} is over {MAX_PIXELS:,} pixels")
    theme = request.query_params.get("theme") or "light"
    if theme not in plotting.THEMES:
        raise BadParameter("theme", f"{theme[:20]!r} is not one of {', '.join(plotting.THEMES)}")
    return ImageRequest(fmt, width, height, theme)


def chart_query(config: dict[str, Any], now_ms: int, width_px: int) -> ChartQuery:
    """The query the chart page asks for this saved chart at this width."""
    start_ms, end_ms = saved_range(config, now_ms)
    points = tuple(dict.fromkeys(str(p) for p in config["points"]))
    compare = COMPARE_MS if config.get("compare") else 0
    if config.get("view") == "calendar":  # drawn as the calendar's daily means
        return ChartQuery(
            str(config["site"]), points, start_ms, end_ms, "1d", None, "avg", "site", compare
        )
    max_points = 4 * max(50, int(width_px * PLOT_SHARE))
    return ChartQuery(
        str(config["site"]), points, start_ms, end_ms, "raw", max_points, "avg", "UTC", compare
    )


def _check_size(request: Request, q: ChartQuery) -> None:
    limit = services_of(request).settings.max_inline_samples
    if reads_raw(q) and estimate_samples(q) > limit:
        raise TooLarge(
            "max_inline_samples",
            f"about {estimate_samples(q):,} raw samples; at most {limit:,} — save a shorter range",
        )


async def _check_inline(request: Request, q: ChartQuery, token: str) -> None:
    """An image is drawn inline or not at all: a range too cold to fetch inline is 413."""
    await check_fetch_budget(
        services_of(request),
        q.site,
        q.points,
        q.start_ms,
        q.end_ms,
        token,
        hint="open the chart on the page (a job fetches them) or warm it (tsgate warm "
        "--chart), then ask again",
    )


async def _lines(
    request: Request, config: dict[str, Any], q: ChartQuery, result: ChartResult, token: str
) -> list[plotting.Line]:
    services = services_of(request)
    objects = await services.catalog.stored_objects(q.site, q.points, token)
    saved_units = config.get("units")
    units: dict[str, Any] = saved_units if isinstance(saved_units, dict) else {}
    labels = _labels(list(q.points))
    out = []
    drawn = [(s, False) for s in result.series] + [(s, True) for s in result.compared]
    for s, earlier in drawn:
        obj = objects.get(s.name, {"name": s.name})
        kind, mode = services.kinds.describe(obj)
        unit = str(units.get(s.name) or (obj.get("kv_tags") or {}).get("unit") or "")
        label = labels[q.points.index(s.name)] + (" (last week)" if earlier else "")
        state = kind in ("binary", "multistate")
        step = state or mode == "cov" or q.interval == "1d"
        v = s.v.astype(np.float64)
        colour = q.points.index(s.name)
        line = plotting.Line(label, unit, s.t_ms, v, step, state, earlier, colour)
        out.append(line)
    return out


def _labels(names: list[str]) -> list[str]:
    """What tells the names apart (their common prefix dropped), as the page's legend."""
    if len(names) == 1:
        return [names[0].split("/")[-1]]
    common = names[0]
    for name in names:
        while not name.startswith(common):
            common = common[:-1]
    cut = max(common.rfind("/"), common.rfind(".")) + 1
    return [name[cut:] or name for name in names]


def _draw(picture: plotting.Picture, lines: list[plotting.Line], fmt: str) -> bytes:
    return plotting.encode(plotting.figure(picture, lines), fmt)


async def draw(picture: plotting.Picture, lines: list[plotting.Line], fmt: str) -> bytes:
    """The image, drawn on the drawing thread; 429 while too many wait for it."""
    global _waiting
    if _waiting >= MAX_WAITING:
        raise RateLimited(f"{_waiting} images are waiting to be drawn; try again shortly", 2.0)
    _waiting += 1
    try:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(_DRAWER, _draw, picture, lines, fmt)
    finally:
        _waiting -= 1


async def _image(request: Request, fmt: str) -> Response:
    started = time.perf_counter()
    services = services_of(request)
    asked = image_request(request, fmt)
    chart, scope = await own_chart(request)
    token = token_of(request, services.settings.upstream_token)
    q = chart_query(chart.config, services.reader.clock_ms(), asked.width)
    check_range(services.settings, q.start_ms, q.end_ms, "config.range")
    q = await resolve_zone(request, q, token)
    _check_size(request, q)
    generation = await services.reader.generations.get(q.site)
    config = json.dumps(chart.config, sort_keys=True, default=str)
    key = responses.page_key(
        "chart-image",
        scope,
        chart.id,
        config,
        q,
        asked.width,
        asked.height,
        asked.theme,
        fmt,
        generation,
    )
    hit = await responses.load(services.cache, key)
    if hit is not None:
        return _answer(request, hit, "HIT", started)
    await _check_inline(request, q, token)
    result = await run_chart(services.reader, q, token=token)
    lines = await _lines(request, chart.config, q, result, token)
    stale = result.stats.cache_status == "STALE"
    note = "stale: upstream unavailable, drawn from the cache only" if stale else ""
    if not any(len(line.t_ms) for line in lines):
        note = (note + "; " if note else "") + "no samples in this range"
    picture = plotting.Picture(
        chart.name or chart.id,
        _view(chart.config),
        q.start_ms,
        q.end_ms,
        asked.width,
        asked.height,
        asked.theme,
        note,
    )
    body = await draw(picture, lines, fmt)
    etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
    if stale:
        cache_control = "no-store"
    else:
        max_age = 31_536_000 if result.stats.final else max(1, services.settings.open_ttl_s)
        cache_control = f"private, max-age={int(max_age)}"
    headers = {
        "ETag": etag,
        "Cache-Control": cache_control,
        "X-Data-Samples": str(result.total_samples),
        "Vary": "Authorization, X-ACE-Token",
    }
    entry = responses.CachedResponse(body, MEDIA_TYPES[fmt], headers)
    if not stale:
        ttl = min(
            services.settings.access_ttl_s,
            3600.0 if result.stats.final else services.settings.open_ttl_s,
        )
        await responses.store(services.cache, key, entry, ttl)
    return _answer(request, entry, result.stats.cache_status, started)


def _view(config: dict[str, Any]) -> str:
    view = config.get("view", "line")
    return view if view in ("line", "area", "scatter") else "line"


def _answer(
    request: Request, entry: responses.CachedResponse, status: str, started: float
) -> Response:
    elapsed_ms = (time.perf_counter() - started) * 1000
    headers = {
        **entry.headers,
        "X-Cache-Status": status,
        "X-Processing-Time": f"{elapsed_ms:.2f}",
    }
    if entry.headers.get("ETag", "\0") in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(entry.body, 200, headers=headers, media_type=entry.media_type)


async def png(request: Request) -> Response:
    return await _image(request, "png")


async def svg(request: Request) -> Response:
    return await _image(request, "svg")


def routes() -> list[Route]:
    # before /api/charts/{chart_id}, which would take "abc.png" for an id
    return [
        Route("/api/charts/{chart_id}.png", png, methods=["GET"]),
        Route("/api/charts/{chart_id}.svg", svg, methods=["GET"]),
    ]
