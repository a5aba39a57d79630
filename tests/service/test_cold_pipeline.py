"""The cold read's pipeline: months written as they arrive, failures halfway, the access
check beside the first requests, and the request plan by cost.

Everything is compared with the simulator's own model (``Simulator.truth``), through the
real ACE client, SQLite and a local folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.asgi import FAST_POLICY, sim_client
from tests.clock import NOW, Clock
from tsgate.core import extents
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE
from tsgate.errors import Forbidden, NotFound, UpstreamError
from tsgate.series import fetching
from tsgate.series.index import ChunkRow
from tsgate.series.planning import CachePolicy, plan_fetches
from tsgate.series.reader import ReadStats
from tsgate.settings import Settings
from tsgate.upstream.ace import AceClient, ClientPolicy
from tsgate.upstream.breaker import CircuitBreaker
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.wiring import OpenedServices, open_services

pytestmark = pytest.mark.anyio

SITE = "elm_school"


@dataclass
class Env:
    sim: Simulator
    services: OpenedServices
    clock: Clock

    def names(self, n: int) -> list[str]:
        return [p.name for p in self.sim.sites[2].collecting[:n]]

    def truth(self, name: str, start: int, end: int) -> tuple[list[int], list[float]]:
        t_us, v = self.sim.truth(name, start, end)
        return (t_us // 1000).tolist(), v.tolist()

    async def rows(self, names: Sequence[str], start: int, end: int) -> list[ChunkRow]:
        return await self.services.reader.store.rows(SITE, names, start, end)

    async def assert_rows_hold_the_truth(self, rows: Sequence[ChunkRow]) -> None:
        """Every stored period holds exactly upstream's samples over what it claims."""
        store = self.services.reader.store
        for row in rows:
            loaded = await store.load(
                SITE, [row.point], [row], row.period_start_ms, row.period_end_ms
            )
            assert not loaded.damaged
            got = loaded.series[row.point]
            for s, e in row.coverage:
                part = got.crop(s, e)
                assert (part.t_ms.tolist(), part.v.tolist()) == self.truth(row.point, s, e)


def _settings(root: Path, **kw: object) -> Settings:
    return Settings(
        database_url=f"sqlite:///{root}/tsgate.db",
        objects_url=f"file://{root}/objects",
        maintenance_interval_s=0,
        recheck_interval_s=0,
        upstream_measure_costs=False,
        **kw,  # type: ignore[arg-type]
    )


@contextlib.asynccontextmanager
async def opened(
    root: Path, upstream: AceClient, sim: Simulator, clock: Clock
) -> AsyncIterator[Env]:
    async with open_services(_settings(root), upstream=upstream, clock_ms=clock) as services:
        yield Env(sim, services, clock)


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    clock = Clock(NOW)
    sim = create_simulator(seed=1, now_ms=clock)
    async with opened(tmp_path, sim_client(sim, breaker=CircuitBreaker(0)), sim, clock) as e:
        yield e


# ---- failures halfway -------------------------------------------------------------------


@pytest.mark.slow
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target],
)
@given(
    back_d=st.integers(1, 200),  # the window starts this many days before "now"
    length_h=st.integers(1, 150 * 24),
    minute=st.integers(0, 59),
    points=st.integers(1, 6),
    fail_after=st.one_of(st.none(), st.integers(0, 14)),  # requests answered before a 500
    request_samples=st.sampled_from([600, 5_000, 100_000]),  # shapes the requests
    first=st.one_of(st.none(), st.tuples(st.integers(0, 200), st.integers(1, 40))),
)
async def test_a_read_failing_anywhere_stores_only_the_truth_and_the_next_fetches_the_rest(
    tmp_path_factory: pytest.TempPathFactory,
    back_d: int,
    length_h: int,
    minute: int,
    points: int,
    fail_after: int | None,
    request_samples: int,
    first: tuple[int, int] | None,
) -> None:
    root = tmp_path_factory.mktemp("cold")
    clock = Clock(NOW)
    sim = create_simulator(seed=1, now_ms=clock)
    async with opened(root, sim_client(sim, breaker=CircuitBreaker(0)), sim, clock) as env:
        reader = env.services.reader
        reader.policy = replace(reader.policy, max_request_samples=request_samples)
        names = env.names(points)
        start = NOW - back_d * MS_PER_DAY + minute * MS_PER_MINUTE
        end = min(start + length_h * MS_PER_HOUR, NOW - MS_PER_HOUR)
        if end <= start:
            end = start + MS_PER_HOUR
        if first is not None:  # some of it cached before, by another read
            lo = NOW - first[0] * MS_PER_DAY
            await reader.read(SITE, names[:1], lo, lo + first[1] * MS_PER_DAY, token="t")
        sim.faults.fail_after = fail_after
        try:
            got, stats = await reader.read(SITE, names, start, end, token="t")
        except UpstreamError:
            assert fail_after is not None
        else:
            for n in names:
                served = list(zip(got[n].t_ms.tolist(), got[n].v.tolist(), strict=True))
                want = list(zip(*env.truth(n, start, end), strict=True))
                if stats.stale:  # upstream failed: only what is stored, all of it true
                    truth = dict(want)
                    assert fail_after is not None
                    assert all(t in truth and truth[t] == v for t, v in served)
                else:
                    assert served == want
        sim.faults.fail_after = None
        rows = await env.rows(names, start, end)
        await env.assert_rows_hold_the_truth(rows)
        # the next read fetches only what is not stored, and answers the truth
        plan = plan_fetches(names, rows, start, end, clock.ms, reader.policy.open_ttl_ms)
        missing = sum(len(env.truth(n, s, e)[0]) for n, spans in plan.items() for s, e in spans)
        before = sim.stats.samples
        got, _ = await reader.read(SITE, names, start, end, token="t")
        assert sim.stats.samples - before == missing
        for n in names:
            assert (got[n].t_ms.tolist(), got[n].v.tolist()) == env.truth(n, start, end)
        await env.assert_rows_hold_the_truth(await env.rows(names, start, end))


async def test_months_are_written_while_the_next_are_in_flight(env: Env) -> None:
    names = env.names(2)
    start = extents.month_floor(NOW) - 4 * 31 * MS_PER_DAY
    start = extents.month_floor(start)
    end = extents.month_floor(NOW)
    reader = env.services.reader
    # one request at a time: a month arrives while the one before it is written
    reader.policy = replace(reader.policy, upstream_concurrency=1)
    store = reader.store
    seen: list[tuple[int, int]] = []  # (months stored, requests answered) at each write
    real_write = store.write

    async def write(site: str, fetched: Sequence[fetching.Fetched], **kw: object):  # type: ignore[no-untyped-def]
        seen.append((len({extents.month_floor(f.span[0]) for f in fetched}), sim_requests()))
        return await real_write(site, fetched, **kw)  # type: ignore[arg-type]

    def sim_requests() -> int:
        return env.sim.stats.by_route["point_timeseries"] + env.sim.stats.by_route["get_timeseries"]

    store.write = write  # type: ignore[method-assign]
    got, _ = await reader.read(SITE, names, start, end, token="t")
    assert len(seen) > 1  # more than one write: months went in as they arrived
    assert sum(m for m, _ in seen) == len(extents.months_covering(start, end))
    assert seen[0][1] < sim_requests()  # the first write came before the last request
    for n in names:
        assert (got[n].t_ms.tolist(), got[n].v.tolist()) == env.truth(n, start, end)
    rows = await env.rows(names, start, end)
    # settled months fetched whole are one chunk each, as a write of the whole range makes
    assert len(rows) == len(names) * len(extents.months_covering(start, end))


async def test_a_cold_read_keeps_its_days_in_memory_and_its_months_only_once_read(
    env: Env,
) -> None:
    """A long cold read does not push every other caller's working set out of memory: the
    whole settled months it writes are decoded into memory when read, not when written;
    the days (recent data, what dashboards read next) are kept as written. Either way
    every sample is the truth."""
    names = env.names(2)
    start = extents.month_floor(extents.month_floor(NOW) - 40 * MS_PER_DAY)
    end = extents.day_floor(NOW)
    store = env.services.reader.store
    # fetched and stored, as a chart's read does before it reads the rollups
    rows = await env.services.reader.ensure(SITE, names, start, end, token="t", stats=ReadStats())
    months = [r for r in rows if not r.day]
    days = [r for r in rows if r.day]
    assert months and days
    for group, first_source in ((months, {"STORE"}), (days, {"MEMORY"})):
        for row in group:
            span = (row.period_start_ms, row.period_end_ms)
            once = await store.load(SITE, [row.point], [row], *span)
            again = await store.load(SITE, [row.point], [row], *span)
            assert (once.sources, again.sources) == (first_source, {"MEMORY"})
            for loaded in (once, again):
                got = loaded.series[row.point]
                assert (got.t_ms.tolist(), got.v.tolist()) == env.truth(row.point, *span)


async def test_a_month_read_around_a_day_stored_before_is_written_as_one_chunk(
    env: Env,
) -> None:
    """A day of a settled month was read first (a dashboard's); reading the whole month
    then fetches the rest around it, and the month is stored as one period that takes
    the day in, not as a chunk per day; every sample is the truth."""
    names = env.names(2)
    month = extents.month_floor(extents.month_floor(NOW) - 40 * MS_PER_DAY)
    end = extents.next_month(month)
    day = month + 12 * MS_PER_DAY
    await env.services.reader.ensure(
        SITE, names, day, day + MS_PER_DAY, token="t", stats=ReadStats()
    )
    before = await env.rows(names, month, end)
    assert {(r.period_start_ms, r.period_end_ms) for r in before} == {(day, day + MS_PER_DAY)}
    objects = env.services.objects
    written: list[str] = []
    put_many = objects.put_many

    async def counted(items: Sequence[tuple[str, bytes]], **kw: bool) -> None:
        written.extend(k for k, _ in items)
        await put_many(items, **kw)

    objects.put_many = counted  # type: ignore[method-assign]
    rows = await env.services.reader.ensure(SITE, names, month, end, token="t", stats=ReadStats())
    # one object per point: the month, written once (not a day chunk per day, then merged)
    assert len(written) == len(names)
    assert sorted((r.point, r.period_start_ms, r.period_end_ms) for r in rows) == [
        (n, month, end) for n in sorted(names)
    ]
    assert all(r.coverage == ((month, end),) for r in rows)
    await env.assert_rows_hold_the_truth(rows)


# ---- the access check beside the first requests ------------------------------------------


class SignallingTransport(httpx.ASGITransport):
    """The simulator's transport, setting ``served`` once a timeseries answer came back."""

    def __init__(self, app: Simulator) -> None:
        super().__init__(app=app)
        self.served = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if "timeseries" in request.url.path and response.status_code == 200:
            self.served.set()
        return response


class RefusingSite(AceClient):
    """An upstream that refuses the token for the site (once samples have been served) but,
    misconfigured, still serves its points' samples: only the access check stands in the
    way. The refusal waits for a served fetch, so the fetch beside the check really ran
    whatever the machine's load (a fixed delay let the check win on a loaded machine)."""

    def __init__(self, base: str, policy: ClientPolicy, transport: SignallingTransport) -> None:
        super().__init__(base, policy, transport=transport)
        self._served = transport.served

    async def site(self, site: str, *, token: str) -> dict[str, object]:
        if token == "revoked":
            async with asyncio.timeout(30):
                await self._served.wait()
            raise Forbidden("upstream refused access: Not authorized for this site")
        return await super().site(site, token=token)


async def test_nothing_fetched_for_a_refused_token_is_kept(tmp_path: Path) -> None:
    clock = Clock(NOW)
    sim = create_simulator(seed=1, now_ms=clock)
    upstream = RefusingSite("http://simulator/api", FAST_POLICY, SignallingTransport(sim))
    async with opened(tmp_path, upstream, sim, clock) as env:
        names = env.names(3)
        start, end = NOW - 70 * MS_PER_DAY, NOW - 10 * MS_PER_DAY
        with pytest.raises(Forbidden):
            await env.services.reader.read(SITE, names, start, end, token="revoked")
        assert sim.stats.by_route["point_timeseries"] + sim.stats.by_route["get_timeseries"] > 0
        assert await env.rows(names, start, end) == []
        assert [o async for o in env.services.objects.list("chunks/")] == []
        assert env.services.reader.store.forget(SITE) == 0  # no decoded chunk or rollup kept
        # and a token upstream lets read the site fetches it all, as if nothing happened
        before = sim.stats.samples
        got, stats = await env.services.reader.read(SITE, names, start, end, token="t")
        assert stats.cache_status == "MISS"
        assert sim.stats.samples - before == sum(len(s) for s in got.values()) > 0


async def test_a_token_upstream_refuses_gets_the_refusal_and_nothing_is_stored(
    tmp_path: Path,
) -> None:
    clock = Clock(NOW)
    sim = create_simulator(
        seed=1, now_ms=clock, tokens={"t": ["elm_school"], "other": ["office_tower"]}
    )
    async with opened(tmp_path, sim_client(sim), sim, clock) as env:
        names = env.names(3)
        start, end = NOW - 40 * MS_PER_DAY, NOW - 5 * MS_PER_DAY
        for _ in range(2):  # the refusal is cached the second time: still refused
            with pytest.raises((Forbidden, NotFound)):
                await env.services.reader.read(SITE, names, start, end, token="other")
        assert await env.rows(names, start, end) == []


# ---- the request plan by cost -----------------------------------------------------------

DAY = MS_PER_DAY
OCT = 1_759_276_800_000  # 2025-10-01 UTC


def _plan(points: int, days: int) -> dict[str, list[tuple[int, int]]]:
    return {f"p{i}": [(OCT, OCT + days * DAY)] for i in range(points)}


def _all(by_month: list[list[fetching.Request]]) -> list[fetching.Request]:
    return [r for m in by_month for r in m]


def test_latency_bound_upstream_gets_few_large_requests() -> None:
    policy = CachePolicy()
    cost = fetching.RequestCost(0.2, 0.0)
    requests = _all(fetching.request_plan(_plan(50, 31), policy, cost))
    # 50 points × a month: batches of points (fewer requests than points), none over the
    # per-request cap
    assert len(requests) < 50
    assert all(r.samples <= policy.max_request_samples for r in requests)
    assert sorted(n for r in requests for n in r.names) == sorted(f"p{i}" for i in range(50))


def test_transfer_bound_upstream_spreads_one_point_over_the_slots() -> None:
    policy = CachePolicy()
    cost = fetching.RequestCost(0.2, 100e-6)
    requests = _all(fetching.request_plan(_plan(1, 31), policy, cost))
    # one point's month as one request is 0.2 s + 0.9 s; cut in windows side by side less
    assert 1 < len(requests) <= policy.upstream_concurrency
    spans = sorted(r.span for r in requests)
    assert spans[0][0] == OCT and spans[-1][1] == OCT + 31 * DAY
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))


def test_fewer_requests_are_taken_only_when_they_spare_upstream_work() -> None:
    """20 points × a month of 5-minute samples: latency-bound, batches of points halve
    upstream's work and are taken; transfer-bound (the real API's 100 µs a sample),
    batches carry the same samples, save upstream a tenth and cost a fifth more time,
    so each point is its own request, as the quickest plan has it."""
    policy = CachePolicy()
    latency_bound = _all(fetching.request_plan(_plan(20, 31), policy, fetching.RequestCost(0.2, 0)))
    assert len(latency_bound) < 20
    transfer = fetching.RequestCost(0.2, 100e-6)
    transfer_bound = _all(fetching.request_plan(_plan(20, 31), policy, transfer))
    assert len(transfer_bound) == 20 and all(len(r.names) == 1 for r in transfer_bound)
    quick = fetching.plan_time_s(transfer_bound, transfer, policy.upstream_concurrency)
    assert quick < 3.3  # 3 rounds of 0.2 s + 8,928 samples (10 batches of 2: 3.8 s)


def test_polite_takes_a_slower_option_only_for_its_share_of_upstream_work_saved() -> None:
    # (wall time, upstream's busy time, choice)
    assert fetching.polite([(1.0, 10.0, "quick"), (1.2, 5.0, "half the work")]) == "half the work"
    assert fetching.polite([(1.0, 10.0, "quick"), (1.2, 9.0, "a tenth less")]) == "quick"
    assert fetching.polite([(1.0, 10.0, "quick"), (1.3, 1.0, "too slow")]) == "quick"
    assert fetching.polite([(1.0, 10.0, "a"), (1.0, 9.0, "as quick, less work")]) == (
        "as quick, less work"
    )
    assert fetching.polite([(0.0, 0.0, "free"), (0.0, 0.0, "also free")]) in ("free", "also free")


def test_background_work_asks_with_the_fewest_requests() -> None:
    policy = CachePolicy()
    cost = fetching.RequestCost(0.2, 100e-6)
    requests = _all(fetching.request_plan(_plan(3, 3), policy, cost, fewest=True))
    assert len(requests) == 1 and len(requests[0].names) == 3


def test_requests_never_span_two_months_and_cover_the_plan_exactly() -> None:
    plan = {"a": [(OCT - 40 * DAY + 7, OCT + 45 * DAY)], "b": [(OCT + 3, OCT + 4 * DAY)]}
    by_month = fetching.request_plan(plan, CachePolicy(), fetching.RequestCost(0.2, 1e-4))
    covered: dict[str, list[tuple[int, int]]] = {}
    for month in by_month:
        assert len({extents.month_floor(r.span[0]) for r in month}) == 1
        for r in month:
            assert r.span[1] <= extents.next_month(r.span[0])
            for n in r.names:
                covered.setdefault(n, []).append(r.span)
    assert {n: extents.merge(s) for n, s in covered.items()} == plan


def test_the_site_stream_pays_only_when_its_pages_are_few_and_cheap() -> None:
    plan = _plan(45, 1)
    policy = CachePolicy()
    latency_bound = fetching.RequestCost(0.2, 0.0)
    transfer_bound = fetching.RequestCost(0.2, 100e-6)
    assert fetching.site_stream_pays(plan, 60, policy, latency_bound)
    assert not fetching.site_stream_pays(plan, 60, policy, transfer_bound)
    assert not fetching.site_stream_pays(plan, 2_500, policy, latency_bound)


def test_measured_costs_replace_the_policy_figures() -> None:
    from tsgate.upstream.costs import RequestCosts

    costs = RequestCosts()
    assert costs.estimate() is None
    for samples in (100, 1_000, 10_000, 50_000) * 3:
        costs.observe(0.05 + samples * 20e-6, samples)
    latency, per_sample = costs.estimate() or (0.0, 0.0)
    assert latency == pytest.approx(0.05, rel=1e-6)
    assert per_sample == pytest.approx(20e-6, rel=1e-6)
    same_size = RequestCosts()
    for _ in range(20):
        same_size.observe(0.3, 8_000)
    assert same_size.estimate() is None  # latency and transfer cannot be told apart


@settings(max_examples=50, deadline=None)
@given(
    latency=st.floats(0.01, 1.0),
    per_sample=st.floats(0.0, 200e-6),
    seed=st.integers(0, 2**32 - 1),
)
def test_requests_that_waited_upstream_do_not_bend_the_measured_cost(
    latency: float, per_sample: float, seed: int
) -> None:
    """Most requests wait behind others (up to 3 s more); the quickest of each size
    still show the cost, and the fit is theirs (least squares over every request: off
    by seconds)."""
    from tsgate.upstream.costs import RequestCosts

    rng = np.random.default_rng(seed)
    costs = RequestCosts()
    sizes = np.exp(rng.uniform(np.log(50), np.log(60_000), size=200)).astype(int)
    for samples in sizes.tolist():  # sizes over three orders of magnitude, as a reader's
        waited = float(rng.uniform(0, 3.0)) if rng.random() < 0.7 else 0.0
        costs.observe(latency + samples * per_sample + waited, samples)
    for samples in (100, 1_000, 10_000, 50_000):  # one unhindered request of a few sizes
        costs.observe(latency + samples * per_sample, samples)
    fitted = costs.estimate()
    assert fitted is not None
    assert fitted[0] == pytest.approx(latency, rel=0.05, abs=2e-3)
    assert fitted[1] == pytest.approx(per_sample, rel=0.05, abs=0.1e-6)


async def test_the_ace_client_measures_its_data_requests_and_the_reader_plans_by_them(
    tmp_path: Path,
) -> None:
    clock = Clock(NOW)
    sim = create_simulator(seed=1, now_ms=clock)
    upstream = sim_client(sim)
    conf = replace(_settings(tmp_path), upstream_measure_costs=True)
    async with open_services(conf, upstream=upstream, clock_ms=clock) as services:
        reader = services.reader
        assert reader.request_cost() == fetching.RequestCost(0.2, 100e-6)  # the settings'
        name = sim.sites[2].collecting[0].name
        start = NOW - 60 * DAY
        for days in (1, 2, 4, 8, 16, 31, 1, 3, 9, 20):  # requests of different sizes
            await upstream.points_request([name], start, start + days * DAY, token="t")
        measured = upstream.costs.estimate()
        assert measured is not None
        assert reader.request_cost() == fetching.RequestCost(*measured)
        # in-process, upstream answers in far less than the settings' 200 ms
        assert measured[0] < 0.2
        reader.policy = replace(reader.policy, measure_costs=False)
        assert reader.request_cost() == fetching.RequestCost(0.2, 100e-6)
