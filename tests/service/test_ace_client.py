"""The ACE client against the simulator: paging, parsing, retries, and clear failures."""

from __future__ import annotations

import gc
from collections.abc import Callable

import httpx
import msgspec
import numpy as np
import pytest

from tests.asgi import FAST_POLICY, sim_client
from tsgate.errors import (
    Forbidden,
    NotFound,
    Unauthorized,
    UpstreamBadAnswer,
    UpstreamCircuitOpen,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tsgate.upstream.ace import AceClient, ClientPolicy
from tsgate.upstream.breaker import CircuitBreaker
from tsgate.upstream.simulator import create_simulator
from tsgate.wire.ace import SamplesBody, format_time, parse_time, samples_to_series
from tsgate.wire.acebody import decode_samples

pytestmark = pytest.mark.anyio
START = parse_time("start", "2025-10-01T00:00:00")
END = parse_time("end", "2025-10-02T00:00:00")


async def test_site_pages_cover_the_site_and_parse_to_numpy() -> None:
    sim = create_simulator()
    client = sim_client(sim)
    try:
        pages = [
            p
            async for p in client.site_pages(
                "elm_school", START, END, token="t", raw=True, page_size=1000
            )
        ]
    finally:
        await client.aclose()
    assert len(pages) > 10
    names = set().union(*pages)
    assert names == {p.name for p in sim.sites[2].collecting}
    one = next(iter(pages[0].values()))
    assert one.t_ms.dtype == np.int64 and one.v.dtype == np.float64
    assert client.counters.requests == len(pages)
    assert client.counters.samples == sum(len(s) for page in pages for s in page.values())


async def test_points_series_matches_the_site_stream() -> None:
    sim = create_simulator()
    names = [p.name for p in sim.sites[2].collecting[:3]]
    client = sim_client(sim)
    try:
        per_point = await client.points_series(names, START, END, token="t")
        merged: dict[str, list[np.ndarray]] = {}
        async for page in client.site_pages(
            "elm_school", START, END, token="t", raw=True, page_size=50000
        ):
            for name in names:
                if name in page:
                    merged.setdefault(name, []).append(page[name].v)
    finally:
        await client.aclose()
    for name in names:
        assert per_point[name].v.tolist() == np.concatenate(merged[name]).tolist()
        assert bool(np.all(np.diff(per_point[name].t_ms) > 0))


async def test_long_point_reads_are_split_into_month_windows() -> None:
    sim = create_simulator()
    name = sim.sites[2].collecting[0].name
    client = sim_client(sim)
    try:
        year = await client.points_series([name], START, START + 95 * 86_400_000, token="t")
    finally:
        await client.aclose()
    assert sim.stats.by_route["point_timeseries"] == 4
    assert 95 * 280 < len(year[name]) <= 95 * 288


async def test_retries_5xx_429_and_truncated_bodies_then_succeeds() -> None:
    sim = create_simulator()
    delays: list[float] = []

    async def sleep(s: float) -> None:
        delays.append(s)

    policy = ClientPolicy(retries=4, backoff_s=0.5, backoff_cap_s=8.0)
    client = AceClient(
        "http://simulator/api",
        policy,
        transport=httpx.ASGITransport(app=sim),
        sleep=sleep,
        rand=lambda: 1.0,
    )
    sim.faults.fail_next = {"500": 1, "429": 1, "truncate": 1}
    sim.faults.retry_after_s = 3
    try:
        got = await client.points_series([sim.sites[2].collecting[0].name], START, END, token="t")
    finally:
        await client.aclose()
    assert len(next(iter(got.values()))) > 250
    assert client.counters.retries == 3
    # 429 first (its Retry-After: 3 s wins over 0.5 s), then 500 and truncation: backoff doubles
    assert delays == [3.0, 1.0, 2.0]


async def test_exhausted_retries_are_a_clear_error_never_a_short_answer() -> None:
    sim = create_simulator()
    client = sim_client(sim, ClientPolicy(retries=2, backoff_s=0.001))
    sim.faults.fail_next = {"truncate": 10}
    try:
        with pytest.raises(UpstreamUnavailable, match="broken body"):
            await client.points_series([sim.sites[2].collecting[0].name], START, END, token="t")
    finally:
        await client.aclose()
    assert sim.stats.by_route["point_timeseries"] == 3


async def test_duplicate_rows_are_removed() -> None:
    sim = create_simulator()
    name = sim.sites[2].collecting[0].name
    client = sim_client(sim)
    try:
        clean = await client.points_series([name], START, END, token="t")
        sim.faults.fail_next = {"duplicate": 1}
        dup = await client.points_series([name], START, END, token="t")
    finally:
        await client.aclose()
    assert dup[name].t_ms.tolist() == clean[name].t_ms.tolist()


def mock(handler: Callable[[httpx.Request], httpx.Response]) -> AceClient:
    return AceClient("http://up/api", FAST_POLICY, transport=httpx.MockTransport(handler))


async def test_timeouts_become_upstream_timeout() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    client = mock(handler)
    try:
        with pytest.raises(UpstreamTimeout):
            await client.sites_page(1, 10, token="t")
    finally:
        await client.aclose()


async def test_has_more_without_cursor_is_an_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, json={"point_samples": [], "next_cursor": None, "has_more": True}
        )

    client = mock(handler)
    try:
        with pytest.raises(UpstreamUnavailable, match="has_more"):
            async for _ in client.site_pages("s", START, END, token="t", raw=True, page_size=10):
                pass
    finally:
        await client.aclose()


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (401, {"message": "JWT Signature Invalid"}, Unauthorized),
        (403, {"message": "nope"}, Forbidden),
        (404, {"message": "Site x not found"}, NotFound),
    ],
)
async def test_client_errors_are_translated(
    status: int, body: dict[str, str], error: type[Exception]
) -> None:
    client = mock(lambda request: httpx.Response(status, json=body))
    try:
        with pytest.raises(error, match=body["message"]):
            await client.site("x", token="t")
    finally:
        await client.aclose()
    assert client.counters.retries == 0


async def test_no_data_is_an_empty_series_and_token_is_sent_as_bearer() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(404, json={"message": "No data for time period"})

    client = mock(handler)
    try:
        got = await client.points_series(["a/b"], START, END, token="tok")
    finally:
        await client.aclose()
    assert len(got["a/b"]) == 0
    assert seen == ["Bearer tok"]


async def test_a_large_answer_read_from_its_bytes_is_retried_cut_and_refused_garbled() -> None:
    """An answer of upstream's own layout over 64 KiB is read from its bytes: cut short,
    it is asked for again; with a time that is no ISO 8601, it is a bad answer."""
    rows = [
        {"name": "s/p", "value": f"{k % 97}.25", "time": format_time(START + k * 60_000, micros=7)}
        for k in range(1440)
    ]
    whole = msgspec.json.encode({"point_samples": rows})
    rows[700]["time"] = "2025-10-01T11:40:00.000007Z?"
    garbled = msgspec.json.encode({"point_samples": rows})
    assert len(whole) > 1 << 16 and not isinstance(decode_samples(whole).rows, list)
    answers = [whole[: len(whole) - 2], whole, garbled]

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200, content=answers.pop(0), headers={"content-type": "application/json"}
        )

    client = mock(handler)
    try:
        got = (await client.points_series(["s/p"], START, END, token="t"))["s/p"]
        assert not answers[:-1]  # the answer cut short was asked for again
        with pytest.raises(UpstreamBadAnswer, match="not ISO 8601"):
            await client.points_series(["s/p"], START, END, token="t")
    finally:
        await client.aclose()
    assert not answers  # a bad answer is not asked for again
    want = samples_to_series(msgspec.json.decode(whole, type=SamplesBody).point_samples)["s/p"]
    assert got.t_ms.tobytes() == want.t_ms.tobytes() and got.v.tobytes() == want.v.tobytes()
    assert got.us is not None and want.us is not None and got.us.tobytes() == want.us.tobytes()
    assert client.counters.retries == 1


async def test_short_spans_of_many_points_are_one_post() -> None:
    sim = create_simulator()
    names = [p.name for p in sim.sites[2].collecting[:30]]
    client = sim_client(sim)
    try:
        got = await client.points_series(names, START, START + 3_600_000, token="t")
        per_point = await client.points_series(names[:1], START, START + 3_600_000, token="t")
    finally:
        await client.aclose()
    assert sim.stats.by_route["get_timeseries"] == 1
    assert sim.stats.by_route["point_timeseries"] == 1
    assert set(got) == set(names) and all(10 <= len(s) <= 12 for s in got.values())
    assert got[names[0]].v.tolist() == per_point[names[0]].v.tolist()


async def test_circuit_opens_on_failures_and_recovers_with_the_simulator() -> None:
    now = [0.0]
    sim = create_simulator()
    name = sim.sites[2].collecting[0].name
    breaker = CircuitBreaker(2, 30.0, clock=lambda: now[0])
    client = sim_client(sim, ClientPolicy(retries=1, backoff_s=0.001), breaker=breaker)
    sim.faults.fail_next = {"500": 100}
    try:
        for _ in range(2):
            with pytest.raises(UpstreamUnavailable, match="HTTP 500"):
                await client.points_series([name], START, END, token="t")
        assert breaker.state == "open" and sim.stats.requests == 4  # 2 calls × 2 attempts
        with pytest.raises(UpstreamCircuitOpen) as refused:
            await client.sites_page(1, 10, token="t")
        assert sim.stats.requests == 4 and refused.value.retry_after_s == pytest.approx(30.0)
        sim.faults.fail_next = {}
        now[0] += 30.0
        got = await client.points_series([name], START, END, token="t")
    finally:
        await client.aclose()
    assert len(got[name]) > 250 and breaker.state == "closed"


async def test_passed_through_5xx_reach_the_caller_but_never_open_the_breaker() -> None:
    # a pass-through path is the caller's: six junk paths must not fail everyone's reads
    client = AceClient(
        "http://up/api",
        FAST_POLICY,
        transport=httpx.MockTransport(lambda request: httpx.Response(502, text="bad gateway")),
        breaker=CircuitBreaker(2, 30.0),
    )
    try:
        answers = [await client.forward("GET", "/anything", token="t") for _ in range(6)]
        assert client.breaker.state == "closed"
        client.breaker._failed(False)
        client.breaker._failed(False)  # the breaker opened by tsgate's own calls...
        with pytest.raises(UpstreamCircuitOpen):  # ...fails pass-through fast too
            await client.forward("GET", "/anything", token="t")
    finally:
        await client.aclose()
    assert [a.status for a in answers] == [502] * 6


async def test_no_upstream_answer_outlives_its_read_without_the_cyclic_collector() -> None:
    """httpx ties each response to its stream in a reference cycle; left alone, every
    page (its body included) stays in memory until the collector's next pass. The client
    breaks it, so with the collector off no answer survives its read, and the reads are
    still upstream's samples, exactly."""
    sim = create_simulator()
    names = [p.name for p in sim.sites[2].collecting[:4]]
    client = sim_client(sim)
    gc.collect()
    gc.disable()
    try:
        got = await client.points_series(names, START, START + 40 * 86_400_000, token="t")
        forwarded = await client.forward("GET", "/sites", token="t", query="per_page=2")
        alive = [o for o in gc.get_objects() if isinstance(o, httpx.Response)]
    finally:
        gc.enable()
        await client.aclose()
    assert sim.stats.by_route["point_timeseries"] == 2 * len(names)  # month windows, each
    assert forwarded.status == 200 and forwarded.content
    assert alive == []
    for name in names:
        t_us, v = sim.truth(name, START, START + 40 * 86_400_000)
        assert got[name].t_ms.tolist() == (t_us // 1000).tolist()
        assert got[name].v.tolist() == v.tolist()
