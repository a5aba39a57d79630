"""The live stream against hostile callers and failures: junk tokens, absurd ranges, too
many viewers, clients that leave or read slowly, upstream failing, access revoked."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.api.test_live_stream import AUTH, TOKEN, Live, _live, live_settings, series_of
from tests.clock import NOW
from tests.sse import Event
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR
from tsgate.settings import Settings
from tsgate.wire.ace import format_time

pytestmark = pytest.mark.anyio

WINDOW = (NOW - MS_PER_HOUR, NOW + MS_PER_HOUR)


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[Live]:
    async with _live(
        live_settings(settings, live_viewers_per_caller=3, live_buffer_events=2)
    ) as env:
        yield env


async def _problem(
    live: Live, params: dict[str, str], headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    stream = await live.stream(params, headers)
    body = await stream.body()
    assert stream.headers["content-type"].startswith("application/problem+json"), body
    return stream.status, stream.headers, body


async def test_junk_tokens_and_bad_queries_are_4xx_problems(live: Live) -> None:
    good = live.params(*WINDOW)
    for junk in ("Bearer junk", "Bearer ", "Basic Zm9vOmJhcg==", "Bearer " + "x" * 5000):
        status, _, _ = await _problem(live, good, {"Authorization": junk})
        assert status == 401, junk
    cases = [
        ({**good, "end": good["start"]}, 400),  # an empty range
        ({**good, "start": "2025-13-45T00:00:00"}, 400),
        ({**good, "start": "1970-01-01T00:00:00"}, 413),  # beyond the longest range
        ({**good, "points": ""}, 400),
        ({**good, "interval": "3s"}, 400),
        ({**good, "format": "msgpack"}, 400),  # an event stream is text
        ({**good, "site": "no_such_site"}, 404),
        ({**good, "site": "../etc"}, 404),
    ]
    for params, expected in cases:
        status, _, body = await _problem(live, params)
        assert status == expected, (params, body)
    assert live.services.live.viewers == 0 and live.services.live.pollers == {}


async def test_viewers_beyond_the_callers_cap_get_429(live: Live) -> None:
    streams = [await live.stream(live.params(*WINDOW)) for _ in range(3)]
    for s in streams:
        assert (await s.event()) is not None
    status, headers, body = await _problem(live, live.params(*WINDOW))
    assert status == 429 and "live_viewers_per_caller" in body.decode()
    assert int(headers["retry-after"]) > 0
    await streams[0].close()  # one leaves: one more may come
    again = await live.stream(live.params(*WINDOW))
    assert again.status == 200
    for s in [*streams[1:], again]:
        await s.close()


async def test_the_process_cap_holds_across_callers(settings: Settings) -> None:
    conf = live_settings(settings, live_max_viewers=2)
    async with _live(conf) as live:
        live.sim.tokens = {t: frozenset(s.name for s in live.sim.sites) for t in ("a", "b", "c")}
        streams = [
            await live.stream(live.params(*WINDOW), {"Authorization": f"Bearer {t}"}) for t in "ab"
        ]
        assert [s.status for s in streams] == [200, 200]
        status, _, body = await _problem(live, live.params(*WINDOW), {"Authorization": "Bearer c"})
        assert status == 429 and "live_viewers" in body.decode()
        assert len(live.services.live.pollers) == 2  # a poller per grant scope
        for s in streams:
            await s.close()


async def test_the_last_viewer_leaving_stops_the_poller(live: Live) -> None:
    a = await live.stream(live.params(*WINDOW))
    b = await live.stream(live.params(*WINDOW))
    await a.event()
    await b.event()
    (poller,) = live.services.live.pollers.values()
    await a.close()  # a client that disconnects
    assert live.services.live.pollers == {poller.key: poller} and poller.viewers
    await live.ticks.tick()  # b still gets its samples
    assert any(e.name == "samples" for e in b.pending())
    await b.close()
    assert live.services.live.pollers == {} and live.services.live.viewers == 0
    await asyncio.sleep(0)
    assert not poller._task.running


async def test_a_failing_upstream_is_said_and_the_stream_goes_on(live: Live) -> None:
    start, end = WINDOW
    stream = await live.stream(live.params(start, end))
    first = await stream.event()
    assert first is not None
    live.sim.faults.fail_after = 0  # every timeseries request answers 500
    await live.ticks.tick()
    await live.ticks.tick()
    events = stream.pending()
    assert [e.name for e in events] == ["status"]  # said once, not per poll
    assert events[0].data["upstream"] == "failing"
    live.sim.faults.fail_after = None
    await live.ticks.tick()
    events += stream.pending()
    assert [e.name for e in events[1:]] == ["samples", "status"]
    assert events[-1].data["upstream"] == "ok"
    _assert_exact(live, first, events, start)
    await stream.close()


async def test_a_revoked_token_ends_its_stream_with_an_error(live: Live) -> None:
    stream = await live.stream(live.params(*WINDOW))
    await stream.event()
    live.sim.tokens = {TOKEN: frozenset()}  # upstream no longer lets it read the site
    for _ in range(3):  # the grant is trusted for TSGATE_ACCESS_TTL_S (300 s)
        if live.services.live.pollers == {}:
            break
        await live.ticks.tick()
    ended = await stream.events_until("error")
    assert ended[-1].name == "error"
    assert ended[-1].data["status"] in (403, 404) and ended[-1].data["detail"]
    assert await stream.event() is None  # and the stream is closed
    await stream.close()
    assert live.services.live.pollers == {} and live.services.live.viewers == 0


async def test_a_slow_client_is_dropped_not_buffered(live: Live) -> None:
    slow = await live.stream(live.params(*WINDOW))
    quick = await live.stream(live.params(*WINDOW))
    await slow.event()
    await quick.event()
    slow.hold = asyncio.Event()  # it stops reading
    (poller,) = live.services.live.pollers.values()
    for _ in range(6):
        await live.ticks.tick()
        assert all(v.queue.qsize() <= 2 for v in poller.viewers)  # the bound
    assert len(poller.viewers) == 1  # the slow one was dropped: nothing more is queued for it
    slow.hold.set()
    tail = await slow.events_until("error")
    assert tail[-1].name == "error" and tail[-1].data["status"] == 429
    assert await slow.event() is None
    assert len([e for e in quick.pending() if e.name == "samples"]) >= 1  # unaffected
    await slow.close()
    await quick.close()


async def test_heartbeats_and_the_streams_own_end(settings: Settings) -> None:
    conf = live_settings(settings, live_heartbeat_s=0.02, live_max_s=0.3)
    async with _live(conf) as live:
        stream = await live.stream(live.params(*WINDOW))
        events = await stream.events_until("end", wait_s=5)
        assert [e.name for e in events] == ["initial", "end"]
        assert events[-1].data == {"reason": "max-duration"}
        assert stream.comments >= 3  # ": keepalive" while nothing else was sent
        await stream.close()
    conf = live_settings(settings, live_idle_s=0.2)
    async with _live(conf) as live:
        stream = await live.stream(live.params(*WINDOW))
        events = await stream.events_until("end", wait_s=5)
        assert events[-1].data == {"reason": "idle"}
        await stream.close()
        assert live.services.live.pollers == {}


def _assert_exact(live: Live, first: Event, events: list[Event], start: int) -> None:
    have = series_of(first)
    for name in live.names:
        times = list(have[name][0])
        for e in events:
            if e.name == "samples":
                times += series_of(e).get(name, ([], []))[0]
        assert times == sorted(set(times)) == live.truth(name, start, live.clock.ms + 1)[0]


async def test_a_long_range_stream_is_bounded_like_the_chart_api(settings: Settings) -> None:
    conf = live_settings(settings, max_inline_samples=20_000, inline_fetch_samples=5_000)
    async with _live(conf) as live:
        # raw samples beyond what one answer may carry
        params = live.params(NOW - 30 * MS_PER_DAY, NOW + MS_PER_HOUR)
        status, _, body = await _problem(live, params, AUTH)
        assert status == 413 and "max_inline_samples" in body.decode()
        # a cold range too big to fetch inline: a stream does not become a job
        params = live.params(NOW - 7 * MS_PER_DAY, NOW + MS_PER_HOUR)
        status, _, body = await _problem(live, params, AUTH)
        assert status == 413 and "inline_fetch_samples" in body.decode()
        assert live.services.live.viewers == 0


def test_a_client_closing_its_socket_frees_the_stream_on_a_real_server(settings: Settings) -> None:
    import time

    import httpx

    from tests.asgi import live_server, sim_client
    from tsgate.app import create_app
    from tsgate.upstream.simulator import create_simulator

    sim = create_simulator(seed=1, tokens={TOKEN: ("demo_campus",)})
    conf = live_settings(settings)
    name = sim.sites[0].collecting[0].name
    now = time.time() * 1000
    params = {
        "site": "demo_campus",
        "points": name,
        "start": format_time(int(now - MS_PER_HOUR)),
        "end": format_time(int(now + MS_PER_HOUR)),
    }

    def gauges(client: httpx.Client) -> dict[str, float]:
        text = client.get("/metrics").text
        return {
            line.split()[0]: float(line.split()[1])
            for line in text.splitlines()
            if line.startswith("tsgate_live_")
        }

    with (
        live_server(create_app(conf, upstream=sim_client(sim))) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        with client.stream("GET", "/api/timeseries/stream", params=params, headers=AUTH) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            lines = r.iter_lines()
            assert next(line for line in lines if line.startswith("event:")) == "event: initial"
            assert gauges(client) == {"tsgate_live_viewers": 1, "tsgate_live_pollers": 1}
        # the connection is closed: the server notices and stops the poller
        deadline = time.monotonic() + 10
        while gauges(client)["tsgate_live_viewers"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert gauges(client) == {"tsgate_live_viewers": 0, "tsgate_live_pollers": 0}


async def test_a_poller_left_with_only_dropped_viewers_stops(live: Live) -> None:
    stuck = await live.stream(live.params(*WINDOW))
    await stuck.event()
    stuck.hold = asyncio.Event()  # reads nothing more, and keeps its connection open
    for _ in range(6):
        if not live.services.live.pollers:
            break
        await live.ticks.tick()
    assert live.services.live.pollers == {}  # no polls for a client that reads nothing
    stuck.hold.set()
    tail = await stuck.events_until("error")
    assert tail[-1].data["status"] == 429
    await stuck.close()
    assert live.services.live.viewers == 0


async def test_upstream_failing_before_anything_is_cached_is_a_5xx_problem(live: Live) -> None:
    live.sim.faults.fail_after = 0  # nothing cached, nothing to serve
    status, _, body = await _problem(live, live.params(*WINDOW))
    assert status in (502, 503) and b"upstream" in body.lower()
    assert live.services.live.viewers == 0 and live.services.live.pollers == {}
    live.sim.faults.fail_after = None  # and once it answers again, so does the stream
    stream = await live.stream(live.params(*WINDOW))
    first = await stream.event()
    assert first is not None and first.name == "initial"
    await stream.close()
