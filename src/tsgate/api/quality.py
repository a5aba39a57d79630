"""``GET /api/quality``: which points of a site are missing, stale, gappy or flatlined.

Computed from the hourly rollups (exact at unaligned range edges), never from a raw scan
of the range; see :mod:`tsgate.series.quality` for what each figure means.
"""

from __future__ import annotations

import math
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tsgate.api.auth import token_of
from tsgate.api.negotiation import compressed, encode_body, wants_msgpack
from tsgate.api.services import services_of
from tsgate.errors import BadParameter, TooLarge
from tsgate.series.chart import exact_buckets
from tsgate.series.grids import Grid
from tsgate.series.model import MS_PER_DAY, MS_PER_HOUR
from tsgate.series.quality import Quality, assess, summarise
from tsgate.upstream.wire import format_time, parse_range

MAX_QUALITY_POINTS = 10_000
MAX_QUALITY_DAYS = 92
DEFAULT_CADENCE_S = 300  # when the catalog has no collect_interval for a point
STALE_CADENCES = 3  # a point is stale after this many missed reports, unless told


async def quality(request: Request) -> Response:
    services = services_of(request)
    q = request.query_params
    site = (q.get("site") or "").strip()
    if not site:
        raise BadParameter("site", "is required (a site name, e.g. demo_campus)")
    start_ms, end_ms = parse_range(q.get("start"), q.get("end"), names=("start", "end"))
    if end_ms - start_ms > MAX_QUALITY_DAYS * MS_PER_DAY:
        raise TooLarge(
            "max_quality_days", f"end: at most {MAX_QUALITY_DAYS} days per quality request"
        )
    tolerance = _number(q.get("flat_tolerance"), "flat_tolerance") or 0.0
    stale_after_s = _number(q.get("stale_after"), "stale_after")
    low, high = _bound(q.get("low"), "low"), _bound(q.get("high"), "high")
    if low is not None and high is not None and low > high:
        raise BadParameter("high", f"must not be below low ({low:g})")
    token = token_of(request, services.settings.upstream_token)
    await services.catalog.fresh(site, token)
    catalog = await _catalog(request, site, q.get("points"))
    cadences = {name: _cadence_s(point) for name, point in catalog.items()}
    names = list(catalog)
    found, stats = await exact_buckets(
        services.reader, site, names, (start_ms, end_ms), Grid(MS_PER_HOUR), token=token
    )
    now_ms = services.reader.clock_ms()
    zone = await services.zones.zone_of(site, token)
    items = [
        assess(
            name,
            found[name],
            (start_ms, end_ms),
            now_ms,
            cadence_ms=cadence_s * 1000,
            stale_after_ms=int((stale_after_s or STALE_CADENCES * cadence_s) * 1000),
            flat_tolerance=tolerance,
            bounds=_bounds(catalog[name], low, high),
        )
        for name, cadence_s in cadences.items()
    ]
    observed = await services.database.modes.get(site, list(catalog))
    described = {
        name: services.kinds.describe(point, observed.get(name)) for name, point in catalog.items()
    }
    summary = summarise(items, {name: kind for name, (kind, _) in described.items()})
    body = {
        "metadata": {
            "siteId": site,
            "startTime": format_time(start_ms),
            "endTime": format_time(end_ms),
            "now": format_time(now_ms),
            "timeZone": zone,  # the site's (see tz=site)
            "flatTolerance": tolerance,
        },
        "summary": {
            "points": summary.points,
            "missing": summary.missing,
            "stale": summary.stale,
            "flatlined": summary.flatlined,
            "outOfRange": summary.out_of_range,
            "meanCoveragePct": summary.mean_coverage_pct,
            "samples": summary.samples,
        },
        "points": [_item(item, catalog[item.name], described[item.name]) for item in items],
    }
    data, media_type = encode_body(body, wants_msgpack(request))
    headers = {"X-Cache-Status": stats.cache_status, "X-Cache-Source": stats.cache_source}
    return compressed(request, data, media_type, headers=headers)


def _item(item: Quality, point: dict[str, Any], described: tuple[str, str]) -> dict[str, Any]:
    return {
        "name": item.name,
        "unit": (point.get("kv_tags") or {}).get("unit"),
        "kind": described[0],
        "mode": described[1],
        "cadenceS": _cadence_s(point),
        "samples": item.samples,
        "expected": item.expected,
        "coveragePct": item.coverage_pct,
        "longestGapMs": item.longest_gap_ms,
        "lastTime": None if item.last_ms is None else format_time(item.last_ms),
        "staleMs": item.stale_ms,
        "stale": item.stale,
        "missing": item.missing,
        "flatlineHours": item.flatline_hours,
        "outOfRangeHours": item.out_of_range_hours,
        "hours": item.hours,
    }


async def _catalog(
    request: Request, site: str, raw_points: str | None
) -> dict[str, dict[str, Any]]:
    """The catalog objects of the points to assess: the named ones, else every point of
    the site that collects."""
    services = services_of(request)
    _, catalog = await services.database.points.list(site, 0, MAX_QUALITY_POINTS + 1)
    known = {p["name"]: p for p in catalog}
    if raw_points:
        names = list(dict.fromkeys(n.strip() for n in raw_points.split(",") if n.strip()))
        unknown = [n for n in names if n not in known]
        if unknown:
            raise BadParameter("points", f"not points of {site!r}: {', '.join(unknown[:5])}")
    else:
        names = [n for n, p in known.items() if p.get("collect_enabled")]
    if len(names) > MAX_QUALITY_POINTS:
        raise TooLarge("max_quality_points", f"at most {MAX_QUALITY_POINTS} points per request")
    return {n: known[n] for n in names}


def _cadence_s(point: dict[str, Any]) -> int:
    interval = point.get("collect_interval")
    if isinstance(interval, int) and not isinstance(interval, bool) and interval > 0:
        return interval
    return DEFAULT_CADENCE_S


def _number(raw: str | None, name: str) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadParameter(name, f"{raw!r} is not a number") from None
    if not (0 <= value < float("inf")):
        raise BadParameter(name, f"{raw!r} must be a finite number >= 0")
    return value


_LOW_TAGS = ("minVal", "min_val", "min")  # Project Haystack names first
_HIGH_TAGS = ("maxVal", "max_val", "max")


def _bounds(
    point: dict[str, Any], low: float | None, high: float | None
) -> tuple[float | None, float | None]:
    """A point's plausible range: ``low``/``high`` from the request, else its kv tags."""
    tags = point.get("kv_tags")
    tags = tags if isinstance(tags, dict) else {}
    return (
        low if low is not None else _tag_number(tags, _LOW_TAGS),
        high if high is not None else _tag_number(tags, _HIGH_TAGS),
    )


def _tag_number(tags: dict[str, Any], keys: tuple[str, ...]) -> float | None:
    for key in keys:
        value = tags.get(key)
        number: float | None = None
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            try:
                number = float(value)
            except ValueError:
                number = None
        if number is not None and math.isfinite(number):
            return number
    return None


def _bound(raw: str | None, name: str) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadParameter(name, f"{raw!r} is not a number") from None
    if not math.isfinite(value):
        raise BadParameter(name, f"{raw!r} must be a finite number")
    return value


def routes() -> list[Route]:
    return [Route("/api/quality", quality, methods=["GET"])]
