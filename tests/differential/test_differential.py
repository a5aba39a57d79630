"""Every read path against the simulator's truth, over random overlapping windows.

Each scenario draws plans of queries with hypothesis (seeded from the scenario's name:
the same plans on every run; ``DIFF_EXAMPLES`` scales how many), runs each plan on a
fresh tsgate, and compares every answer with ``Simulator.truth`` at the same clock.
All divergences of a scenario are collected, printed in the terminal summary, and fail
the test at the end.
"""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from tests.clock import NOW, Clock
from tests.differential.harness import (
    DAY_MS,
    HOUR_MS,
    PATHS,
    Harness,
    Tally,
    assert_no_divergence,
    check,
    diff_settings,
    tally,
)
from tsgate.upstream.simulator import Simulator, create_simulator
from tsgate.upstream.visibility import Outage
from tsgate.wire.ace import parse_time

pytestmark = [pytest.mark.slow, pytest.mark.differential]

SEED = 11
SCALE = float(os.environ.get("DIFF_EXAMPLES", "1"))
MINUTE_MS = 60_000
ANCHORS = (
    parse_time("t", "2025-01-01T00:00:00"),  # a year boundary
    parse_time("t", "2025-04-01T00:00:00"),  # a month boundary
    parse_time("t", "2025-11-01T00:00:00"),
    NOW - DAY_MS,  # the last settled day
    NOW - 3 * HOUR_MS,
    NOW,  # windows ending now, or in the future
)
LENGTHS = (5 * MINUTE_MS, HOUR_MS, 6 * HOUR_MS, DAY_MS, 3 * DAY_MS, 10 * DAY_MS, 40 * DAY_MS)


@dataclass(frozen=True)
class Query:
    path: str
    first: int  # the points: POOL[first : first + count]
    count: int
    start_ms: int  # relative to the clock when ``live``
    end_ms: int
    live: bool
    seed: int

    def window(self, now_ms: int) -> tuple[int, int]:
        if self.live:
            return now_ms + self.start_ms, now_ms + self.end_ms
        return self.start_ms, self.end_ms


def pool(sim: Simulator) -> list[str]:
    return [p.name for p in sim.site_by_name["elm_school"].collecting]


@st.composite
def queries(draw: st.DrawFn, *, live: bool = False, anchors: tuple[int, ...] = ANCHORS) -> Query:
    path = draw(st.sampled_from(PATHS))
    align = draw(st.sampled_from([1, 1_000, MINUTE_MS, HOUR_MS, DAY_MS]))
    length = draw(st.sampled_from(LENGTHS)) + draw(st.sampled_from([0, 0, 1, 37_123, -1]))
    big = path not in ("per_point", "paginated_all") and draw(st.integers(0, 4)) == 0
    count = 45 if big else draw(st.integers(1, 3))  # 45 points: the site stream pays
    if big or path == "paginated_all":
        length = min(length, DAY_MS if big else 3 * HOUR_MS)
    first = draw(st.integers(0, 50))
    seed = draw(st.integers(0, 2**31))
    if live:  # a dashboard window ending now (or a little ahead)
        end = draw(st.sampled_from([1, 1, 0, 5 * MINUTE_MS, HOUR_MS]))
        return Query(path, first, count, end - length, end, True, seed)
    start = (draw(st.sampled_from(anchors)) + draw(st.integers(-2 * DAY_MS, 2 * DAY_MS))) // align
    return Query(path, first, count, start * align, start * align + length, False, seed)


Plan = list[Query]
Body = Callable[[Harness, Plan], Awaitable[None]]


def plans(live: bool = False, anchors: tuple[int, ...] = ANCHORS) -> st.SearchStrategy[Plan]:
    return st.lists(queries(live=live, anchors=anchors), min_size=4, max_size=9)


async def run_query(h: Harness, q: Query) -> None:
    names = pool(h.sim)[q.first : q.first + q.count]
    start, end = q.window(h.clock.ms)
    await check(h, q.path, names, start, end, random.Random(q.seed))


async def run_plan(h: Harness, plan: Plan, *, step_ms: tuple[int, int] = (61_000, 600_000)) -> None:
    """The queries in order, the clock moving on between them (past the open TTL, so no
    answer is legitimately stale)."""
    rng = random.Random(len(plan))
    for q in plan:
        h.clock.ms += rng.randint(*step_ms)
        await run_query(h, q)


def scenario(
    name: str,
    body: Body,
    *,
    examples: int,
    strategy: st.SearchStrategy[Plan] | None = None,
    setup: Callable[[Simulator, Clock], None] | None = None,
) -> Tally:
    """Run ``body`` on a fresh tsgate per drawn plan; return the scenario's tally."""
    t = tally(name)

    @settings(
        max_examples=max(1, round(examples * SCALE)),
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: every divergence is kept
        suppress_health_check=list(HealthCheck),
    )
    @seed(zlib.crc32(name.encode()))  # each scenario its own plans, the same every run
    @given(plan=strategy if strategy is not None else plans())
    def one(plan: Plan) -> None:
        t.plans.append(plan)

        async def go() -> None:
            clock = Clock(NOW)
            sim = create_simulator(seed=SEED, now_ms=clock)
            if setup is not None:
                setup(sim, clock)
            with tempfile.TemporaryDirectory() as folder:
                async with Harness.open(sim, clock, diff_settings(Path(folder)), t) as h:
                    await body(h, plan)

        asyncio.run(go())

    one()
    return t


# ---- the scenarios ------------------------------------------------------------------


def test_random_overlapping_windows_on_every_read_path() -> None:
    assert_no_divergence(scenario("random windows", run_plan, examples=8))


def test_a_live_dashboard_with_a_visibility_delay() -> None:
    def delayed(sim: Simulator, clock: Clock) -> None:
        sim.faults.visibility_delay_s = 20
        sim.faults.visibility_jitter_s = 160  # samples arrive 20 s – 3 min late

    async def body(h: Harness, plan: Plan) -> None:
        await run_plan(h, plan, step_ms=(61_000, 240_000))

    t = scenario(
        "visibility delay (live edge)", body, examples=4, strategy=plans(live=True), setup=delayed
    )
    assert_no_divergence(t)


OUTAGE_END = NOW - 2 * DAY_MS
OUTAGE = (OUTAGE_END - 3 * DAY_MS, OUTAGE_END)  # 72 h offline
BACKLOG = OUTAGE_END + 6 * HOUR_MS  # uploaded 6 h after the gateway is back
RECHECKS_MS = (0, 2 * HOUR_MS, 6 * HOUR_MS, DAY_MS, 3 * DAY_MS, 7 * DAY_MS, 8 * DAY_MS)


def test_a_gateway_outage_whose_backlog_arrives_later() -> None:
    def outage(sim: Simulator, clock: Clock) -> None:
        names = tuple(pool(sim)[:30])  # one gateway's points
        sim.faults.outages = [Outage(*OUTAGE, backlog_ms=BACKLOG, points=names)]

    async def body(h: Harness, plan: Plan) -> None:
        h.clock.ms = OUTAGE_END + HOUR_MS  # back online, backlog not yet uploaded
        await run_plan(h, plan, step_ms=(61_000, 120_000))
        for after in RECHECKS_MS:  # the re-check schedule runs past the upload
            h.clock.ms = BACKLOG + after
            await h.maintenance()
        for q in plan:
            await run_query(h, q)

    anchors = (OUTAGE[0], OUTAGE_END, BACKLOG)
    t = scenario(
        "outage with late backlog", body, examples=3, strategy=plans(anchors=anchors), setup=outage
    )
    assert_no_divergence(t)


def _twice(damage: Callable[[Harness], Awaitable[None]]) -> Body:
    """Cache the plan's ranges, ``damage`` the cache, then ask everything again."""

    async def body(h: Harness, plan: Plan) -> None:
        await run_plan(h, plan)
        await damage(h)
        h.clock.ms += 61_000
        for q in plan:
            await run_query(h, q)

    return body


def test_lost_objects_are_fetched_again() -> None:
    async def lose(h: Harness) -> None:
        h.delete_objects()

    t = scenario("lost objects", _twice(lose), examples=3)
    assert t.damaged > 0, "no object was deleted: the scenario tests nothing"
    assert_no_divergence(t)


def test_corrupt_objects_are_fetched_again() -> None:
    async def corrupt(h: Harness) -> None:
        h.corrupt_objects()
        await h.restart()  # no decoded copy in memory hides the damage

    t = scenario("corrupt objects", _twice(corrupt), examples=3)
    assert t.damaged > 0, "no object was corrupted: the scenario tests nothing"
    assert_no_divergence(t)


def test_a_restart_on_the_same_folder_and_database() -> None:
    async def restart(h: Harness) -> None:
        await h.restart()

    assert_no_divergence(scenario("restart", _twice(restart), examples=3))


def test_concurrent_readers_of_overlapping_windows() -> None:
    async def body(h: Harness, plan: Plan) -> None:
        h.clock.ms += 61_000
        await asyncio.gather(*(run_query(h, q) for q in plan))  # cold, all at once
        h.clock.ms += 61_000
        await asyncio.gather(*(run_query(h, q) for q in reversed(plan)))

    assert_no_divergence(scenario("concurrent readers", body, examples=3))
