"""The observed sampling modes in SQL (SQLite and PostgreSQL): what each stored period
showed, and the mode the periods decide together, the same whatever order they were
written in (``core.kinds.settled_mode`` is the reference)."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsgate.core.kinds import PeriodMode, settled_mode
from tsgate.database import Database, open_database

DAY = 86_400_000
POINTS = ("a", "b", "c")


def test_modes_are_decided_by_the_stored_periods_whatever_their_order() -> None:
    loop = asyncio.new_event_loop()
    db = loop.run_until_complete(open_database("sqlite://", migrate=True))

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        shown=st.dictionaries(
            st.tuples(st.sampled_from(POINTS), st.integers(0, 50)),
            st.sampled_from(["sampled", "cov", None]),
            max_size=40,
        ),
        orders=st.lists(st.randoms(use_true_random=False), min_size=2, max_size=2),
        batch=st.integers(1, 8),
    )
    def check(
        shown: dict[tuple[str, int], str | None], orders: list[random.Random], batch: int
    ) -> None:
        periods = [PeriodMode(p, d * DAY, (d + 1) * DAY, m) for (p, d), m in shown.items()]

        async def written_in(rng: random.Random) -> dict[str, str]:
            site = f"s-{uuid.uuid4().hex[:8]}"
            again = periods + rng.sample(periods, len(periods) // 3)  # some read twice
            rng.shuffle(again)
            for i in range(0, len(again), batch):
                await db.modes.put(site, again[i : i + batch], now_ms=0)
            return await db.modes.get(site, POINTS)

        found = [loop.run_until_complete(written_in(rng)) for rng in orders]
        want = {
            name: mode
            for name in POINTS
            if (
                mode := settled_mode(
                    [(p.start_ms, p.end_ms, p.mode) for p in periods if p.point == name and p.mode]
                )
            )
        }
        assert found[0] == found[1] == want

    try:
        check()
    finally:
        loop.run_until_complete(db.aclose())
        loop.close()


@pytest.mark.anyio
async def test_a_period_written_again_replaces_what_it_and_its_days_showed(db: Database) -> None:
    site = "campus"
    week = [PeriodMode("p", d * DAY, (d + 1) * DAY, "cov") for d in range(3)]
    await db.modes.put(site, week, now_ms=0)
    assert await db.modes.get(site, ["p"]) == {"p": "cov"}
    # the days re-read with more samples: heartbeats after all
    await db.modes.put(site, [p._replace(mode="sampled") for p in week[:2]], now_ms=1)
    assert await db.modes.get(site, ["p"]) == {"p": "sampled"}  # two days against one
    # the month folded from them shows neither: nothing is left to decide
    await db.modes.put(site, [PeriodMode("p", 0, 31 * DAY, None)], now_ms=2)
    assert await db.modes.get(site, ["p"]) == {}
    # a period far older than the four weeks the latest one decides with does not count
    await db.modes.put(site, [PeriodMode("p", 100 * DAY, 101 * DAY, "cov")], now_ms=3)
    await db.modes.put(site, [PeriodMode("p", 10 * DAY, 40 * DAY, "sampled")], now_ms=4)
    assert await db.modes.get(site, ["p"]) == {"p": "cov"}
