"""``GET /api/frame``: several points on one time index, as Arrow IPC, Parquet or CSV.

``site``, ``points`` (comma-separated) or ``q`` (+ ``tags``) as the point search picks
them, ``start``, ``end``, ``interval`` (5min, 15min, 1h, 6h, 1d; default 5min), ``agg``
(any chart aggregate; default avg), ``fill`` (none, previous, linear). Columns: ``time``
(timestamp[ms, UTC], the interval start), then per point ``<name>`` (float64) and
``coverage:<name>`` (float64 in [0, 1]: the share of the samples the point's collect
interval promises that the interval holds). The format comes from ``?format=``
(``arrow``, ``parquet``, ``csv``) or ``Accept`` (``application/vnd.apache.arrow.stream``,
``application/vnd.apache.parquet``, ``text/csv``); CSV when neither says.

A frame whose cold part is too large to fetch inline answers ``202`` with the job that
fetches it (``Location: /api/jobs/{id}``); ask again once the job has completed.
"""

from __future__ import annotations

import io
import time
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tsgate.api.jobs import submitted_instead
from tsgate.api.limits import check_points, check_range
from tsgate.api.prometheus import ServiceSource, caller_token
from tsgate.api.services import services_of
from tsgate.core import frame, rollups
from tsgate.errors import BadParameter, MissingDependency, TooLarge
from tsgate.jobs.model import normalise
from tsgate.series.chart import INTERVALS_MS, ChartQuery, run_chart
from tsgate.wire.ace import parse_range

FORMATS = {
    "arrow": "application/vnd.apache.arrow.stream",
    "parquet": "application/vnd.apache.parquet",
    "csv": "text/csv; charset=utf-8",
}
_ACCEPTED = {
    "application/vnd.apache.arrow.stream": "arrow",
    "application/vnd.apache.arrow.file": "arrow",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "text/csv": "csv",
}
FRAME_INTERVALS = ("5min", "15min", "1h", "6h", "1d")
COVERAGE = "coverage:"


def _format(request: Request) -> str:
    fmt = request.query_params.get("format")
    if fmt is not None:
        if fmt.lower() not in FORMATS:
            raise BadParameter("format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
        return fmt.lower()
    for part in request.headers.get("accept", "").split(","):
        found = _ACCEPTED.get(part.split(";")[0].strip().lower())
        if found:
            return found
    return "csv"


def _choice(request: Request, name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = request.query_params.get(name) or default
    if value not in allowed:
        raise BadParameter(name, f"{value!r} is not one of {', '.join(allowed)}")
    return value


async def _points(request: Request, site: str, token: str) -> tuple[str, ...]:
    services = services_of(request)
    q = request.query_params
    listed = tuple(
        dict.fromkeys(p.strip() for p in (q.get("points") or "").split(",") if p.strip())
    )
    if listed:
        return listed
    if q.get("q") is None and not q.get("tags"):
        raise BadParameter("points", "is required (comma-separated point names), or q= to search")
    tags = [t for t in (q.get("tags") or "").split(",") if t.strip()]
    # every match, then the collecting ones: a limit before that filter would drop points
    found = await services.catalog.search(site, token, q.get("q") or "", tags, 10_000_000)
    names = tuple(p["name"] for p in found if p.get("collect_enabled"))
    if not names:
        raise BadParameter("q", f"no collecting point of {site!r} matches")
    return names


async def frame_endpoint(request: Request) -> Response:
    started = time.perf_counter()
    services = services_of(request)
    q = request.query_params
    fmt = _format(request)
    site = (q.get("site") or "").strip()
    if not site:
        raise BadParameter("site", "is required (a site name, e.g. demo_campus)")
    start_ms, end_ms = parse_range(q.get("start"), q.get("end"), names=("start", "end"))
    check_range(services.settings, start_ms, end_ms, "end")
    interval = _choice(request, "interval", "5min", FRAME_INTERVALS)
    agg = _choice(request, "agg", "avg", tuple(sorted(rollups.AGGREGATES)))
    how = _choice(request, "fill", "none", frame.FILLS)
    token = caller_token(request, services.settings.upstream_token)
    names = await _points(request, site, token)
    check_points(services.settings, names, "points")
    width = INTERVALS_MS[interval]
    rows = len(frame.index(start_ms, end_ms, width))
    limit = services.settings.max_inline_samples
    if rows * len(names) > limit:
        raise TooLarge(
            "max_inline_samples",
            f"{rows:,} rows × {len(names)} points; at most {limit:,} cells — "
            "use a wider interval or a shorter range",
        )
    queued = await _warming(request, site, names, start_ms, end_ms, token)
    if queued is not None:
        return queued
    reader = services.reader
    values = await run_chart(
        reader, ChartQuery(site, names, start_ms, end_ms, interval, None, agg), token=token
    )
    counts = await run_chart(
        reader, ChartQuery(site, names, start_ms, end_ms, interval, None, "count"), token=token
    )
    catalog = {r.point: r for r in await ServiceSource(services, token).catalog(site)}
    # a point reports every lookback/2 ms (its collect interval; 5 minutes if unknown)
    expected = [width / (catalog[n].lookback_ms / 2 if n in catalog else 300_000) for n in names]
    built = frame.build(start_ms, end_ms, width, names, values.series, counts.series, expected, how)
    headers = {
        "X-Cache-Status": values.stats.cache_status,
        "X-Cache-Source": values.stats.cache_source,
        "X-Data-Samples": str(counts.total_samples),
    }
    body = encode(built, fmt)
    headers["X-Processing-Time"] = f"{(time.perf_counter() - started) * 1000:.2f}"
    return Response(body, 200, headers=headers, media_type=FORMATS[fmt])


def table(built: frame.Frame) -> Any:
    """The frame as a ``pyarrow.Table`` (extra ``parquet``)."""
    try:
        import pyarrow as pa
    except ImportError as exc:
        raise MissingDependency("pyarrow", "parquet") from exc
    columns: dict[str, Any] = {"time": pa.array(built.time_ms, pa.timestamp("ms", tz="UTC"))}
    for name, values, coverage in zip(built.names, built.values, built.coverage, strict=True):
        columns[name] = pa.array(values, pa.float64(), from_pandas=True)
        columns[COVERAGE + name] = pa.array(coverage, pa.float64())
    return pa.table(columns)


def encode(built: frame.Frame, fmt: str) -> bytes:
    data = table(built)
    out = io.BytesIO()
    if fmt == "arrow":
        import pyarrow as pa

        with pa.ipc.new_stream(out, data.schema) as writer:
            writer.write_table(data)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(data, out, compression="zstd")
    else:
        import pyarrow.csv as pacsv

        pacsv.write_csv(data, out)
    return out.getvalue()


async def _warming(
    request: Request, site: str, names: tuple[str, ...], start_ms: int, end_ms: int, token: str
) -> Response | None:
    """As the chart API: a cold part too large to fetch inline becomes a job (202)."""
    services = services_of(request)
    budget = services.settings.inline_fetch_samples
    if budget <= 0:
        return None
    missing = await services.reader.missing_samples(site, names, start_ms, end_ms, token=token)
    if missing <= budget:
        return None
    job_request = normalise(
        kind="query", site=site, points=names, start_ms=start_ms, end_ms=end_ms, interval="1h"
    )
    body, headers = await submitted_instead(
        services,
        job_request,
        token,
        missing=missing,
        detail="the job fetches the frame's data; ask for the frame again once it completes",
    )
    return Response(msgspec.json.encode(body), 202, headers=headers, media_type="application/json")


def routes() -> list[Route]:
    return [Route("/api/frame", frame_endpoint, methods=["GET"])]
