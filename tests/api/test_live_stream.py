"""``GET /api/timeseries/stream``: new samples pushed once, in order, from one shared poll,
against the simulator's truth (with its visibility delay), and its bounds."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import numpy as np
import pytest

from tests.clock import NOW, Clock
from tests.sse import Event, Stream, Ticks, live_app
from tsgate.core.model import MS_PER_HOUR
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator
from tsgate.wire.ace import format_time
from tsgate.wiring import Services

pytestmark = pytest.mark.anyio

TOKEN = "good"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TS_ROUTES = ("point_timeseries", "get_timeseries", "site_timeseries", "paginated")


@dataclass
class Live:
    sim: Simulator
    clock: Clock
    services: Services
    ticks: Ticks
    open: object  # the stream factory
    site: str
    names: list[str]

    def params(self, start_ms: int, end_ms: int, **extra: str) -> dict[str, str]:
        return {
            "site": self.site,
            "points": ",".join(self.names),
            "start": format_time(start_ms),
            "end": format_time(end_ms),
            **extra,
        }

    async def stream(self, params: dict[str, str], headers: dict[str, str] | None = None) -> Stream:
        factory = self.open
        assert callable(factory)
        stream: Stream = factory(params, {**AUTH, **(headers or {})})
        return await stream.start()

    def upstream_reads(self) -> int:
        return sum(self.sim.stats.by_route[r] for r in TS_ROUTES)

    def truth(self, name: str, start_ms: int, end_ms: int) -> tuple[list[int], list[float]]:
        t_us, v = self.sim.truth(name, start_ms, end_ms, as_of_ms=self.clock.ms)
        return (t_us // 1000).tolist(), v.tolist()


def live_settings(settings: Settings, **changes: object) -> Settings:
    return dataclasses.replace(
        settings,
        recheck_interval_s=0,
        maintenance_interval_s=0,
        rate_limit_per_min=0,
        **changes,  # type: ignore[arg-type]
    )


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[Live]:
    # a wall of dashboards under one token: 20 streams of one caller
    async with _live(live_settings(settings, live_viewers_per_caller=24)) as env:
        yield env


def _live(settings: Settings, delay_s: float = 120.0, jitter_s: float = 0.0):  # type: ignore[no-untyped-def]
    import contextlib

    @contextlib.asynccontextmanager
    async def run() -> AsyncIterator[Live]:
        clock = Clock(NOW)
        sim = Simulator(seed=4, tokens={TOKEN: {s.name for s in Simulator(4).sites}}, now_ms=clock)
        sim.faults.visibility_delay_s = delay_s
        sim.faults.visibility_jitter_s = jitter_s
        site = sim.sites[1]
        names = [p.name for p in site.collecting[:3]]
        async with live_app(settings, sim, clock) as (factory, services, ticks):
            yield Live(sim, clock, services, ticks, factory, site.name, names)

    return run()


def series_of(event: Event) -> dict[str, tuple[list[int], list[float]]]:
    out: dict[str, tuple[list[int], list[float]]] = {}
    for s in event.data["series"]:
        if "data" in s:
            out[s["name"]] = ([p[0] for p in s["data"]], [p[1] for p in s["data"]])
        else:
            out[s["name"]] = (s["t"], s["v"])
    return out


async def test_twenty_viewers_get_every_new_sample_once_in_order_from_one_poll(live: Live) -> None:
    start, end = NOW - 2 * MS_PER_HOUR, NOW + 2 * MS_PER_HOUR
    viewers = [await live.stream(live.params(start, end, layout="columnar")) for _ in range(20)]
    initials = [await v.event() for v in viewers]
    for first in initials:
        assert first is not None and first.name == "initial"
        got = series_of(first)
        for name in live.names:
            # the initial event is /api/timeseries's answer: what upstream serves now
            t, v = live.truth(name, start, NOW + 1)
            assert got[name][0] == t
            np.testing.assert_allclose(got[name][1], v, rtol=1e-12)
    assert len(live.services.live.pollers) == 1
    before = live.upstream_reads()
    polls = 12  # an hour of 5-minute polls
    moved = 0
    for _ in range(polls):
        reads = live.upstream_reads()
        moved += await live.ticks.tick()
        # one poll of the point set, whatever the number of viewers: one upstream
        # request (the points' batch read) per poll
        assert live.upstream_reads() - reads == 1
    assert moved == polls * 300_000  # the points' 5-minute collect interval
    assert live.upstream_reads() - before == polls
    for viewer, first in zip(viewers, initials, strict=True):
        assert first is not None
        pushed = [e for e in viewer.pending() if e.name == "samples"]
        assert pushed, "new samples were pushed"
        ids = [e.id for e in pushed]
        assert len(set(ids)) == len(ids)
        have = series_of(first)
        for name in live.names:
            times = list(have[name][0])
            values = list(have[name][1])
            for e in pushed:
                t, v = series_of(e).get(name, ([], []))
                times += t
                values += v
            # every sample once, in time order (a fixed delay keeps visibility in order)
            assert times == sorted(set(times))
            truth_t, truth_v = live.truth(name, start, live.clock.ms + 1)
            assert times == truth_t
            np.testing.assert_allclose(values, truth_v, rtol=1e-12)
    for viewer in viewers:
        await viewer.close()
    assert live.services.live.pollers == {} and live.services.live.viewers == 0


async def test_a_reconnect_with_last_event_id_resumes_without_loss_or_duplicates(
    live: Live,
) -> None:
    start, end = NOW - MS_PER_HOUR, NOW + MS_PER_HOUR
    keeper = await live.stream(live.params(start, end))  # keeps the poller alive
    await keeper.event()
    leaver = await live.stream(live.params(start, end))
    first = await leaver.event()
    assert first is not None and first.name == "initial"
    await live.ticks.tick()
    await live.ticks.tick()
    seen = [e for e in leaver.pending() if e.name == "samples"]
    assert seen
    await leaver.close()
    for _ in range(3):  # batches it misses while away
        await live.ticks.tick()
    back = await live.stream(live.params(start, end), {"Last-Event-ID": seen[-1].id or ""})
    replayed = [e for e in await _drain(back) if e.name != "status"]
    assert replayed and all(e.name == "samples" for e in replayed)  # no new initial
    have = series_of(first)
    for name in live.names:
        times = list(have[name][0])
        for e in [*seen, *replayed]:
            times += series_of(e).get(name, ([], []))[0]
        assert times == sorted(set(times)) == live.truth(name, start, live.clock.ms + 1)[0]
    # an id of another poller (or junk) starts over with a new initial answer
    for junk in ("deadbeef.3", "not an id", "x" * 5000):
        other = await live.stream(live.params(start, end), {"Last-Event-ID": junk})
        again = await other.event()
        assert again is not None and again.name == "initial"
        await other.close()
    await back.close()
    await keeper.close()


async def _drain(stream: Stream) -> list[Event]:
    """What ``stream`` has sent once its first answer is out (replays come at once)."""
    out = [e for e in [await stream.event()] if e is not None]
    return out + stream.pending()


async def test_a_closed_range_is_the_answer_then_end(live: Live) -> None:
    stream = await live.stream(live.params(NOW - 5 * MS_PER_HOUR, NOW - 2 * MS_PER_HOUR))
    events = await stream.events_until("end")
    assert [e.name for e in events] == ["initial", "end"]
    assert events[1].data == {"reason": "closed"}
    assert await stream.event() is None
    assert live.services.live.pollers == {} and live.services.live.viewers == 0


async def test_a_downsampled_initial_answer_is_the_chart_apis(live: Live) -> None:
    start, end = NOW - 24 * MS_PER_HOUR, NOW + MS_PER_HOUR
    params = live.params(start, end, max_points="400", layout="columnar")
    stream = await live.stream(params)
    first = await stream.event()
    assert first is not None and first.name == "initial"
    assert first.data["metadata"]["aggregation"] != "none"  # downsampled
    transport = httpx.ASGITransport(app=stream._app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tsgate") as client:
        answer = await client.get("/api/timeseries", params=params, headers=AUTH)
    assert answer.status_code == 200
    assert first.data == answer.json()
    await live.ticks.tick()
    pushed = [e for e in stream.pending() if e.name == "samples"]
    for e in pushed:  # raw samples after the answer, each a real one
        for name, (t, _v) in series_of(e).items():
            assert set(t) <= set(live.truth(name, start, live.clock.ms + 1)[0])
    await stream.close()


async def test_a_streamed_answer_lists_gaps_by_each_points_rule(live: Live) -> None:
    """The initial answer's gaps are the chart API's: a change-of-value point's quiet
    hours are not gaps (its own rule), as on ``/api/timeseries``."""
    site = next(s for s in live.sim.sites if s.name == "rhine_lab")
    kinds = ("occ_schedule", "ahu_mode", "zone_temp")
    names = [next(p.name for p in site.collecting if p.kind == k) for k in kinds]
    cov = dataclasses.replace(live, site=site.name, names=names)
    start, end = NOW - 30 * MS_PER_HOUR, NOW - 2 * MS_PER_HOUR
    for extra in ({}, {"interval": "1h", "agg": "avg"}):
        params = cov.params(start, end, **extra)
        stream = await cov.stream(params)
        events = await stream.events_until("end")
        transport = httpx.ASGITransport(app=stream._app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tsgate") as client:
            answer = await client.get("/api/timeseries", params=params, headers=AUTH)
        assert answer.status_code == 200, answer.text
        gaps = events[0].data["metadata"]["gaps"]
        assert gaps == answer.json()["metadata"]["gaps"]
        for name in names[:2]:  # hourly heartbeats: no band shorter than 1.5 of them
            assert all(b - a > 90 * 60_000 for a, b in gaps.get(name, []))
        t = live.truth(names[0], start, end)[0]
        assert sum(b - a > 15 * 60_000 for a, b in itertools.pairwise(t)) > 10
        await stream.close()
