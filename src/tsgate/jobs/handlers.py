"""The job kinds: ``export`` (a file of samples) and ``query`` (the chart JSON).

Both read through the series reader slice by slice (days, or weeks/months for few
points), reporting progress and honouring cancel after each slice.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import msgspec

from tsgate.clock import format_utc
from tsgate.core.extents import month_floor
from tsgate.core.model import MS_PER_DAY, Series
from tsgate.errors import UpstreamUnavailable
from tsgate.jobs.exports import open_writer
from tsgate.jobs.model import (
    MONTH_SLICE_MAX_POINTS,
    Job,
    JobKind,
    JobRequest,
    JobState,
    slices,
)
from tsgate.jobs.runner import Handler, JobContext, JobResult
from tsgate.series.chart import ChartParts, ChartQuery, answer_of, run_chart
from tsgate.series.reader import ReadStats
from tsgate.wire.chart import chart_body, describe_series

SPOOL_BYTES = 16 << 20  # exports up to this size stay in memory
SLICES_AHEAD = 1  # a query job fetches the next slice while it finishes this one
FIRST_PART_MS = 7 * MS_PER_DAY  # a progressive chart's first part: its newest week


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


def chart_query(req: JobRequest) -> ChartQuery:
    """The chart query a query job answers."""
    return ChartQuery(
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


def part_key(job_id: str, index: int) -> str:
    """Where part ``index`` (0: the newest) of a progressive query job's answer is kept."""
    return f"jobs/{job_id[:2]}/{job_id}/part-{index}.json"


def progressive(req: JobRequest) -> bool:
    """Whether a job of ``req`` writes its answer part by part as its slices are fetched."""
    return req.kind is JobKind.QUERY and ChartParts.plan(chart_query(req), req.end_ms) is not None


def parts_ready(job: Job) -> int:
    """How many parts of a progressive query job's answer can be read: one per finished
    slice (the progress says how many of ``samples_total`` slices are done)."""
    if not progressive(job.request):
        return 0
    if job.state is JobState.COMPLETED:
        return job.samples_total
    return round(job.progress * job.samples_total / 100.0)


def newest_first(spans: list[tuple[int, int]], first_ms: int) -> list[tuple[int, int]]:
    """The slices newest first, the first of them the range's last ``first_ms`` (so the
    first part a chart draws comes sooner, whatever day of the month it is), the slices
    it overlaps cut to what is left of them."""
    if not spans:
        return []
    start_ms, end_ms = spans[0][0], spans[-1][1]
    cut = max(start_ms, end_ms - first_ms)
    older = [(a, min(b, cut)) for a, b in reversed(spans) if a < cut]
    return [(cut, end_ms), *older]


async def _ensure_slice(ctx: JobContext, span: tuple[int, int], compare_ms: int) -> ReadStats:
    """Fetch what the cache lacks of ``span`` (and of its comparison's, ``compare_ms``
    earlier) for the job's points."""
    req = ctx.request
    stats = ReadStats()
    offsets = (0, compare_ms) if compare_ms else (0,)
    for offset in offsets:
        await ctx.reader.ensure(
            req.site,
            req.points,
            span[0] + offset,
            span[1] + offset,
            token=ctx.token,
            stats=stats,
        )
        _complete(stats)
    return stats


@contextlib.asynccontextmanager
async def _fetched_ahead(
    ctx: JobContext, spans: list[tuple[int, int]], compare_ms: int
) -> AsyncIterator[AsyncIterator[ReadStats]]:
    """Each slice's fetch, in order, with the next slice's already under way: upstream is
    kept busy while a slice's last reads finish and its part is made."""
    pending: deque[asyncio.Task[ReadStats]] = deque()
    left = deque(spans)
    running: deque[tuple[int, int]] = deque()

    def months(span: tuple[int, int]) -> set[int]:
        shifts = {0, compare_ms}
        return {month_floor(t + shift) for t in (span[0], span[1] - 1) for shift in shifts}

    def fill(reading: tuple[int, int] | None = None) -> None:
        # a slice that touches a month (its comparison's included) another slice is
        # writing, or whose part is being made (``reading``), waits: a month's chunks and
        # rollups are written and read whole
        busy = [*running, *([reading] if reading else [])]
        while left and len(pending) <= SLICES_AHEAD:
            if any(months(left[0]) & months(r) for r in busy):
                return
            span = left.popleft()
            running.append(span)
            busy.append(span)
            pending.append(asyncio.create_task(_ensure_slice(ctx, span, compare_ms)))

    async def each() -> AsyncIterator[ReadStats]:
        fill()
        while pending:
            stats = await pending[0]
            pending.popleft()
            done = running.popleft()
            fill(reading=done)
            yield stats
            fill()

    try:
        yield each()
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


async def run_query(ctx: JobContext) -> JobResult:
    """Fetch what the cache lacks slice by slice (progress, cancel), then answer exactly as
    ``GET /api/timeseries`` would for the same parameters, from the warm cache.

    When the answer is made of its buckets' (M4, or an aggregate that is not
    time-weighted) the slices go newest first (the first of them the range's last
    ``FIRST_PART_MS``), and after each one the part of the answer
    it completed is kept (:func:`part_key`), so a chart can show the latest months while
    the older ones are fetched; the parts joined are the answer. The next slice is
    fetched while one's part is made (:func:`_fetched_ahead`)."""
    req = ctx.request
    query = chart_query(req)
    spans = list(slices(req.start_ms, req.end_ms, points=len(req.points)))
    parts = ChartParts.plan(query, ctx.reader.clock_ms())
    if parts is not None:
        # day slices (very many points) bound memory: the first part is then a day
        few = len(req.points) <= MONTH_SLICE_MAX_POINTS
        spans = newest_first(spans, FIRST_PART_MS if few else MS_PER_DAY)
    kinds: dict[str, tuple[str, str]] | None = None
    compare_ms = query.compare_ms if parts is not None else 0
    async with _fetched_ahead(ctx, spans, compare_ms) as fetched:
        i = 0
        async for stats in fetched:
            start_ms = spans[i][0]
            i += 1
            if parts is not None:
                if kinds is None and ctx.describe is not None:
                    kinds = await ctx.describe(req.site, req.points, ctx.token)
                part_q, part = await parts.next(ctx.reader, start_ms, token=ctx.token)
                _complete(part.stats)
                body = chart_body(answer_of(part_q, part), req.layout or "series", msgpack=False)
                if kinds is not None:
                    describe_series(body, kinds)
                await ctx.objects.put(part_key(ctx.job.id, i - 1), msgspec.json.encode(body))
            await ctx.step(i, len(spans), stats.fetched_samples)
    # prepared once (access, index rows, plan), as the API does; every part reads through it
    prepared = await ctx.reader.prepare(
        query.site,
        query.points,
        query.start_ms,
        query.end_ms,
        token=ctx.token,
        earlier_ms=query.compare_ms,
    )
    describe, limits = ctx.describe, ctx.gap_limits
    result = await run_chart(
        ctx.reader,
        query,
        token=ctx.token,
        prepared=prepared,
        describe=(lambda site, names: describe(site, names, ctx.token)) if describe else None,
        gap_limits=(
            (lambda site, names, span: limits(site, names, ctx.token, span)) if limits else None
        ),
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
