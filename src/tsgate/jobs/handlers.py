"""The job kinds: ``export`` (a file of samples) and ``query`` (the chart JSON).

Both read through the series reader slice by slice (days, or weeks/months for few
points), reporting progress and honouring cancel after each slice.
"""

from __future__ import annotations

import tempfile
from typing import Any

import msgspec

from tsgate.clock import format_utc
from tsgate.core.model import Series
from tsgate.errors import UpstreamUnavailable
from tsgate.jobs.exports import open_writer
from tsgate.jobs.model import JobRequest, slices
from tsgate.jobs.runner import Handler, JobContext, JobResult
from tsgate.series.chart import ChartQuery, answer_of, run_chart
from tsgate.series.reader import ReadStats
from tsgate.wire.chart import chart_body, describe_series

SPOOL_BYTES = 16 << 20  # exports up to this size stay in memory


def metadata(request: JobRequest, samples: int) -> dict[str, Any]:
    return {
        "siteId": request.site,
        "pointNames": list(request.points),
        "startTime": format_utc(request.start_ms),
        "endTime": format_utc(request.end_ms),
        "totalSamples": samples,
    }


def _complete(stats: ReadStats) -> None:
    """A job's result is kept and reused: never complete it from a partial (stale) cache;
    failing lets the job retry once upstream is back."""
    if stats.stale:
        raise UpstreamUnavailable("upstream failed and the cache holds only part of the range")


async def _read_slices(ctx: JobContext) -> Any:
    """Yield each slice's series by name, after reporting the previous slice's progress."""
    req = ctx.request
    spans = list(slices(req.start_ms, req.end_ms, points=len(req.points)))
    for i, (start_ms, end_ms) in enumerate(spans, 1):
        found, stats = await ctx.reader.read(
            req.site, req.points, start_ms, end_ms, token=ctx.token
        )
        _complete(stats)
        yield found
        await ctx.step(i, len(spans), sum(len(s) for s in found.values()))


async def run_export(ctx: JobContext) -> JobResult:
    # the file grows on disk past SPOOL_BYTES: a year of many points is never held whole
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as out:
        writer = open_writer(ctx.request.format, out)
        async for found in _read_slices(ctx):
            for name in ctx.request.points:
                writer.add(found.get(name) or Series.empty(name))
        writer.finish(metadata(ctx.request, writer.rows))
        key = ctx.result_key(ctx.request.format)
        size = await ctx.objects.put_file(key, out)
    return JobResult(key, size, writer.rows)


async def run_query(ctx: JobContext) -> JobResult:
    """Fetch what the cache lacks slice by slice (progress, cancel), then answer exactly as
    ``GET /api/timeseries`` would for the same parameters, from the warm cache."""
    req = ctx.request
    spans = list(slices(req.start_ms, req.end_ms, points=len(req.points)))
    for i, (start_ms, end_ms) in enumerate(spans, 1):
        stats = ReadStats()
        await ctx.reader.ensure(
            req.site, req.points, start_ms, end_ms, token=ctx.token, stats=stats
        )
        _complete(stats)
        await ctx.step(i, len(spans), stats.fetched_samples)
    query = ChartQuery(
        req.site,
        req.points,
        req.start_ms,
        req.end_ms,
        req.interval or "raw",
        req.max_points,
        req.agg or "avg",
        req.tz or "UTC",
        req.compare_ms or 0,
    )
    # prepared once (access, index rows, plan), as the API does; every part reads through it
    prepared = await ctx.reader.prepare(
        query.site, query.points, query.start_ms, query.end_ms, token=ctx.token
    )
    describe = ctx.describe
    result = await run_chart(
        ctx.reader,
        query,
        token=ctx.token,
        prepared=prepared,
        describe=(lambda site, names: describe(site, names, ctx.token)) if describe else None,
    )
    _complete(result.stats)
    body = chart_body(answer_of(query, result), req.layout or "series", msgpack=False)
    if describe is not None:
        describe_series(body, await describe(req.site, req.points, ctx.token))
    data = msgspec.json.encode(body)
    key = ctx.result_key("json")
    await ctx.objects.put(key, data)
    return JobResult(key, len(data), result.total_samples)


def default_handlers() -> dict[str, Handler]:
    """The registry the runner uses; replace ``"query"`` to plug in another computation."""
    return {"export": run_export, "query": run_query}
