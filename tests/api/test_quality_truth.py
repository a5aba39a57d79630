"""``GET /api/quality`` against a brute-force pass over ``Simulator.truth``, over random
windows of one long-lived instance (later windows reuse what earlier ones cached and
kept), with a gateway outage so that gaps fall on window edges, and points that have no
samples at all."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.clock import NOW
from tests.instance import SITE, Harness
from tests.simtruth import HELD_KINDS, sim_gap_ms, walk_gaps
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE
from tsgate.upstream.visibility import Outage
from tsgate.wire.ace import format_time, parse_time

OUTAGE = (NOW - 5 * MS_PER_DAY + 7 * MS_PER_HOUR + 123_456, NOW - 4 * MS_PER_DAY + 41_000)
EARLIEST = NOW - 8 * MS_PER_DAY
CADENCE_MS = 300_000
ADMIN_KEY = "quality-admin"


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(tmp_path_factory.mktemp("quality-truth"), admin_key=ADMIN_KEY)
    site = h.sim.site_by_name[SITE]
    h.sim.faults.outages = [
        Outage(*OUTAGE, backlog_ms=None, site=SITE, points=tuple(p.name for p in site.points[:40]))
    ]
    try:
        h.run(h.read_polled_history(pool(h), EARLIEST - MS_PER_DAY, NOW + MS_PER_DAY))
        yield h
    finally:
        h.close()


def pool(h: Harness) -> list[str]:
    """Points of the outage's gateway and of others, and some that do not collect (no
    samples)."""
    site = h.sim.site_by_name[SITE]
    collecting = [p.name for p in site.collecting]
    idle = [p.name for p in site.points if not p.collect][:3]
    return collecting[:6] + collecting[-6:] + idle


@dataclass(frozen=True)
class Figures:
    samples: int
    expected: int
    longest: int
    last: int | None
    stale_ms: int | None
    stale: bool
    flat: int
    out: int
    hours: int
    gaps: int = 0  # silences longer than the point's gap limit
    gap_ms: int = 0
    coverage: float = 0.0  # rounded to 1e-9


def brute(
    t_us: np.ndarray[Any, Any],
    v: np.ndarray[Any, Any],
    span: tuple[int, int],
    now: int,
    tolerance: float,
    bounds: tuple[float | None, float | None],
    kind: str = "",
    collects: bool = True,
) -> Figures:
    """Every figure the way the documentation defines it, sample by sample; ``kind``:
    the simulator point's (its gap limit, and whether its value holds), ``collects``
    whether it reports at all (a polled point's cadence is observed once it does)."""
    start, end = span
    t = t_us // 1000
    keep = ~np.isnan(v)
    t, v = t[keep], v[keep]
    until = max(start, min(end, now + 1))
    expected = (until - start) // CADENCE_MS
    limit = sim_gap_ms(kind, collects=collects)
    held = kind in HELD_KINDS
    hours = t // MS_PER_HOUR
    # silences into another hour and at the range's ends (one inside an hour: not seen)
    seen = [
        (a, b)
        for a, b in walk_gaps(t.tolist(), (start, until), -1)
        if a == start or b == until or a // MS_PER_HOUR != b // MS_PER_HOUR
    ]
    long = [b - a for a, b in seen if b - a > limit]
    if t.size == 0:  # missing: no coverage to speak of
        coverage = 0.0 if expected else 100.0
    elif held:
        coverage = 100.0 * (1.0 - sum(long) / max(1, until - start)) if until > start else 100.0
    else:
        coverage = 100.0 if expected <= 0 else min(100.0, 100.0 * t.size / expected)
    in_gaps = (len(long), sum(long), round(coverage, 9))
    if t.size == 0:
        return Figures(0, expected, until - start, None, None, end > now, 0, 0, 0, *in_gaps)
    gaps = [int(t[0]) - start, until - int(t[-1])]
    pairs = zip(t[:-1], t[1:], hours[:-1], hours[1:], strict=True)
    gaps += [int(b - a) for a, b, x, y in pairs if x != y]  # within an hour: not seen
    flat = out = 0
    for hour in np.unique(hours):
        values = v[hours == hour]
        flat += int(values.size >= 2 and float(np.ptp(values)) <= tolerance)
        low, high = bounds
        out += int(
            (low is not None and values.min() < low) or (high is not None and values.max() > high)
        )
    stale_ms = until - int(t[-1]) if end > now else None
    return Figures(
        int(t.size),
        expected,
        max(gaps),
        int(t[-1]),
        stale_ms,
        stale_ms is not None and stale_ms > limit,
        flat,
        out,
        int(np.unique(hours).size),
        *in_gaps,
    )


def kind_of(h: Harness, name: str) -> str:
    return h.sim.site_by_name[SITE].by_name[name].kind


def figures_of(item: dict[str, Any]) -> Figures:
    last = item["lastTime"]
    return Figures(
        item["samples"],
        item["expected"],
        item["longestGapMs"],
        None if last is None else parse_time("t", last),
        item["staleMs"],
        item["stale"],
        item["flatlineHours"],
        item["outOfRangeHours"],
        item["hours"],
        item["gaps"],
        item["gapMs"],
        round(item["coveragePct"], 9),
    )


edges = st.one_of(
    st.sampled_from([OUTAGE[0], OUTAGE[1], OUTAGE[0] - 1, OUTAGE[1] + 1]),
    st.integers(EARLIEST, NOW + MS_PER_HOUR),
    st.integers(EARLIEST // MS_PER_HOUR, NOW // MS_PER_HOUR).map(lambda x: x * MS_PER_HOUR),
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    a=edges,
    b=edges,
    length=st.sampled_from([None, MS_PER_MINUTE, 59 * MS_PER_MINUTE, MS_PER_HOUR + 1]),
    chosen=st.lists(st.integers(0, 14), min_size=1, max_size=6, unique=True),
    tolerance=st.sampled_from([0.0, 0.05, 2.0]),
    bounds=st.sampled_from([(None, None), (66.0, 72.5), (None, 0.5)]),
)
def test_quality_equals_a_pass_over_the_truth(
    harness: Harness,
    a: int,
    b: int,
    length: int | None,
    chosen: list[int],
    tolerance: float,
    bounds: tuple[float | None, float | None],
) -> None:
    h = harness
    start, end = (a, a + length) if length else (min(a, b), max(a, b))
    if end <= start:
        end = start + 1
    names = [pool(h)[i] for i in chosen]
    query = {
        "site": SITE,
        "points": ",".join(names),
        "start": format_time(start),
        "end": format_time(end),
        "flat_tolerance": str(tolerance),
        **({"low": str(bounds[0])} if bounds[0] is not None else {}),
        **({"high": str(bounds[1])} if bounds[1] is not None else {}),
    }

    async def check() -> None:
        # twice: the second answer comes from the kept hour frame where its rows are final
        for _ in range(2):
            r = await h.call("/api/quality", query)
            assert r.status_code == 200, r.text
            body = r.json()
            now = parse_time("now", body["metadata"]["now"])
            assert [p["name"] for p in body["points"]] == names
            for item in body["points"]:
                t_us, v = h.sim.truth(item["name"], start, end)
                point = h.sim.site_by_name[SITE].by_name[item["name"]]
                want = brute(
                    t_us, v, (start, end), now, tolerance, bounds, point.kind, point.collect
                )
                assert item["gapLimitMs"] == sim_gap_ms(point.kind, collects=point.collect)
                assert figures_of(item) == want, (
                    item["name"],
                    format_time(start),
                    format_time(end),
                )
                assert item["missing"] == (want.samples == 0)

    h.run(check())


def test_a_final_window_is_kept_and_a_data_change_reads_it_again(harness: Harness) -> None:
    """Settled days are served from the kept frame; an invalidation moves the site's data
    generation, so the next answer reads the rollups again and still equals the truth."""
    h = harness
    names = pool(h)[6:12]
    # days more than the re-check schedule (7 days) back, read whole: every day final
    days = (NOW // MS_PER_DAY - 11) * MS_PER_DAY, (NOW // MS_PER_DAY - 9) * MS_PER_DAY
    start, end = days[0] + 17 * MS_PER_MINUTE, days[1] - 1
    query = {
        "site": SITE,
        "points": ",".join(names),
        "start": format_time(start),
        "end": format_time(end),
    }

    async def check() -> None:
        whole = {**query, "start": format_time(days[0]), "end": format_time(days[1])}
        assert (await h.call("/api/quality", whole)).status_code == 200
        first = await h.call("/api/quality", query)
        again = await h.call("/api/quality", query)
        assert first.status_code == again.status_code == 200
        assert again.headers["X-Cache-Source"] == "MEMORY"
        assert again.json()["points"] == first.json()["points"]
        r = await h.api.post(
            "/api/cache/invalidate",
            json={"site": SITE, "points": names},
            headers={"X-Admin-Key": ADMIN_KEY},
        )
        assert r.status_code == 200, r.text
        fresh = await h.call("/api/quality", query)
        assert fresh.status_code == 200
        assert fresh.headers["X-Cache-Source"] != "MEMORY"
        now = parse_time("now", fresh.json()["metadata"]["now"])
        for item in fresh.json()["points"]:
            t_us, v = h.sim.truth(item["name"], start, end)
            assert figures_of(item) == brute(
                t_us, v, (start, end), now, 0.0, (None, None), kind_of(h, item["name"])
            )

    h.run(check())


def test_a_late_backlog_after_a_kept_answer_is_in_the_next(harness: Harness) -> None:
    """Hours of a day awaiting its re-check are read again every time: when its gateway
    uploads the backlog and the re-check is due, the next answer has the samples."""
    h = harness
    names = [p.name for p in h.sim.site_by_name[SITE].collecting[20:23]]
    day = (NOW // MS_PER_DAY - 2) * MS_PER_DAY
    gap = (day + 3 * MS_PER_HOUR, day + 6 * MS_PER_HOUR)
    h.sim.faults.outages = [
        *h.sim.faults.outages,
        Outage(*gap, backlog_ms=NOW + MS_PER_HOUR, site=SITE, points=tuple(names)),
    ]
    query = {
        "site": SITE,
        "points": ",".join(names),
        "start": format_time(day - MS_PER_DAY),
        "end": format_time(day + MS_PER_DAY),
    }

    judged: list[str] = []

    async def answer() -> list[dict[str, Any]]:
        r = await h.call("/api/quality", query)  # the clock moves on between calls
        assert r.status_code == 200, r.text[:300]
        judged.append(r.json()["metadata"]["now"])
        body = r.json()
        now = parse_time("now", body["metadata"]["now"])
        for item in body["points"]:
            t_us, v = h.sim.truth(item["name"], day - MS_PER_DAY, day + MS_PER_DAY)
            span = (day - MS_PER_DAY, day + MS_PER_DAY)
            assert figures_of(item) == brute(
                t_us, v, span, now, 0.0, (None, None), kind_of(h, item["name"])
            )
        points: list[dict[str, Any]] = body["points"]
        return points

    async def check() -> None:
        before = [await answer(), await answer()][1]
        assert judged[0] == judged[1]  # the kept answer: nothing can change before the re-check
        assert all(p["longestGapMs"] >= gap[1] - gap[0] for p in before)
        h.clock.ms = NOW + 37 * MS_PER_HOUR  # the backlog is up, the re-check due
        after = await answer()
        assert judged[-1] != judged[0]  # judged anew
        assert all(p["longestGapMs"] < gap[1] - gap[0] for p in after)
        assert all(a["samples"] > b["samples"] for a, b in zip(after, before, strict=True))

    try:
        h.run(check())
    finally:
        h.clock.ms = NOW
        h.sim.faults.outages = h.sim.faults.outages[:1]


def test_a_window_not_final_is_kept_until_its_samples_could_change(harness: Harness) -> None:
    """Days with holes (the outage) await a re-check: their kept rows are served until
    it is due without reading the store again, and equal the truth each time; a range
    reaching now is kept only for the open TTL, then read again with what arrived."""
    h = harness
    names = pool(h)[:4]  # of the outage's gateway: their days have holes
    span = (OUTAGE[0] - MS_PER_DAY, OUTAGE[1] + MS_PER_DAY)
    live = (NOW - 6 * MS_PER_HOUR, NOW + MS_PER_HOUR)

    def query(start: int, end: int) -> dict[str, str]:
        return {
            "site": SITE,
            "points": ",".join(names),
            "start": format_time(start),
            "end": format_time(end),
        }

    async def answer(start: int, end: int) -> tuple[str, list[dict[str, Any]]]:
        r = await h.call("/api/quality", query(start, end))
        assert r.status_code == 200, r.text[:300]
        body = r.json()
        now = parse_time("now", body["metadata"]["now"])
        for item in body["points"]:
            t_us, v = h.sim.truth(item["name"], start, end)
            assert figures_of(item) == brute(t_us, v, (start, end), now, 0.0, (None, None))
        points: list[dict[str, Any]] = body["points"]
        return r.headers["X-Cache-Source"], points

    async def check() -> None:
        first, _ = await answer(*span)
        assert first != "MEMORY"
        for shorter in (1, 2):  # other ranges (no kept answer) over the same kept hours
            source, _ = await answer(span[0], span[1] - shorter)
            assert source == "MEMORY"  # not final, but nothing can change before the re-check
        await answer(*live)
        h.clock.ms = NOW + 10 * MS_PER_MINUTE  # past the open TTL: new samples arrived
        source, after = await answer(*live)
        assert source != "MEMORY"
        assert all(p["lastTime"] is not None for p in after)
        assert max(parse_time("t", p["lastTime"]) for p in after) > NOW

    try:
        h.run(check())
    finally:
        h.clock.ms = NOW
