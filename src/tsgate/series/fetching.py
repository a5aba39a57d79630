"""How to fetch a plan from upstream: batched per-point reads written month by month as
they arrive, or the site's paginated stream.

**The request plan, by cost.** One upstream request is modelled as costing a fixed part
(its latency) plus a part per sample it carries (upstream's transfer); both are
measured (``upstream.costs``) and the policy's figures stand in until they are.
Requests run ``upstream_concurrency`` at a time, so a plan of ``R`` requests of at most
``m`` samples takes about ``ceil(R / concurrency) × (latency + m × per-sample)``. The
plan is cut into UTC months (the unit that is written, see below); within a month the
points that miss the same spans are read together: ``k`` points per request (one POST
of a batch of points), or one point's span in ``j`` windows, whichever shape the model
says is quickest, with no request asked to carry more than ``max_request_samples``.

A batch does not tell a point upstream does not know from one without samples; a
point a batch returned nothing for is read on its own (its 404 is the caller's error).

**The pipeline.** Months are fetched in time order, a few ahead of the one being
written: each month is written (``ChunkStore.write``: the same chunks, rollups and
re-check schedule as a write of the whole plan, since no stored period spans two
months) as soon as all its requests have arrived, while the next months' requests are
in flight. Memory holds the months in flight, not the whole range. When a request
fails, the months already complete are still written, the rest is not (nothing of a
month that is not whole is claimed), and the error is raised: the next read fetches
only what is still missing. A ``gate`` (the caller's access check, run alongside the
first requests) must pass before anything is written; when it refuses, the fetches
stop and nothing fetched is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from tsgate.core import extents
from tsgate.core.model import Series, concat
from tsgate.series.chunkstore import Fetched
from tsgate.series.planning import SAMPLE_MS, CachePolicy, Range
from tsgate.series.streamfill import SLOT_MS
from tsgate.upstream.base import Upstream


class PageSink(Protocol):
    """Told of a site stream as it arrives, then of the reads of the points it left out."""

    def feed(self, span: Range, batch: dict[str, Series] | None) -> None:
        """One page of the stream over ``span`` (per point), in stream order; then the
        span's end (``None``: every page of it has arrived)."""

    def read_alone(self, fetched: Sequence[Fetched]) -> None:
        """Per-point reads of planned points the stream did not carry, as they arrive
        (before they are stored), once the stream has ended."""

    async def quiet(self) -> None:
        """Until the pages shown so far have been answered (the stream's points are
        stored then, their CPU work not slowing those pages)."""

    def failed(self, error: Exception) -> None:
        """The fetch failed with ``error``, told at once (what the stream carried may
        still be being written): the pages waiting for the rest get the error."""


# writes one batch of fetched months into the store
MonthWriter = Callable[[list[Fetched]], Awaitable[None]]

MAX_BATCH_POINTS = 100  # points one POST asks for, at most
MAX_WINDOWS = 16  # a point's month is cut into at most this many windows
POLITE_SLACK = 0.25  # fewer requests are worth at most this much more time (see polite)
_WRITE_AHEAD = 2  # months fully fetched beyond those being fetched, waiting to be written


@dataclass(frozen=True, slots=True)
class RequestCost:
    """What one upstream request takes: ``latency_s`` plus ``sample_s`` per sample."""

    latency_s: float
    sample_s: float

    def of(self, samples: int) -> float:
        return self.latency_s + samples * self.sample_s


@dataclass(frozen=True, slots=True)
class Request:
    """One upstream read: the named points over ``span`` (one point: its window; more:
    one batch)."""

    names: tuple[str, ...]
    span: Range
    samples: int  # about how many samples it carries


@dataclass(frozen=True, slots=True)
class Shape:
    points: int  # per request
    windows: int  # per point-month span


def months(plan: dict[str, list[Range]]) -> list[dict[str, list[Range]]]:
    """``plan`` cut at UTC month boundaries, one plan per month, in time order."""
    out: dict[int, dict[str, list[Range]]] = defaultdict(lambda: defaultdict(list))
    for name, spans in plan.items():
        for s, e in spans:
            cursor = s
            while cursor < e:
                month = extents.month_floor(cursor)
                stop = min(e, extents.next_month(cursor))
                out[month][name].append((cursor, stop))
                cursor = stop
    return [dict(out[m]) for m in sorted(out)]


def _groups(month: dict[str, list[Range]]) -> list[tuple[Range, list[str]]]:
    """Each span of the month with the points that miss exactly it."""
    by: dict[Range, list[str]] = defaultdict(list)
    for name, spans in month.items():
        for span in spans:
            by[span].append(name)
    return sorted(by.items())


def _samples(span: Range, cadence_ms: int) -> int:
    return max(1, (span[1] - span[0]) // max(1, cadence_ms))


def _cadence(names: Sequence[str], cadences: dict[str, int]) -> int:
    return min((cadences.get(n, SAMPLE_MS) for n in names), default=SAMPLE_MS)


def _requests(
    month: dict[str, list[Range]], shape: Shape, cadences: dict[str, int], max_window_ms: int
) -> list[Request]:
    out: list[Request] = []
    for span, names in _groups(month):
        width = span[1] - span[0]
        cuts = _cuts(width, shape.windows, max_window_ms)
        edges = [span[0] + width * i // cuts for i in range(cuts + 1)]
        for lo in range(0, len(names), shape.points):
            batch = tuple(names[lo : lo + shape.points])
            cadence = _cadence(batch, cadences)
            for s, e in itertools.pairwise(edges):
                out.append(Request(batch, (s, e), len(batch) * _samples((s, e), cadence)))
    return out


def plan_time_s(requests: Sequence[Request], cost: RequestCost, concurrency: int) -> float:
    """The model's time for ``requests`` run ``concurrency`` at a time."""
    if not requests:
        return 0.0
    rounds = math.ceil(len(requests) / max(1, concurrency))
    return rounds * cost.of(max(r.samples for r in requests))


def request_plan(
    plan: dict[str, list[Range]],
    policy: CachePolicy,
    cost: RequestCost,
    cadences: dict[str, int] | None = None,
    *,
    fewest: bool = False,
) -> list[list[Request]]:
    """Per UTC month of ``plan`` (in time order), the upstream requests that fetch it,
    shaped by the cost model (see the module's notes): the quickest shape, or a
    :func:`polite` one of fewer requests (upstream's load counts too). ``fewest``:
    background work, the fewest requests."""
    cadences = cadences or {}
    by_month = months(plan)
    if not by_month:
        return []
    # per month group: (points, samples of one point over its span, its width)
    groups = [
        (len(names), _samples(span, _cadence(names, cadences)), span[1] - span[0])
        for m in by_month
        for span, names in _groups(m)
    ]
    widest = max(n for n, _, _ in groups)
    carried = sum(n * samples for n, samples, _ in groups)  # the same in every shape
    options: list[tuple[float, int, Shape]] = []
    for points in range(1, min(widest, MAX_BATCH_POINTS) + 1):
        for windows in range(1, MAX_WINDOWS + 1 if points == 1 else 2):
            shape = Shape(points, windows)  # batches read whole spans; single points are cut
            count, biggest = _measure(groups, shape, policy.point_window_ms)
            if biggest > policy.max_request_samples:
                continue
            rounds = math.ceil(count / max(1, policy.upstream_concurrency))
            options.append((rounds * cost.of(biggest), count, shape))
    if not options:  # nothing fits the cap: one point at a time, as finely as allowed
        chosen = Shape(1, MAX_WINDOWS)
    elif fewest:
        chosen = min(options, key=lambda o: (o[1], o[0]))[2]
    else:
        timed = [(t, _busy(count, carried, cost), shape) for t, count, shape in options]
        chosen = polite(timed)
    return [_requests(m, chosen, cadences, policy.point_window_ms) for m in by_month]


def _busy(requests: int, samples: int, cost: RequestCost) -> float:
    """What ``requests`` carrying ``samples`` in all cost upstream, one after another."""
    return requests * cost.latency_s + samples * cost.sample_s


Choice = TypeVar("Choice")


def polite(options: Sequence[tuple[float, float, Choice]]) -> Choice:
    """Of ``(wall time, upstream's busy time, choice)`` options, the quickest, or one
    that spares upstream more work for a little more time: from the quickest, each
    step to an option of less work is taken when it costs at most :data:`POLITE_SLACK`
    more time than the quickest, and no larger a share of the time than the share of
    upstream's work it saves. Latency-bound, half the requests is half upstream's work
    and worth a little time; transfer-bound, fewer requests carry the same samples and
    save upstream little, so the quickest plan (or one about as quick) stays."""
    wall, busy, choice = min(options, key=lambda o: (o[0], o[1]))
    limit = wall * (1 + POLITE_SLACK)
    for o_wall, o_busy, o_choice in sorted(options, key=lambda o: (-o[1], o[0])):
        if o_busy >= busy or o_wall > limit:
            continue
        if (o_wall - wall) * busy <= (busy - o_busy) * wall:
            wall, busy, choice = o_wall, o_busy, o_choice
    return choice


def _cuts(width_ms: int, windows: int, max_window_ms: int) -> int:
    cuts = min(windows, max(1, width_ms // 60_000))
    return max(cuts, -(-width_ms // max(1, max_window_ms)))


def _measure(
    groups: Sequence[tuple[int, int, int]], shape: Shape, max_window_ms: int
) -> tuple[int, int]:
    """How many requests ``shape`` makes of ``groups``, and the most samples one carries."""
    count = biggest = 0
    for points, samples, width in groups:
        cuts = _cuts(width, shape.windows, max_window_ms)
        count += -(-points // shape.points) * cuts
        biggest = max(biggest, min(points, shape.points) * -(-samples // cuts))
    return count, biggest


def _site_samples(site_points: int, width_ms: int) -> int:
    """About how many samples the site's stream carries over ``width_ms``."""
    return site_points * (width_ms // SAMPLE_MS + 1)


def site_stream_pays(
    plan: dict[str, list[Range]],
    site_points: int,
    policy: CachePolicy,
    cost: RequestCost | None = None,
) -> bool:
    """Whether the site's paginated stream beats per-point reads for this plan.

    The stream carries every point of the site, one page after another; per-point reads
    carry only the asked points, ``concurrency`` at a time. The site's size comes from
    the cached catalog; unknown (0) means per-point reads. Without a ``cost`` (a stream
    whose pages are shown as they arrive) rounds of month windows are counted against
    pages; with one, both sides are timed by the cost model: a span's stream is read as
    up to ``upstream_concurrency`` parts side by side (:func:`stream_parts`), each part's
    pages one after another, so it pays only when upstream is latency-bound and the site
    small.
    """
    if not site_points or len(plan) < policy.site_stream_min_points:
        return False
    spans = extents.merge([r for spans in plan.values() for r in spans])
    if cost is None:
        span_ms = sum(e - s for s, e in spans)
        site_pages = -(-_site_samples(site_points, span_ms) // policy.site_page_size)
        windows = sum(
            len(spans) + sum((e - s) // policy.point_window_ms for s, e in spans)
            for spans in plan.values()
        )
        rounds = -(-windows // max(1, policy.upstream_concurrency))
        return site_pages < rounds
    stream_s = sum(
        _parts_time(
            stream_parts(
                span, site_points, policy.site_page_size, policy.upstream_concurrency, cost
            ),
            site_points,
            policy.site_page_size,
            cost,
        )
        for span in spans  # per span, its parts' streams side by side, a page at a time each
    )
    requests = [r for m in request_plan(plan, policy, cost) for r in m]
    # a tie goes to the stream: it also stores the site's other points
    return stream_s <= plan_time_s(requests, cost, policy.upstream_concurrency)


async def _read(upstream: Upstream, request: Request, token: str) -> list[Fetched]:
    s, e = request.span
    found = await upstream.points_request(request.names, s, e, token=token)
    return [
        Fetched(n, request.span, found.get(n, Series.empty(n)).crop(s, e)) for n in request.names
    ]


async def pipelined(
    upstream: Upstream,
    by_month: Sequence[Sequence[Request]],
    *,
    token: str,
    concurrency: int,
    write: MonthWriter,
    gate: Awaitable[None] | None = None,
) -> None:
    """Fetch ``by_month`` (months in time order) and hand each month, once all its
    requests have arrived, to ``write`` (months that complete together in one call)."""
    run = _Pipeline(upstream, token, concurrency, by_month)
    fetcher = asyncio.ensure_future(run.fetch_all(by_month))
    writer = asyncio.ensure_future(run.write_all(write, gate))
    try:
        await asyncio.wait({fetcher, writer}, return_when=asyncio.FIRST_EXCEPTION)
        if writer.done() and writer.exception() is not None:
            await ended(fetcher)  # refused (or the store failed): nothing more is fetched
        # the writer stores the months the fetcher queued, then the fetcher's error
        await writer
        await fetcher
    finally:
        await ended(fetcher)
        await ended(writer)


async def ended(task: asyncio.Future[None], *, cancel: bool = True) -> None:
    """``task`` over (cancelled first when ``cancel``), whatever its outcome."""
    if cancel and not task.done():
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


class _Pipeline:
    def __init__(
        self,
        upstream: Upstream,
        token: str,
        concurrency: int,
        by_month: Sequence[Sequence[Request]],
    ) -> None:
        self.upstream = upstream
        self.token = token
        self.slots = asyncio.Semaphore(max(1, concurrency))
        # months started but not yet written: enough to keep every slot busy, and a few more
        per_month = max((len(m) for m in by_month), default=1)
        self.ahead = asyncio.Semaphore(-(-max(1, concurrency) // max(1, per_month)) + _WRITE_AHEAD)
        self.ready: asyncio.Queue[list[Fetched] | None] = asyncio.Queue()
        self.failures: list[BaseException] = []

    async def one(self, request: Request) -> list[Fetched]:
        async with self.slots:
            got = await _read(self.upstream, request, self.token)
        if len(request.names) == 1:
            return got
        # a batch says nothing of a point upstream does not know (a point's own read is a
        # 404): what it returned nothing for is read on its own
        empty = [f for f in got if not len(f.series)]
        if not empty:
            return got
        alone = await asyncio.gather(*(self.one(Request((f.point,), f.span, 0)) for f in empty))
        return [f for f in got if len(f.series)] + [f for part in alone for f in part]

    async def month(self, requests: Sequence[Request]) -> None:
        tasks = [asyncio.ensure_future(self.one(r)) for r in requests]
        try:
            parts = await asyncio.gather(*tasks)
        except BaseException as exc:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if not isinstance(exc, asyncio.CancelledError):
                self.failures.append(exc)
            self.ahead.release()  # the months loop sees the failure and starts no more
            raise
        self.ready.put_nowait([f for part in parts for f in part])

    async def fetch_all(self, by_month: Sequence[Sequence[Request]]) -> None:
        tasks: list[asyncio.Task[None]] = []
        try:
            for requests in by_month:
                await self.ahead.acquire()
                if self.failures:
                    break
                tasks.append(asyncio.ensure_future(self.month(requests)))
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.ready.put_nowait(None)  # every month fetched is queued before this
        if self.failures:
            raise self.failures[0]

    async def write_all(self, write: MonthWriter, gate: Awaitable[None] | None) -> None:
        if gate is not None:
            await gate  # nothing is stored for a caller who may not read the site
        done = False
        while not done:
            batch = [await self.ready.get()]
            while not self.ready.empty():
                batch.append(self.ready.get_nowait())
            done = batch[-1] is None
            months = [m for m in batch if m is not None]
            fetched = [f for m in months for f in m]
            if fetched:
                await write(fetched)
            for _ in months:
                self.ahead.release()


def stream_parts(
    span: Range,
    site_points: int,
    page_size: int,
    concurrency: int,
    cost: RequestCost | None = None,
) -> list[Range]:
    """``span`` cut into the streams read side by side, cut on sweep slots (each stream's
    rows stay in sweep order, and the streams one after another are the whole span's).
    Unknown size: one stream.

    Without a ``cost``, as many streams as the pages the span needs, at most
    ``concurrency`` (upstream latency-bound: each page is one round trip). With one, the
    count the cost model finds quickest (or a :func:`polite` one, of fewer requests):
    where upstream's time goes into carrying samples, a span of one page is quicker as
    several smaller pages side by side. The first stream is one upstream page, and no
    more than an even share of the span: the first pages a paged read shows come with
    its first answer."""
    s, e = span
    samples = _site_samples(site_points, e - s)
    pages = -(-samples // page_size) if site_points else 1
    count = max(1, min(concurrency, pages))
    if cost is not None and site_points:
        slots = -(-(e - s) // SLOT_MS)
        most = max(1, min(concurrency, slots))
        count = polite(
            [
                (
                    _share_time(samples, n, page_size, cost),
                    _stream_busy(samples, n, page_size, cost),
                    n,
                )
                for n in range(1, most + 1)
            ]
        )
    if count == 1:
        return [span]
    share = _shares(samples, count, page_size)[0]
    first = extents.floor_to(s + max(1, share // site_points - 1) * SLOT_MS, SLOT_MS)
    rest = first if s < first < e else s
    others = count - 1
    cuts = {(rest + (e - rest) * i // others) // SLOT_MS * SLOT_MS for i in range(1, others)}
    bounds = [s, *sorted(c for c in {*cuts, rest} if s < c < e), e]
    return list(itertools.pairwise(bounds))


def _shares(samples: int, parts: int, page_size: int) -> tuple[int, int]:
    """The samples of the first stream and of each other one, as :func:`stream_parts`
    cuts ``samples`` into ``parts``: the first one page (at most an even share), the
    rest shared evenly by the others (``(samples, 0)``: one stream)."""
    first = min(page_size, -(-samples // parts))
    if parts == 1 or samples <= first:
        return samples, 0
    return first, -(-(samples - first) // (parts - 1))


def _pages(samples: int, page_size: int) -> int:
    return -(-samples // page_size)


def _stream_s(samples: int, page_size: int, cost: RequestCost) -> float:
    """The model's time for one stream of ``samples``: its pages one after another."""
    return _pages(samples, page_size) * cost.of(min(samples, page_size))


def _share_time(samples: int, parts: int, page_size: int, cost: RequestCost) -> float:
    """The model's time for ``samples`` of the stream read as ``parts`` streams
    side by side (:func:`_shares`): the slowest one's."""
    first, share = _shares(samples, parts, page_size)
    return max(_stream_s(first, page_size, cost), _stream_s(share, page_size, cost))


def _stream_busy(samples: int, parts: int, page_size: int, cost: RequestCost) -> float:
    """Upstream's busy time for ``samples`` of the stream as ``parts`` streams: each
    page one request."""
    first, share = _shares(samples, parts, page_size)
    requests = _pages(first, page_size) + (parts - 1) * _pages(share, page_size)
    return _busy(requests, samples, cost)


def _parts_time(
    parts: Sequence[Range], site_points: int, page_size: int, cost: RequestCost
) -> float:
    """The model's time for the streams over ``parts`` side by side: the slowest one's."""
    return max(
        (_stream_s(_site_samples(site_points, e - s), page_size, cost) for s, e in parts),
        default=0.0,
    )


async def site_stream(
    upstream: Upstream,
    site: str,
    plan: dict[str, list[Range]],
    *,
    token: str,
    page_size: int,
    on_page: PageSink | None = None,
    site_points: int = 0,
    concurrency: int = 1,
    cost: RequestCost | None = None,
) -> tuple[list[Fetched], dict[str, list[Range]]]:
    """The site's pages per missing span (each page shown to ``on_page``, in the order of
    the one stream over the span).

    A span whose stream runs to several pages (or, by ``cost``, carries enough samples)
    is read as up to ``concurrency`` streams side by side, each over a part of it cut on
    sweep slots (:func:`stream_parts`): the
    pages of one stream come one after another, each waiting for the one before. Pages
    are shown in the order of the parts, a part's pages held until the parts before it
    have all been shown, so what ``on_page`` sees is one stream over the span; a part's
    page is cut to its part, so a sample at a cut is shown once.

    Every point the stream carries is stored for that span. A planned point the stream
    did not carry is not known to be empty (the stream leaves out points that are not
    collecting, whose history per-point reads still serve): it is returned in the second
    value, to be read per point.
    """
    spans = extents.merge([span for spans in plan.values() for span in spans])
    out: list[Fetched] = []
    left: dict[str, list[Range]] = defaultdict(list)
    for span in spans:
        parts: dict[str, list[Series]] = defaultdict(list)

        def show(
            page: dict[str, Series],
            span: Range = span,
            parts: dict[str, list[Series]] = parts,
        ) -> None:
            if on_page is not None:
                on_page.feed(span, page)
            for name, series in page.items():
                if len(series):
                    parts[name].append(series)

        cut = stream_parts(span, site_points, page_size, concurrency, cost)
        await _read_parts(upstream, site, cut, token=token, page_size=page_size, show=show)
        if on_page is not None:
            on_page.feed(span, None)
        out.extend(Fetched(n, span, concat(n, p).crop(*span)) for n, p in parts.items())
        for name, wanted in plan.items():
            if name not in parts:
                left[name].extend(_clip(wanted, span))
    return out, {n: extents.merge(s) for n, s in left.items() if s}


async def _read_parts(
    upstream: Upstream,
    site: str,
    cut: Sequence[Range],
    *,
    token: str,
    page_size: int,
    show: Callable[[dict[str, Series]], None],
) -> None:
    """The streams over the parts ``cut`` side by side, their pages shown in part order
    (each part but the last cut to itself). A stream that fails fails the read with its
    own error at once (the pages before it in part order shown first); the others are
    then cancelled, so a failing upstream is not asked on by streams whose read failed."""
    Item = dict[str, Series] | Exception | None
    queues: list[asyncio.Queue[Item]] = [asyncio.Queue() for _ in cut]

    async def read(part: Range, into: asyncio.Queue[Item]) -> None:
        last = part[1] == cut[-1][1]
        try:
            pages = upstream.site_pages(
                site, part[0], part[1], token=token, raw=True, page_size=page_size
            )
            async for page in pages:
                into.put_nowait(page if last else {n: s.crop(*part) for n, s in page.items()})
        except Exception as exc:  # the read fails whole: at once, whichever part it waits on
            for each in queues:
                each.put_nowait(exc)
        else:
            into.put_nowait(None)

    readers = [asyncio.create_task(read(p, q)) for p, q in zip(cut, queues, strict=True)]
    try:
        for into in queues:
            while (item := await into.get()) is not None:
                if isinstance(item, Exception):
                    raise item
                show(item)
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)


def _clip(spans: Sequence[Range], span: Range) -> list[Range]:
    return [(max(s, span[0]), min(e, span[1])) for s, e in spans if s < span[1] and e > span[0]]
