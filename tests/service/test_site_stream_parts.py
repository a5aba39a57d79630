"""A long span of the site stream is read as several streams side by side: its pages are
shown once each, in the one stream's order, and what is stored is upstream's truth."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence

import httpx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.asgi import FAST_POLICY
from tests.clock import NOW, Clock
from tsgate.core.model import MS_PER_HOUR, MS_PER_MINUTE, Series
from tsgate.errors import UpstreamUnavailable
from tsgate.series import fetching
from tsgate.series.chunkstore import Fetched
from tsgate.series.index import Range
from tsgate.series.streamfill import SLOT_MS
from tsgate.upstream.ace import AceClient
from tsgate.upstream.simulator import create_simulator

pytestmark = pytest.mark.anyio

SITE = "elm_school"


@settings(max_examples=300, deadline=None)
@given(
    start=st.integers(0, 10**12),
    width=st.integers(1, 40 * 24 * MS_PER_HOUR),
    points=st.integers(0, 5000),
    page=st.integers(1, 100_000),
    concurrency=st.integers(1, 16),
    cost=st.none() | st.builds(fetching.RequestCost, st.floats(0, 2), st.floats(0, 1e-3)),
)
def test_parts_cover_the_span_once_cut_on_sweep_slots(
    start: int,
    width: int,
    points: int,
    page: int,
    concurrency: int,
    cost: fetching.RequestCost | None,
) -> None:
    span = (start, start + width)
    parts = fetching.stream_parts(span, points, page, concurrency, cost)
    assert parts[0][0] == span[0] and parts[-1][1] == span[1]
    assert all(a < b for a, b in parts)
    assert all(parts[i][1] == parts[i + 1][0] for i in range(len(parts) - 1))
    assert all(b % SLOT_MS == 0 for _, b in parts[:-1])  # every cut on a sweep slot
    assert 1 <= len(parts) <= concurrency
    if points == 0:
        assert parts == [span]  # a site of unknown size: one stream
    if len(parts) > 1 and page >= 2 * points:  # the first part: one upstream page
        assert fetching._site_samples(points, parts[0][1] - parts[0][0]) <= page


def test_a_transfer_bound_upstream_reads_even_one_page_as_parts_side_by_side() -> None:
    hour = (NOW // MS_PER_HOUR * MS_PER_HOUR, NOW // MS_PER_HOUR * MS_PER_HOUR + MS_PER_HOUR)
    points, page = 2_000, 50_000  # 26,000 samples: one upstream page
    latency_bound = fetching.RequestCost(0.2, 0.0)
    transfer_bound = fetching.RequestCost(0.2, 100e-6)  # the real API: ~100 µs a sample
    assert fetching.stream_parts(hour, points, page, 8) == [hour]
    assert fetching.stream_parts(hour, points, page, 8, latency_bound) == [hour]
    parts = fetching.stream_parts(hour, points, page, 8, transfer_bound)
    # the quickest: 8 parts (6 would be a fifth slower and spare upstream a tenth)
    assert len(parts) == 8
    sizes = [fetching._site_samples(points, e - s) for s, e in parts]
    # no part carries much more than an even share: the slowest sets the read's time
    assert max(sizes) <= 2 * fetching._site_samples(points, MS_PER_HOUR) / len(parts)
    # a day is 12 pages: latency-bound, 7 streams of 2 pages are as quick as 8 streams,
    # with fewer requests (6 would leave the others 3 pages each)
    day = (hour[0], hour[0] + 24 * MS_PER_HOUR)
    assert len(fetching.stream_parts(day, points, page, 8)) == 8  # without a cost: per page
    assert len(fetching.stream_parts(day, points, page, 8, latency_bound)) == 7


async def _stream(
    upstream: AceClient,
    plan: dict[str, list[Range]],
    points: int,
    concurrency: int,
    cost: fetching.RequestCost | None = None,
) -> tuple[dict[str, Series], dict[str, list[int]], list[str]]:
    shown: dict[str, list[int]] = defaultdict(list)
    marks: list[str] = []

    class Shown:
        def feed(self, span: Range, page: dict[str, Series] | None) -> None:
            marks.append("end" if page is None else "page")
            for name, s in (page or {}).items():
                shown[name].extend(s.t_ms.tolist())

        def read_alone(self, fetched: Sequence[Fetched]) -> None:
            raise AssertionError("the stream alone tells of no per-point read")

        async def quiet(self) -> None:
            raise AssertionError("the stream alone stores nothing")

        def failed(self, error: Exception) -> None:
            raise AssertionError("the stream alone tells of no failed fetch")

    fetched, _left = await fetching.site_stream(
        upstream,
        SITE,
        plan,
        token="t",
        page_size=500,
        on_page=Shown(),
        site_points=points,
        concurrency=concurrency,
        cost=cost,
    )
    return {f.point: f.series for f in fetched}, shown, marks


class Overreaching(AceClient):
    """Upstream whose stream answers a little past the end asked (a sweep slot more)."""

    async def site_pages(  # type: ignore[override]
        self, site: str, start_ms: int, end_ms: int, **kw: object
    ) -> AsyncIterator[dict[str, Series]]:
        async for page in super().site_pages(site, start_ms, end_ms + SLOT_MS, **kw):  # type: ignore[arg-type]
            yield page


@settings(max_examples=12, deadline=None)
@given(
    offset=st.integers(0, 20 * 24 * MS_PER_HOUR),
    width=st.integers(10 * MS_PER_MINUTE, 30 * MS_PER_HOUR),
    concurrency=st.integers(2, 8),
    overreaching=st.booleans(),
    transfer_bound=st.booleans(),  # parts counted by a cost model of 100 µs a sample
)
async def test_streams_side_by_side_show_and_store_what_one_stream_does(
    offset: int, width: int, concurrency: int, overreaching: bool, transfer_bound: bool
) -> None:
    sim = create_simulator(seed=1, now_ms=Clock(NOW))
    site = next(s for s in sim.sites if s.name == SITE)
    names = [p.name for p in site.collecting]
    start = NOW - 25 * 24 * MS_PER_HOUR + offset
    plan = {n: [(start, start + width)] for n in names}
    kind = Overreaching if overreaching else AceClient
    upstream = kind("http://simulator/api", FAST_POLICY, transport=httpx.ASGITransport(app=sim))
    try:
        one, shown_one, _ = await _stream(upstream, plan, 0, 1)
        cost = fetching.RequestCost(0.2, 100e-6) if transfer_bound else None
        many, shown_many, marks_many = await _stream(upstream, plan, len(names), concurrency, cost)
    finally:
        await upstream.aclose()
    assert marks_many[-1] == "end" and marks_many.count("end") == 1
    assert one.keys() == many.keys() and shown_one.keys() == shown_many.keys()
    for name in names:
        t_us, v = sim.truth(name, start, start + width)
        got = many.get(name, Series.empty(name))
        assert got.t_ms.tolist() == (t_us // 1000).tolist()  # the independent truth
        assert np.array_equal(got.v, v)
        assert got.t_ms.tolist() == one.get(name, Series.empty(name)).t_ms.tolist()
    for name, times in shown_many.items():
        # each sample shown once, in time order: a sample at a cut is not shown twice
        assert times == sorted(set(times)) == sorted(set(shown_one[name]))


class FailingPart(AceClient):
    """Upstream whose stream over any part but the first fails after one page."""

    first_start: int = 0

    async def site_pages(  # type: ignore[override]
        self, site: str, start_ms: int, end_ms: int, **kw: object
    ) -> AsyncIterator[dict[str, Series]]:
        async for page in super().site_pages(site, start_ms, end_ms, **kw):  # type: ignore[arg-type]
            yield page
            if start_ms != self.first_start:
                raise UpstreamUnavailable("upstream answered HTTP 503")


async def test_a_part_that_fails_fails_the_read_with_its_own_error_and_stops_the_rest() -> None:
    sim = create_simulator(seed=1, now_ms=Clock(NOW))
    site = next(s for s in sim.sites if s.name == SITE)
    names = [p.name for p in site.collecting]
    start = NOW - 10 * 24 * MS_PER_HOUR
    plan = {n: [(start, start + 24 * MS_PER_HOUR)] for n in names}
    upstream = FailingPart(
        "http://simulator/api", FAST_POLICY, transport=httpx.ASGITransport(app=sim)
    )
    upstream.first_start = start
    before = asyncio.all_tasks()
    try:
        with pytest.raises(UpstreamUnavailable, match="503"):
            await _stream(upstream, plan, len(names), 4)
    finally:
        await upstream.aclose()
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == before  # no stream left running


class Slow(AceClient):
    """Upstream whose every stream page takes a while, counting the streams still open."""

    open_streams = 0

    async def site_pages(  # type: ignore[override]
        self, site: str, start_ms: int, end_ms: int, **kw: object
    ) -> AsyncIterator[dict[str, Series]]:
        Slow.open_streams += 1
        try:
            async for page in super().site_pages(site, start_ms, end_ms, **kw):  # type: ignore[arg-type]
                await asyncio.sleep(0.05)
                yield page
        finally:
            Slow.open_streams -= 1


async def test_a_caller_that_leaves_mid_read_leaves_no_stream_running() -> None:
    sim = create_simulator(seed=1, now_ms=Clock(NOW))
    site = next(s for s in sim.sites if s.name == SITE)
    names = [p.name for p in site.collecting]
    start = NOW - 10 * 24 * MS_PER_HOUR
    plan = {n: [(start, start + 24 * MS_PER_HOUR)] for n in names}
    upstream = Slow("http://simulator/api", FAST_POLICY, transport=httpx.ASGITransport(app=sim))
    before = asyncio.all_tasks()
    try:
        reading = asyncio.ensure_future(_stream(upstream, plan, len(names), 4))
        while Slow.open_streams < 4:  # noqa: ASYNC110 (every part's stream has begun)
            await asyncio.sleep(0.01)
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
    finally:
        await upstream.aclose()
    await asyncio.sleep(0)
    assert Slow.open_streams == 0
    assert asyncio.all_tasks() == before
