"""The drop-in ACE API (DESIGN §2): upstream's paths, parameters and shapes.

An ACE client works by changing only its base URL to ``http://host:port/api``. Reads
of timeseries go through the series reader; metadata and any other upstream path
pass through with the caller's token converted to ``Authorization: Bearer``.

Answers are upstream's, row for row: a site's pages list a sweep's points in catalog
order with upstream's cursors, ``get_timeseries`` groups rows by point in request order
and omits unknown points, times keep their microseconds, an empty range is upstream's
``404 "No data for time period"``, and ``X-Fields`` masks apply as Flask-RESTX applies
them. Both slash spellings of a collection are served.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any
from urllib.parse import quote, unquote

import msgspec
import zstandard
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tsgate.api import prefill, responses, samplestream
from tsgate.api.auth import token_of
from tsgate.api.limits import (
    check_drop_in_samples,
    check_points,
    check_range,
)
from tsgate.api.negotiation import choose_encoding, compressed, respond, wants_msgpack
from tsgate.api.services import services_of
from tsgate.core import rollups
from tsgate.core.model import Series
from tsgate.errors import (
    BadParameter,
    NotFound,
    StorageError,
    UpstreamBadAnswer,
)
from tsgate.upstream.base import Forwarded, upstream_error
from tsgate.wire.ace import (
    CURSOR_SLOT_MS,
    decode_cursor,
    grouped_rows,
    page_rows,
    parse_bool,
    parse_page_size,
    parse_range,
    parse_time,
)
from tsgate.wire.fieldmask import HEADER as MASK_HEADER
from tsgate.wire.fieldmask import apply_mask, parse_mask

NO_DATA = "No data for time period"
FIVE_MIN_MS = 300_000
PAGE_CACHE_TTL_S = 3600.0  # a settled page is kept at most this long (and the access TTL)
PAGE_CACHE_BYTES = 4 << 20  # kept bodies (compressed) larger than this are cut again
PACK_MIN_BYTES = 64 << 10  # identity bodies larger than this are kept compressed


def _token(request: Request) -> str:
    return token_of(request, services_of(request).settings.upstream_token)


def _site(request: Request) -> str:
    site: str = request.path_params["site"]
    if not site or "/" in site:
        raise BadParameter("site", f"{site!r} is not a site name")
    return site


# ---- metadata: pass through, with page envelopes made right -----------------------------


async def paged_passthrough(request: Request) -> Response:
    forwarded = await _forward(request)
    if request.method == "HEAD" or 300 <= forwarded.status < 400:
        return _relay(request, forwarded)
    forwarded = _checked(request, forwarded)
    body = _json_of(request, forwarded)
    headers = dict(forwarded.headers)
    if isinstance(body, dict) and {"total", "per_page"} <= body.keys():
        per_page = max(1, int(body["per_page"] or 1))
        pages = -(-int(body["total"]) // per_page)  # upstream's own count can be wrong
        if body.get("pages") != pages:
            body["pages"] = pages
            headers.pop("etag", None)  # no longer upstream's bytes
    return respond(request, body, headers=headers)


async def passthrough(request: Request) -> Response:
    return _relay(request, await _forward(request))


async def _forward(request: Request) -> Forwarded:
    raw_path = request.scope.get("raw_path") or request.url.path.encode()
    path = raw_path.decode("latin-1").split("?", 1)[0]
    if not path.startswith("/api/"):
        raise NotFound(f"no route for {path}")
    query = request.url.query
    body = await request.body() if request.method in ("POST", "PUT", "PATCH", "DELETE") else b""
    services = services_of(request)
    token = _token(request)
    forwarded = await services.upstream.forward(
        request.method,
        path[len("/api") :],
        token=token,
        query=_strip_format(query),
        body=body,
        content_type=request.headers.get("content-type"),
        headers=request.headers,
    )
    if forwarded.status < 400:
        services.access.accepted(token)  # upstream took the token: limited as a token now
    return forwarded


def _json_of(request: Request, forwarded: Forwarded) -> Any:
    try:
        return msgspec.json.decode(forwarded.content)
    except msgspec.DecodeError as exc:
        kind = forwarded.content_type or "no content type"
        raise UpstreamBadAnswer(
            f"upstream {request.url.path}: HTTP {forwarded.status} with"
            f" {len(forwarded.content)} bytes of {kind}, not JSON"
        ) from exc


def _checked(request: Request, forwarded: Forwarded) -> Forwarded:
    """On the modelled paths an upstream error becomes a problem naming the parameter;
    its ``message`` stays upstream's own text."""
    if forwarded.status < 400:
        return forwarded
    message = _upstream_message(forwarded.content) or f"HTTP {forwarded.status}"
    site = request.path_params.get("site")
    if forwarded.status == 404 and site is not None:
        unknown = NotFound(f"site: unknown site {site!r} (upstream: {message})", param="site")
        unknown.upstream_message = message
        raise unknown
    raise upstream_error(forwarded.status, message, request.url.path)


def _upstream_message(content: bytes) -> str:
    try:
        body = msgspec.json.decode(content)
    except msgspec.DecodeError:
        return content[:200].decode("utf-8", "replace")
    if isinstance(body, dict):
        for key in ("message", "detail", "error", "msg"):
            if isinstance(body.get(key), str):
                return str(body[key])
    return ""


def _strip_format(query: str) -> str:
    # ?format=msgpack is ours; upstream would not understand it
    return "&".join(p for p in query.split("&") if p and not p.startswith("format="))


def _relay(request: Request, forwarded: Forwarded) -> Response:
    is_json = forwarded.content_type.startswith("application/json")
    if is_json and wants_msgpack(request) and forwarded.content:
        try:
            return respond(
                request,
                msgspec.json.decode(forwarded.content),
                status=forwarded.status,
                headers=forwarded.headers,
            )
        except msgspec.DecodeError:
            pass
    return compressed(
        request,
        forwarded.content,
        forwarded.content_type or "application/octet-stream",
        status=forwarded.status,
        headers=forwarded.headers,
    )


# ---- timeseries ---------------------------------------------------------------------


async def site_paginated(request: Request) -> Response:
    """The site's samples page by page, from the cache, optionally filtered by point.

    Each page reads only a time window from the cursor on (sized from the page size and
    the number of points, widened when gaps leave it short or the page ends at the
    window's edge), so paging through a long range never re-reads what earlier pages
    served, and every cursor is the one upstream would give.
    """
    site = _site(request)
    q = request.query_params
    mask = parse_mask(request.headers.get(MASK_HEADER, ""))
    start_ms, end_ms = _range(request)
    page_size = parse_page_size(q.get("page_size"))
    raw = parse_bool("raw_data", q.get("raw_data"), default=False)
    cursor = decode_cursor(q["cursor"]) if q.get("cursor") else None
    named = _names(request, q.get("point_names"), "point_names")
    first_ms = max(start_ms, parse_time("cursor", cursor.timestamp)) if cursor else start_ms
    key, key_ttl_s = await _page_key(request, site, named)
    hit = await responses.load(services_of(request).cache, key)
    if hit is not None:
        return _cached_page(hit)
    names = named
    if not named:
        names = await _collecting(request, site)
        key, key_ttl_s = await _page_key(request, site, named)  # the catalog as now fresh
    lo = max(start_ms, first_ms - first_ms % CURSOR_SLOT_MS)  # the cursor's whole sweep slot
    filled = await prefill.prefill(request, site, names, lo, end_ms)
    window_ms = max(3_600_000, (page_size // max(1, len(names)) + 2) * FIVE_MIN_MS)
    while True:
        hi = min(end_ms, lo + window_ms)
        found = await filled.window(lo, hi)
        samples = await _read(request, site, names, lo, hi) if found is None else found
        series = samples
        if not raw:
            series = [
                rollups.as_series(rollups.bucketize(s, FIVE_MIN_MS), "avg", s.name) for s in samples
            ]
        # a bucketed page's cursor is stamped with the next raw sample's time, as upstream's
        rows, next_cursor = page_rows(
            series, cursor, page_size, bucket_times=not raw, raw=None if raw else samples
        )
        if next_cursor is not None or hi >= end_ms:
            break
        window_ms *= 4  # short of a page, or full with no next row in sight: look further
    if not rows and cursor is None:
        raise NotFound(NO_DATA)
    body = {"point_samples": rows, "next_cursor": next_cursor, "has_more": next_cursor is not None}
    response = respond(request, apply_mask(body, mask))
    await filled.keep(names, lo, hi, request, _keeper(request, key, key_ttl_s, response))
    return response


def _keeper(request: Request, key: str, key_ttl_s: float, response: Response) -> prefill.Keep:
    """What keeps ``response`` in the response cache under ``key`` for so many seconds
    (never past ``key_ttl_s`` from now, however late it is called)."""
    services = services_of(request)
    deadline = time.monotonic() + key_ttl_s
    kept = {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}
    sent = bytes(response.body)
    media_type = response.media_type or ""
    packed = "content-encoding" not in response.headers and len(sent) > PACK_MIN_BYTES

    async def keep(keep_s: float) -> None:
        ttl_s = min(deadline - time.monotonic(), keep_s)
        if ttl_s <= 0:  # not (or no longer) to be kept
            with contextlib.suppress(StorageError):
                await services.cache.delete(key)
            return
        body = zstandard.ZstdCompressor(level=1).compress(sent) if packed else sent
        # identity bodies are large: kept compressed, unpacked on a hit
        entry = responses.CachedResponse(body, media_type, kept, packed)
        await responses.store(services.cache, key, entry, ttl_s, max_bytes=PAGE_CACHE_BYTES)

    return keep


# headers that describe a kept page itself
_KEPT_HEADERS = {"content-encoding", "vary"}


async def _page_key(request: Request, site: str, named: list[str]) -> tuple[str, float]:
    """The response-cache key of a drop-in page and how long an entry may live.

    The raw query, the mask, format and encoding decide the bytes; the caller's scope
    keeps answers per token (an entry lives no longer than the access grant); the site's
    data version moves when served samples change; an unfiltered page also depends on
    the catalog, so its entry lives no longer than the catalog stays fresh.
    """
    services = services_of(request)
    settings = services.settings
    ttl_s = min(settings.access_ttl_s, PAGE_CACHE_TTL_S)
    refreshed: int | None = None
    if not named:
        refreshed = await services.points.refreshed_at(site)
        if refreshed is None:
            ttl_s = 0.0
        else:
            left_ms = refreshed + settings.points_ttl_s * 1000 - services.clock_ms()
            ttl_s = min(ttl_s, left_ms / 1000)
    key = responses.page_key(
        "ace-paginated",
        services.access.scope(_token(request)),
        await services.reader.generation(site),
        site,
        refreshed,
        request.url.query,
        request.headers.get(MASK_HEADER, ""),
        wants_msgpack(request),
        choose_encoding(request.headers.get("accept-encoding", "")),
    )
    return key, ttl_s


def _cached_page(hit: responses.CachedResponse) -> Response:
    headers = {**hit.headers, "X-Cache-Status": "HIT"}
    body = zstandard.ZstdDecompressor().decompress(hit.body) if hit.packed else hit.body
    return Response(body, 200, headers=headers, media_type=hit.media_type)


async def _collecting(request: Request, site: str) -> list[str]:
    """Every collecting point of the site in upstream's catalog order, from the cache."""
    services = services_of(request)
    await services.catalog.fresh(site, _token(request))
    names = await services.points.names(site)
    if not names:
        raise NotFound(f"site {site!r} has no collecting points", param="site")
    return names


async def point_timeseries(request: Request) -> Response:
    name = _point_name_from_raw_path(request)
    mask = parse_mask(request.headers.get(MASK_HEADER, ""))
    start_ms, end_ms = _range(request)
    check_drop_in_samples(services_of(request).settings, 1, start_ms, end_ms)
    series = await _read(request, _site_of_point(name), [name], start_ms, end_ms)
    return _samples_response(request, series, mask)


async def points_get_timeseries(request: Request) -> Response:
    """Several points at once, as upstream answers: rows grouped by point in the order
    asked, unknown points left out, ``404 "No data for time period"`` when none has any."""
    mask = parse_mask(request.headers.get(MASK_HEADER, ""))
    start_ms, end_ms = _range(request)
    names = _body_names(await request.body())
    if not names:
        raise NotFound(NO_DATA)
    check_points(services_of(request).settings, names, "points")
    check_drop_in_samples(services_of(request).settings, len(names), start_ms, end_ms)
    by_site: dict[str, list[str]] = {}
    for name in names:
        by_site.setdefault(_site_of_point(name), []).append(name)
    series: list[Series] = []
    for site, site_names in by_site.items():
        series.extend(await _read_known(request, site, site_names, start_ms, end_ms))
    order = {n: i for i, n in enumerate(names)}
    series.sort(key=lambda s: order[s.name])
    return _samples_response(request, series, mask)


def _body_names(raw: bytes) -> list[str]:
    """Names from ``{"points": ["a", …]}`` or the Swagger's ``{"points": [{"name": "a"}]}``."""
    try:
        body = msgspec.json.decode(raw, type=dict[str, Any])
    except (msgspec.DecodeError, RecursionError) as exc:
        raise BadParameter("body", 'must be JSON {"points": [{"name": …}, …]}') from exc
    points = body.get("points")
    if not isinstance(points, list):
        raise BadParameter("points", 'must be a list of point names or {"name": …} objects')
    names: list[str] = []
    for i, entry in enumerate(points):
        name = entry.get("name") if isinstance(entry, dict) else entry
        if not isinstance(name, str) or not name or not name.isprintable():
            raise BadParameter(f"points[{i}]", 'must be a point name or {"name": …}')
        names.append(name)
    return list(dict.fromkeys(names))


async def _read_known(
    request: Request, site: str, names: list[str], start_ms: int, end_ms: int
) -> list[Series]:
    """``_read``, leaving out the points upstream does not know (as its batch read does)."""
    try:
        return await _read(request, site, names, start_ms, end_ms)
    except NotFound:
        if len(names) == 1:
            return []
    found: list[Series] = []
    for name in names:
        found.extend(await _read_known(request, site, [name], start_ms, end_ms))
    return found


def _samples_response(request: Request, series: list[Series], mask: dict[str, Any]) -> Response:
    if not mask and samplestream.total_rows(series) >= samplestream.STREAM_MIN_ROWS:
        return samplestream.stream_samples(request, series)  # bounded memory
    rows = grouped_rows(series)
    if not rows:
        raise NotFound(NO_DATA)
    return respond(request, apply_mask({"point_samples": rows}, mask))


async def _read(
    request: Request, site: str, names: list[str], start_ms: int, end_ms: int
) -> list[Series]:
    return await prefill.read_series(request, site, names, start_ms, end_ms)


def _names(request: Request, raw: str | None, param: str) -> list[str]:
    if raw is None or not raw.strip():
        return []
    names = list(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
    check_points(services_of(request).settings, names, param)
    return names


def _range(request: Request) -> tuple[int, int]:
    q = request.query_params
    start_ms, end_ms = parse_range(q.get("start_time"), q.get("end_time"))
    check_range(services_of(request).settings, start_ms, end_ms)
    return start_ms, end_ms


def _point_name_from_raw_path(request: Request) -> str:
    """The point name from the undecoded path: names contain '/' sent as %2F."""
    raw = (request.scope.get("raw_path") or quote(request.url.path).encode()).decode("latin-1")
    raw = raw.split("?", 1)[0]
    prefix, suffix = "/api/points/", "/timeseries"
    name = (
        unquote(raw[len(prefix) : -len(suffix)])
        if raw.startswith(prefix) and raw.endswith(suffix)
        else ""
    )
    if not name:
        raise BadParameter(
            "point", "the point name is missing from the path (/api/points/{name}/timeseries)"
        )
    return name


def _site_of_point(name: str) -> str:
    """ACE point names are 'ses/<site>/…' paths; other names group under '_'."""
    parts = name.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "ses" and parts[1] else "_"


PASSED_THROUGH = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def routes() -> list[Route]:
    return [
        # the contract declares collections with a trailing slash; both spellings answer
        Route("/api/sites", paged_passthrough, methods=["GET"]),
        Route("/api/sites/", paged_passthrough, methods=["GET"]),
        Route("/api/sites/{site}/configured_points", paged_passthrough, methods=["GET"]),
        Route("/api/sites/{site}/points", paged_passthrough, methods=["GET"]),
        Route("/api/sites/{site}/timeseries/paginated", site_paginated, methods=["GET"]),
        Route("/api/points/get_timeseries", points_get_timeseries, methods=["POST"]),
        Route("/api/points/{name:path}/timeseries", point_timeseries, methods=["GET"]),
        Route("/api/{rest:path}", passthrough, methods=PASSED_THROUGH),
    ]
