"""The chart API: ``GET /api/timeseries`` and ``GET /api/aggregations`` (DESIGN §3).

Wire layouts (the storage codec is separate: changing these never touches chunks):

- ``layout=series`` (default): ``series: [{name, data: [[ms, value], …]}]``.
- ``layout=columnar``, JSON: ``series: [{name, t: [ms, …], v: [value, …]}]``.
- ``layout=columnar``, MessagePack: ``series: [{name, n, t0, dt, v}]`` where ``dt`` is
  binary little-endian int32 time deltas in ms (``n`` of them, ``dt[0] = 0``; time i is
  ``t0 + dt[0] + … + dt[i]``) and ``v`` binary little-endian float32 values (NaN for gaps).
  A series whose gaps exceed int32 ms (24.8 days) carries ``t`` as float64 ms instead.
In JSON, NaN values are ``null``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tsgate.api import responses
from tsgate.api.auth import token_of
from tsgate.api.fastpath import FastAnswers
from tsgate.api.limits import check_points, check_range
from tsgate.api.negotiation import (
    checked_format,
    choose_encoding,
    compressed,
    encode_body,
    msgpack_for,
    respond,
    wants_msgpack,
)
from tsgate.api.services import services_of
from tsgate.core import calendar, rollups, weighted
from tsgate.core.calendar import UTC
from tsgate.errors import BadParameter, TooLarge, UpstreamBadAnswer, UpstreamError
from tsgate.jobs.model import normalise
from tsgate.series.access import UNKNOWN_SITE
from tsgate.series.chart import (
    INTERVALS,
    ChartQuery,
    ChartResult,
    GapLimits,
    chart_body,
    describe_series,
    estimate_samples,
    exact_buckets,
    grid_for,
    line_gaps,
    linear_points,
    reads_raw,
    run_chart,
)
from tsgate.series.planning import changes_at
from tsgate.settings import Settings
from tsgate.wire.ace import format_time, parse_bool, parse_int, parse_range

MAX_AGGREGATION_ROWS = 500_000
# the intervals the rollups serve (finer ones would read every raw sample of the range)
AGGREGATION_INTERVALS = ("1h", "6h", "1d", "7d", "1mo")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChartRequest:
    """What the query string of a chart request asks for, checked."""

    query: ChartQuery
    layout: str
    format: str | None  # ?format=, else the Accept header decides


# parsed requests by (query string, limits): a dashboard repeats the same few queries,
# and parsing them again is a large part of answering one from the response cache
_PARSED: dict[tuple[bytes, int, int], ChartRequest] = {}
_PARSED_MAX = 4096


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
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        _PARSED[memo] = parsed
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
    interval = q.get("interval") or ("auto" if q.get("agg") and not q.get("max_points") else "raw")
    if interval not in INTERVALS:
        raise BadParameter("interval", f"{interval!r} is not one of {', '.join(INTERVALS)}")
    agg = q.get("agg") or "avg"
    if agg not in rollups.AGGREGATES and not weighted.is_time_weighted(agg):
        shown = repr(agg) if len(agg) <= 40 else repr(agg[:40]) + "…"
        raise BadParameter(
            "agg",
            f"{shown} is not one of {', '.join(sorted(rollups.AGGREGATES))}, "
            "or timein:<state> with an integer state (e.g. timein:2)",
        )
    return ChartQuery(
        site,
        points,
        start_ms,
        end_ms,
        interval,
        parse_int("max_points", q.get("max_points"), lo=4, hi=1_000_000),
        agg,
        _zone_param(q.get("tz")),
        _compare_param(q.get("compare"), settings),
    )


_DURATION = re.compile(r"-(\d{1,6})(m|h|d|w)")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}


def _compare_param(raw: str | None, settings: Settings) -> int:
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


def _zone_param(raw: str | None) -> str:
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
    limit = services_of(request).settings.max_inline_samples
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


async def timeseries(request: Request) -> Response:
    started = time.perf_counter()
    services = services_of(request)
    parsed = chart_request(request)
    q, layout = parsed.query, parsed.layout
    msgpack = msgpack_for(parsed.format, request.headers.get("accept", ""))
    token = token_of(request, services.settings.upstream_token)
    q = await resolve_zone(request, q, token)
    check_raw_reads(request, q)
    timein = weighted.timein_state(q.agg) is not None
    # the prepared read checks the token on the site (per point on the unknown site)
    checked = q.site != UNKNOWN_SITE
    key = responses.ResponseKey(
        services.access.scope(token),
        q,
        layout,
        msgpack,
        choose_encoding(request.headers.get("accept-encoding", "")),
        await services.reader.generation(q.site),
    )
    hit = await responses.load(services.cache, key)
    if hit is not None and hit.until_ms and hit.until_ms <= services.reader.clock_ms():
        hit = None  # its samples may have changed since (the clock may not be the cache's)
    if hit is not None:
        await _regrant(request, q, token)
        if timein:
            await _check_states(request, q, token, access_checked=checked)
        _keep_fast(request, parsed, key, hit)
        return _from_cache(request, hit, started)
    # the read is prepared once (access, index rows, plan; a comparison's earlier span
    # with it): the states and the inline budget are checked on it, the chart reads
    # through it
    prepared = await services.reader.prepare(
        q.site, q.points, q.start_ms, q.end_ms, token=token, earlier_ms=q.compare_ms
    )
    if timein:
        await _check_states(request, q, token, access_checked=checked)
    queued = await _too_large_for_inline(request, q, layout, token, prepared.missing_with_earlier)
    if queued is not None:
        return queued
    result = await run_chart(
        services.reader,
        q,
        token=token,
        prepared=prepared,
        describe=lambda site, names: services.catalog.describe(
            site, names, token, services.kinds, access_checked=checked
        ),
        gap_limits=chart_gap_limits(request, token, access_checked=checked),
    )
    computed = time.perf_counter()
    body_obj = chart_body(q, result, layout, msgpack=msgpack)
    await describe_answer(request, q, body_obj, token, access_checked=checked)
    body, media_type = encode_body(body_obj, msgpack)
    etag = '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'
    headers = _headers(request, q, result, started, computed, etag)
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    response = compressed(request, body, media_type, headers=headers)
    if result.stats.cache_status != "STALE":
        kept = {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}
        until_ms = await _response_until_ms(request, q, result)
        entry = responses.CachedResponse(bytes(response.body), media_type, kept, until_ms=until_ms)
        ttl_s = (until_ms - services.reader.clock_ms()) / 1000
        if await responses.store(services.cache, key, entry, ttl_s):
            _keep_fast(request, parsed, key, entry)
    return response


def chart_gap_limits(request: Request, token: str, *, access_checked: bool) -> GapLimits:
    """Each point's gap limit (a chart's ``metadata.gaps``), as ``/api/quality`` judges it;
    ``access_checked``: the request checked the token on the site already."""
    services = services_of(request)
    floor_ms = int(services.settings.cov_gap_floor_s * 1000)
    return lambda site, names: services.catalog.gap_limits(
        site, names, token, services.kinds, floor_ms=floor_ms, access_checked=access_checked
    )


async def _regrant(request: Request, q: ChartQuery, token: str) -> None:
    """Before a kept answer is served: the token's access to the site, asked of upstream
    again once its grant has run out (a revoked token gets its 401/403 here). If upstream
    cannot answer, the kept answer is served as before."""
    access = services_of(request).access
    if q.site == UNKNOWN_SITE or access.granted(access.scope(token), q.site):
        return
    try:
        await access.check(q.site, token)
    except (UpstreamError, UpstreamBadAnswer) as exc:
        log.info("access of a kept answer not renewed (%s): served from the cache", exc)


def _keep_fast(
    request: Request,
    parsed: ChartRequest,
    key: responses.ResponseKey,
    entry: responses.CachedResponse,
) -> None:
    """The answer also kept ready to send, for :mod:`tsgate.api.fastpath`."""
    answers: FastAnswers | None = getattr(request.state, "fast_answers", None)
    if answers is not None and parsed.query.tz != "site" and request.method == "GET":
        answers.keep(request.scope, services_of(request), key.query.site, key.generation, entry)


async def _kinds(
    request: Request, q: ChartQuery, token: str, *, access_checked: bool = False
) -> dict[str, tuple[str, str]]:
    """Each point's ``(kind, mode)`` from the site's catalog (else from its name);
    ``access_checked``: the request checked the token on the site already."""
    services = services_of(request)
    return await services.catalog.describe(
        q.site, q.points, token, services.kinds, access_checked=access_checked
    )


async def _check_states(
    request: Request, q: ChartQuery, token: str, *, access_checked: bool = False
) -> None:
    """``timein:<state>`` asks how long a point held a state: binary and multi-state
    points only (a 400 names the first analog one). ``access_checked``: the request
    checked the token on the site already (its prepared read)."""
    kinds = await _kinds(request, q, token, access_checked=access_checked)
    for name, (kind, _) in kinds.items():
        if kind == "analog":
            raise BadParameter(
                "agg",
                f"{q.agg} needs binary or multistate points; {name!r} is analog "
                "(TSGATE_POINT_KINDS can say otherwise)",
            )


async def describe_answer(
    request: Request,
    q: ChartQuery,
    body: dict[str, Any],
    token: str,
    *,
    access_checked: bool = False,
) -> None:
    """Each series' point ``kind`` and sampling ``mode``, from the site's catalog (else
    from the point's name), so a client knows what to draw as steps."""
    describe_series(body, await _kinds(request, q, token, access_checked=access_checked))


# headers that describe the answer itself, not how this request got it
_KEPT_HEADERS = {"etag", "cache-control", "x-data-samples", "content-encoding", "vary"}


def _from_cache(request: Request, hit: responses.CachedResponse, started: float) -> Response:
    elapsed_ms = (time.perf_counter() - started) * 1000
    headers = {
        **hit.headers,
        "X-Cache-Status": "HIT",
        "X-Cache-Source": "MEMORY",
        "X-Processing-Time": f"{elapsed_ms:.2f}",
        "Server-Timing": f"cache;dur={elapsed_ms:.2f}",
    }
    if hit.headers.get("etag", "\0") in request.headers.get("if-none-match", ""):
        headers.pop("content-encoding", None)
        return Response(status_code=304, headers=headers)
    return Response(hit.body, 200, headers=headers, media_type=hit.media_type)


async def _response_until_ms(request: Request, q: ChartQuery, result: ChartResult) -> int:
    """Until when the answer may be kept: never past the token's access grant it was
    served under, at most an hour; a repair of data behind a kept answer moves the site's
    generation, so it is not served. An answer with periods not yet final is kept until
    their samples could change (:func:`~tsgate.series.planning.changes_at`): the next
    re-check of a provisional period, the open TTL of a tail or of a range still open."""
    services = services_of(request)
    reader = services.reader
    now = reader.clock_ms()
    until = now + int(min(services.settings.access_ttl_s, 3600.0) * 1000)
    if result.stats.final:
        return until
    spans = [(q.start_ms, q.end_ms)]
    if q.compare_ms:
        spans.append((q.start_ms + q.compare_ms, q.end_ms + q.compare_ms))
    for start_ms, end_ms in spans:
        rows = await reader.store.rows(q.site, q.points, start_ms, end_ms)
        at = changes_at(q.points, rows, start_ms, end_ms, now, reader.policy.open_ttl_ms)
        until = until if at is None else min(until, at)
    return until


def _headers(
    request: Request, q: ChartQuery, result: ChartResult, started: float, computed: float, etag: str
) -> dict[str, str]:
    services = services_of(request)
    elapsed_ms = (time.perf_counter() - started) * 1000
    # responses depend on the caller's token: private; immutable only once every sample
    # behind the answer is final (a provisional day may still receive a late backlog)
    if result.stats.cache_status == "STALE":
        cache_control = "no-store"  # served while upstream is down: not the real answer
    elif result.stats.final:
        cache_control = "private, max-age=31536000, immutable"
    else:
        cache_control = f"private, max-age={max(1, services.policy.open_ttl_ms // 1000)}"
    return {
        "X-Cache-Status": result.stats.cache_status,
        "X-Cache-Source": result.stats.cache_source,
        "X-Processing-Time": f"{elapsed_ms:.2f}",
        "X-Data-Samples": str(result.total_samples),
        "Server-Timing": f"compute;dur={(computed - started) * 1000:.2f}, "
        f"total;dur={elapsed_ms:.2f}",
        "ETag": etag,
        "Cache-Control": cache_control,
    }


async def _too_large_for_inline(
    request: Request, q: ChartQuery, layout: str, token: str, missing: int
) -> Response | None:
    """A query whose cold part (``missing`` samples, its comparison's included) is too
    big to fetch inline becomes a job: 202 + Location, or 413 with suggestions when the
    client says it cannot wait (``async=false``)."""
    services = services_of(request)
    budget = services.settings.inline_fetch_samples
    if budget <= 0 or missing <= budget:
        return None
    if not parse_bool("async", request.query_params.get("async"), default=True):
        raise TooLarge(
            "inline_fetch_samples",
            f"about {missing:,} samples must first be fetched from upstream; at most {budget:,} "
            "inline — drop async=false to get a job (202), or ask for a shorter range",
        )
    job_request = normalise(
        kind="query",
        site=q.site,
        points=q.points,
        start_ms=q.start_ms,
        end_ms=q.end_ms,
        interval=q.interval,
        max_points=q.max_points,
        agg=q.agg,
        layout=layout,
        tz=q.tz,
        compare_ms=q.compare_ms,
    )
    job, _ = await services.jobs.submit(job_request, token)
    status_url = f"/api/jobs/{job.id}"
    body = {
        "jobId": job.id,
        "status": job.state.value,
        "statusUrl": status_url,
        "estimatedSamples": missing,
    }
    return respond(request, body, status=202, headers={"Location": status_url, "Retry-After": "2"})


async def aggregations(request: Request) -> Response:
    services = services_of(request)
    q = parse_query(request)
    interval = request.query_params.get("interval") or "1h"
    if interval not in AGGREGATION_INTERVALS:
        allowed = ", ".join(AGGREGATION_INTERVALS)
        raise BadParameter("interval", f"{interval!r} is not one of {allowed}")
    asked_states = _timein_param(request.query_params.get("timein"))
    token = token_of(request, services.settings.upstream_token)
    q = await resolve_zone(request, dataclasses.replace(q, interval=interval), token)
    check_raw_reads(request, q)
    if asked_states is not None:  # refused before anything is read
        _states_only(q, await _kinds(request, q, token))
    grid = grid_for(interval, q.tz, q.start_ms, q.end_ms)
    gaps = await line_gaps(services.reader, q.site, q.points)
    found, stats = await exact_buckets(
        services.reader, q.site, q.points, (q.start_ms, q.end_ms), grid, token=token, gaps=gaps
    )
    # the read checked the token on the site (per point on the unknown site)
    kinds = await _kinds(request, q, token, access_checked=q.site != UNKNOWN_SITE)
    linear = linear_points(kinds)
    rows = sum(len(b) for b in found.values())
    if rows > MAX_AGGREGATION_ROWS:
        raise TooLarge(
            "max_aggregation_rows",
            f"{rows:,} rows; at most {MAX_AGGREGATION_ROWS:,} — use interval=1d or a shorter range",
        )
    until = min(q.end_ms, services.reader.clock_ms() + 1)
    items: list[dict[str, Any]] = []
    for name in q.points:
        ends = grid.ends(found[name], until)
        states = _timein_states(found[name], kinds[name][0], asked_states)
        items.extend(_rows(name, found[name], ends, until, linear=name in linear, states=states))
    metadata = {
        "siteId": q.site,
        "pointNames": list(q.points),
        "startTime": format_time(q.start_ms),
        "endTime": format_time(q.end_ms),
        "interval": interval,
        "timeZone": q.tz,
        "rows": len(items),
    }
    body, media_type = encode_body(
        {"metadata": metadata, "aggregations": items}, wants_msgpack(request)
    )
    headers = {"X-Cache-Status": stats.cache_status, "X-Cache-Source": "ROLLUP"}
    return compressed(request, body, media_type, headers=headers)


def _timein_param(raw: str | None) -> tuple[int, ...] | None:
    """``timein``: the states (integers, comma-separated) whose hours each row carries;
    ``None`` when not asked (then every state a binary or multistate point held)."""
    if raw is None:
        return None
    texts = [part.strip() for part in raw.split(",")]
    if not any(texts):
        raise BadParameter("timein", "lists states, integers separated by commas (e.g. 1,2,3)")
    states: list[int] = []
    for text in texts:
        state = weighted.timein_state(weighted.TIMEIN + text)
        if state is None:
            shown = repr(text) if len(text) <= 20 else repr(text[:20]) + "…"
            raise BadParameter("timein", f"{shown} is not a state (an integer, e.g. 2)")
        states.append(int(state))
    unique = tuple(sorted(set(states)))
    if len(unique) > rollups.MAX_STATES:
        raise BadParameter("timein", f"at most {rollups.MAX_STATES} states")
    return unique


def _states_only(q: ChartQuery, kinds: dict[str, tuple[str, str]]) -> None:
    """States asked of an analog point are a 400 naming it (as ``agg=timein:<state>``)."""
    for name in q.points:
        if kinds[name][0] == "analog":
            raise BadParameter(
                "timein",
                f"needs binary or multistate points; {name!r} is analog "
                "(TSGATE_POINT_KINDS can say otherwise)",
            )


def _timein_states(b: rollups.Buckets, kind: str, asked: tuple[int, ...] | None) -> tuple[int, ...]:
    """The states whose hours a point's rows carry: those asked, else every state a
    binary or multistate point held in the range (none for an analog point)."""
    if asked is not None:
        return asked
    if kind == "analog" or not b.has_states:
        return ()
    return tuple(int(s) for s in b.states.tolist())


def _rows(
    name: str,
    b: rollups.Buckets,
    ends: Any,
    until: int,
    *,
    linear: bool,
    states: tuple[int, ...] = (),
) -> list[dict[str, Any]]:
    """One row per bucket: the sample statistics, the time-weighted ones, and the hours
    in each of ``states`` (``timein:<state>``)."""
    columns = {
        "avg": rollups.avg(b),
        "min": b.min,
        "max": b.max,
        "sum": b.sum,
        "count": b.count,
        "stddev": rollups.stddev(b),
        **{
            agg: weighted.values(b, agg, ends, until, linear=linear)
            for agg in ("twavg", "duty", "starts")
        },
        **{
            f"{weighted.TIMEIN}{state}": weighted.values(
                b, f"{weighted.TIMEIN}{state}", ends, until
            )
            for state in states
        },
    }
    stamps = b.start_ms.tolist()
    lists = {key: values.tolist() for key, values in columns.items()}
    return [
        {"name": name, "timestamp": format_time(ts), **{k: lists[k][i] for k in lists}}
        for i, ts in enumerate(stamps)
    ]


def routes() -> list[Route]:
    return [
        Route("/api/timeseries", timeseries, methods=["GET"]),
        Route("/api/aggregations", aggregations, methods=["GET"]),
    ]
