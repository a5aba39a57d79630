"""``GET /api/occupancy``: a site's occupied spans from its schedule points, against a
walk over the simulator's own samples (each value held until the next); across Berlin's
daylight-saving days, for a site without a schedule point, and for hostile callers."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tests.asgi import api_client
from tsgate.api.occupancy import LOOKBACK_MS
from tsgate.core.model import Series
from tsgate.core.schedule import held_spans, union
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.wire.ace import format_time, parse_time

pytestmark = pytest.mark.anyio
NOW = parse_time("now", "2026-11-20T12:00:00")
ALICE = {"Authorization": "Bearer alice"}
BERLIN = ZoneInfo("Europe/Berlin")
# Berlin's DST days of 2026: clocks forward on Sunday 29 March, back on Sunday 25 October
WINDOWS = [
    ("2026-03-26T17:10:00", "2026-03-31T09:20:00"),
    ("2026-10-22T00:00:00", "2026-10-28T00:00:00"),
]


def walk(t_ms: list[int], v: list[float], start: int, stop: int) -> list[tuple[int, int]]:
    """Occupied spans by a walk over the samples, one at a time: each value holds until
    the next sample (the last until ``stop``); NaN is no sample."""
    samples = [(t, x) for t, x in zip(t_ms, v, strict=True) if x == x and t < stop]
    out: list[tuple[int, int]] = []
    for i, (t, x) in enumerate(samples):
        a = max(t, start)
        b = min(samples[i + 1][0] if i + 1 < len(samples) else stop, stop)
        if x == 0 or b <= a:
            continue
        if out and out[-1][1] >= a:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def merged(lists: list[list[tuple[int, int]]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for a, b in sorted(s for spans in lists for s in spans):
        if out and out[-1][1] >= a:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


@dataclass
class Env:
    api: httpx.AsyncClient
    sim: Simulator
    now: list[int]

    async def ask(self, headers: dict[str, str] = ALICE, **params: str) -> httpx.Response:
        return await self.api.get("/api/occupancy", params=params, headers=headers)

    def truth(self, name: str, start: int, end: int) -> tuple[list[int], list[float]]:
        t_us, v = self.sim.truth(name, start, end)
        return (t_us // 1000).tolist(), v.tolist()


@pytest.fixture
async def env(settings: Settings) -> AsyncIterator[Env]:
    now = [NOW]
    sim = create_simulator(
        seed=4, tokens={"alice": ["rhine_lab", "demo_campus"], "bob": []}, now_ms=lambda: now[0]
    )
    conf = dataclasses.replace(settings, access_ttl_s=300)
    async with api_client(conf, sim, clock_ms=lambda: now[0]) as api:
        yield Env(api, sim, now)


def schedule_points(sim: Simulator, site: str) -> list[str]:
    return sorted(p.name for p in sim.site_by_name[site].collecting if p.kind == "occ_schedule")


@pytest.mark.parametrize("window", WINDOWS, ids=["march", "october"])
async def test_occupied_spans_equal_a_walk_over_the_schedule_samples(
    env: Env, window: tuple[str, str]
) -> None:
    start, end = (parse_time("t", w) for w in window)
    r = await env.ask(site="rhine_lab", start=window[0], end=window[1])
    assert r.status_code == 200, r.text
    body = r.json()
    names = schedule_points(env.sim, "rhine_lab")
    assert len(names) == 2 and body["metadata"]["points"] == names
    per_point = []
    for item in body["schedules"]:
        t, v = env.truth(item["name"], start - LOOKBACK_MS, end)
        want = walk(t, v, start, end)
        assert [tuple(s) for s in item["occupied"]] == want
        per_point.append(want)
    occupied = merged(per_point)
    assert [tuple(s) for s in body["occupied"]] == occupied
    assert body["metadata"]["occupiedMs"] == sum(b - a for a, b in occupied)
    # the modelled hours: weekdays 06:30 to 19:00 Berlin time, on both sides of the
    # change of clocks (the schedule reports within its 5-minute sweep)
    whole = [(a, b) for a, b in occupied if start < a and b < end]  # not cut by the range
    days = {}
    for a, b in whole:
        local_a, local_b = (dt.datetime.fromtimestamp(x / 1000, BERLIN) for x in (a, b))
        days[local_a.date()] = (local_a.time(), local_b.time())
    assert len(days) >= 2 and all(d.weekday() < 5 for d in days)
    assert len(days) == len(whole)  # one span a day
    for day, (opened, closed) in days.items():
        assert dt.time(6, 30) <= opened < dt.time(6, 36), (day, opened)
        assert dt.time(19, 0) <= closed < dt.time(19, 6), (day, closed)


async def test_the_value_at_the_start_is_the_last_sample_before_it(env: Env) -> None:
    """A range starting mid-morning is occupied from its first instant (the schedule's
    last report before the range said so), and one reaching past now stops at now."""
    start, end = parse_time("s", "2026-11-19T10:17:00"), NOW + 6 * 3_600_000
    r = await env.ask(site="rhine_lab", start=format_time(start), end=format_time(end))
    assert r.status_code == 200, r.text
    occupied = [tuple(s) for s in r.json()["occupied"]]
    assert occupied[0][0] == start  # Thursday 11:17 in Berlin: occupied
    assert occupied[-1][1] <= NOW + 1
    names = schedule_points(env.sim, "rhine_lab")
    truths = [env.truth(n, start - LOOKBACK_MS, end) for n in names]
    assert occupied == merged([walk(t, v, start, NOW + 1) for t, v in truths])


async def test_a_site_without_schedule_points_has_no_spans(env: Env) -> None:
    r = await env.ask(site="demo_campus", start="2026-11-16T00:00:00", end="2026-11-18T00:00:00")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["metadata"]["points"] == [] and body["occupied"] == [] and body["schedules"] == []
    assert body["metadata"]["occupiedMs"] == 0


def problem(r: httpx.Response, status: int, param: str | None = None) -> None:
    assert r.status_code == status, r.text[:300]
    assert r.headers["content-type"] == "application/problem+json"
    if param is not None:
        assert r.json()["param"] == param


async def test_junk_revoked_and_foreign_tokens_get_no_spans(env: Env) -> None:
    week = {"site": "rhine_lab", "start": "2026-11-09T00:00:00", "end": "2026-11-16T00:00:00"}
    problem(await env.ask({"Authorization": "Bearer junk"}, **week), 401)
    problem(await env.ask({"Authorization": "Bearer bob"}, **week), 403)
    assert (await env.ask(**week)).status_code == 200  # stored and granted now
    assert env.sim.tokens is not None
    del env.sim.tokens["alice"]  # upstream revokes the token
    env.now[0] += 301_000  # TSGATE_ACCESS_TTL_S passes
    problem(await env.ask(**week), 401)
    # a site without schedule points is checked all the same
    problem(await env.ask(**{**week, "site": "demo_campus"}), 401)


async def test_bad_parameters_are_problems_naming_them(env: Env) -> None:
    day = {"start": "2026-11-16T00:00:00", "end": "2026-11-17T00:00:00"}
    problem(await env.ask(**day), 400, "site")
    problem(await env.ask(site="../etc", **day), 404, "site")  # not a site name
    problem(await env.ask(site="rhine_lab", start="yesterday", end=day["end"]), 400, "start")
    problem(await env.ask(site="rhine_lab", start=day["end"], end=day["start"]), 400, "end")
    problem(
        await env.ask(site="rhine_lab", start="0001-01-01T00:00:00", end="9999-12-31T00:00:00"),
        413,
    )
    problem(await env.ask(site="nowhere_site", **day), 404)


async def test_a_failing_upstream_is_a_problem_not_a_500(env: Env) -> None:
    env.sim.faults.fail_next["500"] = 10_000  # upstream answers nothing but 500s
    r = await env.ask(site="rhine_lab", start="2026-10-01T00:00:00", end="2026-10-02T00:00:00")
    assert r.status_code in (502, 503), r.text[:300]
    assert r.headers["content-type"] == "application/problem+json"


async def test_stored_spans_are_served_while_upstream_fails_to_serve_samples(env: Env) -> None:
    """Settled days already stored answer from the cache while upstream fails to serve
    samples; access is still asked of it once the grant runs out (a revoked token then
    gets nothing)."""
    week = {"site": "rhine_lab", "start": "2026-10-05T00:00:00", "end": "2026-10-12T00:00:00"}
    first = await env.ask(**week)
    assert first.status_code == 200, first.text
    env.sim.faults.fail_next["500"] = 10_000
    again = await env.ask(**week)
    assert again.status_code == 200, again.text
    assert again.json()["occupied"] == first.json()["occupied"] != []
    assert again.headers["X-Cache-Status"] == "HIT"
    env.now[0] += 301_000  # TSGATE_ACCESS_TTL_S passes: access is asked again
    renewed = await env.ask(**week)
    assert renewed.status_code == 200 and renewed.json()["occupied"] == first.json()["occupied"]
    assert env.sim.tokens is not None
    del env.sim.tokens["alice"]
    env.now[0] += 301_000
    problem(await env.ask(**week), 401)


@hsettings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 10_000), st.sampled_from([0.0, 1.0, 2.0, float("nan")])),
        max_size=30,
    ),
    st.integers(-100, 10_100),
    st.integers(0, 12_000),
)
def test_held_spans_equal_the_walk(
    samples: list[tuple[int, float]], start: int, width: int
) -> None:
    """Merged, split or clipped anywhere, the spans are the walk's; and the union of two
    points' spans is the union of the walks."""
    by_time = dict(sorted(samples))
    t = np.array(list(by_time), dtype=np.int64)
    v = np.array(list(by_time.values()), dtype=np.float64)
    stop = start + width
    s = Series("p", t, v)
    got = held_spans(s, start, stop)
    assert got == walk(t.tolist(), v.tolist(), start, stop)
    other = held_spans(Series("q", t + 37, 1.0 - np.nan_to_num(v)), start, stop)
    assert union([got, other]) == merged([got, other])
