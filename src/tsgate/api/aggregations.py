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
from tsgate.series.chart import exact_buckets, grid_for, line_gaps, linear_points
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
    token = token_of(request, services.settings.upstream_token)
    q = await resolve_zone(request, dataclasses.replace(q, interval=interval), token)
    check_raw_reads(request, q)
    grid = grid_for(interval, q.tz, q.start_ms, q.end_ms)
    gaps = await line_gaps(services.reader, q.site, q.points)
    found, stats = await exact_buckets(
        services.reader, q.site, q.points, (q.start_ms, q.end_ms), grid, token=token, gaps=gaps
    )
    linear = linear_points(await point_kinds(request, q, token))
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
        items.extend(_rows(name, found[name], ends, until, linear=name in linear))
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


def _rows(
    name: str, b: rollups.Buckets, ends: Any, until: int, *, linear: bool
) -> list[dict[str, Any]]:
    """One row per bucket: the sample statistics, and the time-weighted ones."""
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
    }
    stamps = b.start_ms.tolist()
    lists = {key: values.tolist() for key, values in columns.items()}
    return [
        {"name": name, "timestamp": format_time(ts), **{k: lists[k][i] for k in lists}}
        for i, ts in enumerate(stamps)
    ]


def routes() -> list[Route]:
    return [Route("/api/aggregations", aggregations, methods=["GET"])]
