"""``GET /api/aggregations``: rollup rows per hour, day, week or month of a chart query,
with the sample statistics and the time-weighted ones."""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tsgate.api.auth import token_of
from tsgate.api.chartquery import check_raw_reads, parse_query, point_kinds, resolve_zone
from tsgate.api.negotiation import compressed, encode_body, wants_msgpack
from tsgate.api.services import services_of
from tsgate.core import rollups, weighted
from tsgate.errors import BadParameter, TooLarge
from tsgate.series.access import UNKNOWN_SITE
from tsgate.series.chart import ChartQuery, exact_buckets, grid_for, line_gaps, linear_points
from tsgate.wire.ace import format_time

MAX_AGGREGATION_ROWS = 500_000
# the intervals the rollups serve (finer ones would read every raw sample of the range)
AGGREGATION_INTERVALS = ("1h", "6h", "1d", "7d", "1mo")


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
        _states_only(q, await point_kinds(request, q, token))
    grid = grid_for(interval, q.tz, q.start_ms, q.end_ms)
    gaps = await line_gaps(services.reader, q.site, q.points)
    found, stats = await exact_buckets(
        services.reader, q.site, q.points, (q.start_ms, q.end_ms), grid, token=token, gaps=gaps
    )
    # the read checked the token on the site (per point on the unknown site)
    kinds = await point_kinds(request, q, token, access_checked=q.site != UNKNOWN_SITE)
    linear = linear_points(kinds)
    rows = sum(len(b) for b in found.values())
    if rows > MAX_AGGREGATION_ROWS:
        raise TooLarge(
            "max_aggregation_rows",
            f"{rows:,} rows; at most {MAX_AGGREGATION_ROWS:,} — use interval=1d or a shorter range",
        )
    until = min(q.end_ms, services.clock_ms() + 1)
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
    return [Route("/api/aggregations", aggregations, methods=["GET"])]
