"""The chart request: its query parameters parsed and checked (a clear 4xx naming the
parameter when bad), ``tz=site`` resolved, and the checks that need the site's catalog.
``/api/timeseries``, ``/api/aggregations``, chart images and live streams share it."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

from starlette.datastructures import QueryParams
from starlette.requests import Request

from tsgate.api.limits import check_points, check_range
from tsgate.api.negotiation import checked_format
from tsgate.api.services import services_of
from tsgate.core import calendar, rollups, weighted
from tsgate.core.calendar import UTC
from tsgate.errors import BadParameter, TooLarge
from tsgate.lru import LRU
from tsgate.series.chart import INTERVALS, ChartQuery, GapLimits, estimate_samples, reads_raw
from tsgate.services import Services
from tsgate.settings import Settings
from tsgate.wire.ace import parse_int, parse_range


@dataclass(frozen=True)
class ChartRequest:
    """What the query string of a chart request asks for, checked."""

    query: ChartQuery
    layout: str
    format: str | None  # ?format=, else the Accept header decides


# parsed requests by (query string, limits): a dashboard repeats the same few queries,
# and parsing them again is a large part of answering one from the response cache
_PARSED: LRU[tuple[bytes, int, int], ChartRequest] = LRU.counted(4096)


def chart_request(request: Request) -> ChartRequest:
    """The chart request's parameters; a clear 4xx (``BadParameter``/``TooLarge``) if bad."""
    settings = services_of(request).settings
    memo = (
        request.scope["query_string"],
        settings.max_points_per_request,
        settings.max_range_days,
    )
    parsed = _PARSED.get(memo)
    if parsed is None:
        q = request.query_params
        parsed = ChartRequest(  # raises on bad input: nothing is kept
            _parse_query(q, settings), _layout(q), checked_format(q.get("format"))
        )
        _PARSED.put(memo, parsed)
    return parsed


def parse_query(request: Request) -> ChartQuery:
    """The chart query alone, parsed afresh (for routes without layout and format)."""
    return _parse_query(request.query_params, services_of(request).settings)


def _parse_query(q: QueryParams, settings: Settings) -> ChartQuery:
    site = (q.get("site") or q.get("siteId") or "").strip()
    if not site:
        raise BadParameter("site", "is required (a site name, e.g. demo_campus)")
    raw_points = q.get("points") or q.get("pointNames") or ""
    points = tuple(dict.fromkeys(p.strip() for p in raw_points.split(",") if p.strip()))
    if not points:
        raise BadParameter("points", "is required (comma-separated point names)")
    check_points(settings, points, "points")
    start_ms, end_ms = parse_range(q.get("start"), q.get("end"), names=("start", "end"))
    check_range(settings, start_ms, end_ms, "end")
    interval = default_interval(
        q.get("interval"), has_agg=bool(q.get("agg")), has_max_points=bool(q.get("max_points"))
    )
    interval_param(interval)
    agg = aggregate_param(q.get("agg") or "avg")
    return ChartQuery(
        site,
        points,
        start_ms,
        end_ms,
        interval,
        parse_int("max_points", q.get("max_points"), lo=4, hi=1_000_000),
        agg,
        zone_param(q.get("tz")),
        compare_param(q.get("compare"), settings),
    )


def default_interval(interval: str | None, *, has_agg: bool, has_max_points: bool) -> str:
    """``interval`` when given; else ``auto`` for an aggregate without ``max_points``
    (buckets sized to the range), ``raw`` otherwise."""
    return interval or ("auto" if has_agg and not has_max_points else "raw")


def interval_param(interval: str) -> str:
    """``interval``: one of :data:`~tsgate.series.chart.INTERVALS`."""
    if interval not in INTERVALS:
        raise BadParameter("interval", f"{interval!r} is not one of {', '.join(INTERVALS)}")
    return interval


def aggregate_param(agg: str) -> str:
    """``agg``: a rollup aggregate, a time-weighted one, or ``timein:<state>``."""
    if agg not in rollups.AGGREGATES and not weighted.is_time_weighted(agg):
        shown = repr(agg) if len(agg) <= 40 else repr(agg[:40]) + "…"
        raise BadParameter(
            "agg",
            f"{shown} is not one of {', '.join(sorted(rollups.AGGREGATES))}, "
            "or timein:<state> with an integer state (e.g. timein:2)",
        )
    return agg


_DURATION = re.compile(r"-(\d{1,6})(m|h|d|w)")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}


def compare_param(raw: str | None, settings: Settings) -> int:
    """``compare``: a duration into the past (``-7d``, ``-24h``, ``-90m``, ``-1w``) in ms."""
    if not raw:
        return 0
    match = _DURATION.fullmatch(raw.strip())
    if match is None or int(match[1]) == 0:
        raise BadParameter("compare", f"{raw!r} is not a duration into the past like -7d, -24h")
    offset = -int(match[1]) * _UNIT_MS[match[2]]
    if -offset > settings.max_range_days * 86_400_000:
        raise BadParameter("compare", f"at most {settings.max_range_days} days back")
    return offset


def zone_param(raw: str | None) -> str:
    """``tz``: UTC (default), ``site`` (the site's own zone) or an IANA zone name."""
    name = (raw or UTC).strip()
    if name.lower() in ("utc", "site"):
        return name.upper() if name.lower() == "utc" else "site"
    try:
        calendar.zone(name)
    except ValueError as exc:
        raise BadParameter("tz", f"{exc}, or site for the site's own zone") from None
    return name


async def resolve_zone(request: Request, q: ChartQuery, token: str) -> ChartQuery:
    """The query with ``tz=site`` replaced by the site's zone (cached per site)."""
    if q.tz != "site":
        return q
    zone = await services_of(request).zones.zone_of(q.site, token)
    return dataclasses.replace(q, tz=zone)


def _layout(q: QueryParams) -> str:
    layout = q.get("layout") or "series"
    if layout not in ("series", "columnar"):
        raise BadParameter("layout", f"{layout!r} is not one of series, columnar")
    return layout


def check_raw_reads(request: Request, q: ChartQuery) -> None:
    """Refuse (413) a query that would read more raw samples than one answer may."""
    refuse_raw_reads(services_of(request).settings.max_inline_samples, q)


def refuse_raw_reads(limit: int, q: ChartQuery) -> None:
    """:func:`check_raw_reads` with the limit given (a job's request is checked alike)."""
    if not reads_raw(q) or estimate_samples(q) <= limit:
        return
    if q.interval == "raw":
        advice = (
            "add max_points=N (downsampled), interval=1h|1d (aggregated), "
            "or submit a job (POST /api/jobs)"
        )
    else:
        advice = (
            f"interval={q.interval} (tz={q.tz}) is computed from raw samples: "
            "ask for a shorter range, fewer points or an interval of 1h or more"
        )
    raise TooLarge(
        "max_inline_samples",
        f"about {estimate_samples(q):,} raw samples; at most {limit:,} inline — {advice}",
    )


async def point_kinds(
    request: Request, q: ChartQuery, token: str, *, access_checked: bool = False
) -> dict[str, tuple[str, str]]:
    """Each point's ``(kind, mode)`` from the site's catalog (else from its name);
    ``access_checked``: the request checked the token on the site already."""
    services = services_of(request)
    return await services.catalog.describe(
        q.site, q.points, token, services.kinds, access_checked=access_checked
    )


async def check_states(
    request: Request, q: ChartQuery, token: str, *, access_checked: bool = False
) -> None:
    """``timein:<state>`` asks how long a point held a state: binary and multi-state
    points only (a 400 names the first analog one). ``access_checked``: the request
    checked the token on the site already (its prepared read)."""
    await check_states_of(services_of(request), q, token, access_checked=access_checked)


async def check_states_of(
    services: Services, q: ChartQuery, token: str, *, access_checked: bool = False
) -> None:
    """:func:`check_states` with the services given (a job's request is checked alike)."""
    kinds = await services.catalog.describe(
        q.site, q.points, token, services.kinds, access_checked=access_checked
    )
    for name, (kind, _) in kinds.items():
        if kind == "analog":
            raise BadParameter(
                "agg",
                f"{q.agg} needs binary or multistate points; {name!r} is analog "
                "(TSGATE_POINT_KINDS can say otherwise)",
            )


def chart_gap_limits(request: Request, token: str, *, access_checked: bool) -> GapLimits:
    """Each point's gap limit (a chart's ``metadata.gaps``), as ``/api/quality`` judges it;
    ``access_checked``: the request checked the token on the site already."""
    services = services_of(request)
    floor_ms = int(services.settings.cov_gap_floor_s * 1000)
    return lambda site, names, span: services.catalog.gap_limits(
        site,
        names,
        token,
        services.kinds,
        span=span,
        floor_ms=floor_ms,
        access_checked=access_checked,
    )
