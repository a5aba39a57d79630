"""The job kinds: ``export`` (a file of samples) and ``query`` (the chart JSON).

Both read through the series reader slice by slice (days, or weeks/months for few
points), reporting progress and honouring cancel after each slice.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec

from tsgate.clock import format_utc
from tsgate.core.extents import month_floor
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE, Series
from tsgate.errors import UpstreamUnavailable
from tsgate.jobs.exports import open_writer
from tsgate.jobs.model import (
    Job,
    JobKind,
    JobRequest,
    JobState,
    slices,
)
from tsgate.jobs.runner import Handler, JobContext, JobResult
from tsgate.series.chart import ChartParts, ChartQuery, answer_of, run_chart
from tsgate.series.index import ChunkRow
from tsgate.series.reader import ReadStats
from tsgate.wire.chart import chart_body, describe_series

SPOOL_BYTES = 16 << 20  # exports up to this size stay in memory
SLICES_AHEAD = 1  # a query job fetches the next slice while it finishes this one
FIRST_PART_MS = 7 * MS_PER_DAY  # a progressive chart's first part: at most its newest week
# ... and about this many samples (5-minute points), so that it is fetched, stored and
# drawn within a second or two however many points the chart has
FIRST_PART_SAMPLES = 20_000
FIRST_PART_MIN_MS = 6 * MS_PER_HOUR


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
    req = ctx.request
    await _expect(ctx, sum(1 for _ in slices(req.start_ms, req.end_ms, points=len(req.points))))
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


def query_slices(req: JobRequest) -> list[tuple[int, int]]:
    """The slices a query job fetches, in order: a progressive one's newest first, the
    first of them its range's last :func:`first_part_ms`; one part of its answer each."""
    spans = list(slices(req.start_ms, req.end_ms, points=len(req.points)))
    if progressive(req):
        spans = newest_first(spans, first_part_ms(len(req.points)))
    return spans


def parts_total(job: Job) -> int:
    """How many parts a progressive query job's answer has (0: it has none)."""
    return len(query_slices(job.request)) if progressive(job.request) else 0


def parts_ready(job: Job) -> int:
    """How many parts of a progressive query job's answer can be read: one per finished
    slice (the progress is the share of its slices done)."""
    total = parts_total(job)
    if job.state is JobState.COMPLETED:
        return total
    return round(job.progress * total / 100.0)


def job_status(job: Job, base_url: str = "") -> dict[str, Any]:
    """A job as the API and the CLI show it; a progressive query job also says how many
    parts its answer has and how many (newest first) can be read already."""
    body = job.to_json(base_url)
    if progressive(job.request):
        done = parts_ready(job)
        body |= {
            "parts": done,  # the count the first clients read
            "partsDone": done,
            "partsTotal": parts_total(job),
            "partsUrl": f"{base_url}/api/jobs/{job.id}/parts",
        }
    return body


def first_part_ms(points: int) -> int:
    """How much of the range's end a progressive chart's first part covers: about
    :data:`FIRST_PART_SAMPLES` samples of ``points`` points, in whole hours, between
    :data:`FIRST_PART_MIN_MS` and :data:`FIRST_PART_MS`."""
    span = FIRST_PART_SAMPLES * 5 * MS_PER_MINUTE // max(points, 1)
    return max(FIRST_PART_MIN_MS, min(FIRST_PART_MS, span // MS_PER_HOUR * MS_PER_HOUR))


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


def _held(rows: list[ChunkRow], start_ms: int, end_ms: int) -> int:
    """The samples ``rows`` hold in ``[start_ms, end_ms)``: a period the span cuts counts
    for the share of its samples' extent inside it."""
    held = 0
    for r in rows:
        if not r.samples or r.first_ms is None or r.last_ms is None:
            continue
        lo, hi = r.first_ms, r.last_ms + 1
        inside = max(0, min(end_ms, hi) - max(start_ms, lo))
        held += r.samples if inside >= hi - lo else round(r.samples * inside / (hi - lo))
    return held


async def _ensure_slice(ctx: JobContext, span: tuple[int, int], compare_ms: int) -> int:
    """Fetch what the cache lacks of ``span`` (and of its comparison's, ``compare_ms``
    earlier) for the job's points; the samples the slice holds (its comparison's too)."""
    req = ctx.request
    stats = ReadStats()
    samples = 0
    offsets = (0, compare_ms) if compare_ms else (0,)
    for offset in offsets:
        start_ms, end_ms = span[0] + offset, span[1] + offset
        rows = await ctx.reader.ensure(
            req.site, req.points, start_ms, end_ms, token=ctx.token, stats=stats
        )
        _complete(stats)
        samples += _held(rows, start_ms, end_ms)
    return samples


async def _expect(ctx: JobContext, slices_total: int, compare_ms: int = 0) -> None:
    """The samples the job's range (and its comparison's) holds, estimated from each
    point's reporting interval (5 minutes when the catalog does not say) before the job
    reads any, and reported at once: ``samplesTotal`` while it runs."""
    req = ctx.request
    profiles = await ctx.reader.profiles(req.site, req.points)
    ranges = 2 if compare_ms else 1
    total = 0
    for name in req.points:
        profile = profiles.get(name)
        cadence_ms = (profile.cadence_ms if profile else None) or 5 * MS_PER_MINUTE
        total += (req.end_ms - req.start_ms) // cadence_ms * ranges
    ctx.samples_total = total
    await ctx.step(0, slices_total, 0)


@contextlib.asynccontextmanager
async def _fetched_ahead(
    ctx: JobContext, spans: list[tuple[int, int]], compare_ms: int
) -> AsyncIterator[AsyncIterator[int]]:
    """Each slice's fetch (the samples it holds), in order, with the next slice's already
    under way: upstream is kept busy while a slice's last reads finish and its part is
    made."""
    pending: deque[asyncio.Task[int]] = deque()
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

    async def each() -> AsyncIterator[int]:
        fill()
        while pending:
            samples = await pending[0]
            pending.popleft()
            done = running.popleft()
            fill(reading=done)
            yield samples
            fill()

    try:
        fill()  # the first slice is under way before anything else the job does
        yield each()
    finally:
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


@contextlib.asynccontextmanager
async def _described(
    ctx: JobContext, wanted: bool
) -> AsyncIterator[Callable[[], Awaitable[dict[str, tuple[str, str]] | None]]]:
    """Each point's ``(kind, mode)`` (``None`` without a catalog), asked of the catalog
    as the job starts (``wanted``: its parts carry them), while the first slice is
    fetched, not after it."""
    describe = ctx.describe
    task: asyncio.Task[dict[str, tuple[str, str]]] | None = None
    if wanted and describe is not None:
        req = ctx.request
        task = asyncio.ensure_future(describe(req.site, req.points, ctx.token))

    async def kinds() -> dict[str, tuple[str, str]] | None:
        return None if task is None else await task

    try:
        yield kinds
    finally:
        if task is not None and not task.done():
            task.cancel()
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task  # a failure not awaited above is the job's failure elsewhere


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
    spans = query_slices(req)
    parts = ChartParts.plan(query, ctx.reader.clock_ms())  # None: not progressive
    compare_ms = query.compare_ms if parts is not None else 0
    async with (
        _described(ctx, parts is not None) as kinds_of,
        _fetched_ahead(ctx, spans, compare_ms) as fetched,
    ):
        await _expect(ctx, len(spans), query.compare_ms)
        i = 0
        async for done in fetched:
            start_ms = spans[i][0]
            i += 1
            samples = done
            if parts is not None:
                kinds = await kinds_of()
                part_q, part = await parts.next(ctx.reader, start_ms, token=ctx.token)
                _complete(part.stats)
                body = chart_body(answer_of(part_q, part), req.layout or "series", msgpack=False)
                if kinds is not None:
                    describe_series(body, kinds)
                await ctx.objects.put(part_key(ctx.job.id, i - 1), msgspec.json.encode(body))
                samples = part.total_samples + part.compared_samples  # exactly the part's
            await ctx.step(i, len(spans), samples)
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
    return JobResult(key, len(data), result.total_samples + result.compared_samples)


def default_handlers() -> dict[str, Handler]:
    """The registry the runner uses; replace ``"query"`` to plug in another computation."""
    return {"export": run_export, "query": run_query}
