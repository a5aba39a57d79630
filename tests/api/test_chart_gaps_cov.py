"""Gap bands of points reporting on change (COV, binary, multistate) against
``Simulator.truth``: a silence up to 1.5 hourly heartbeats is the value holding, not
missing data; the charts' gaps equal a brute-force walk over the true samples with each
point's own limit, on every chart form, and ``/api/quality`` counts the same gaps. A
sampled point that goes stale still shows its gap."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.clock import NOW
from tests.instance import Harness
from tests.simtruth import HELD_GAP_MS, SAMPLED_GAP_MS, sim_gap_ms, walk_gaps
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE
from tsgate.upstream.campus import SimPoint

SITES = ("rhine_lab", "pune_clinic")  # the simulator's sites with building points
KINDS = ("ahu_mode", "occ_schedule", "compressor", "zone_temp_cov", "stale_rh")
EARLIEST = NOW - 4 * MS_PER_DAY


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(tmp_path_factory.mktemp("chart-gaps-cov"))
    try:
        yield h
    finally:
        h.close()


def points(h: Harness, site: str) -> list[SimPoint]:
    """One point of each building kind of ``site``."""
    found = {p.kind: p for p in reversed(h.sim.site_by_name[site].collecting) if p.kind in KINDS}
    return [found[k] for k in KINDS]


async def chart(
    h: Harness, site: str, names: list[str], span: tuple[int, int], **params: str
) -> Any:
    return await h.get("/api/timeseries", names, *span, site=site, **params)


async def quality_of(
    h: Harness, site: str, names: list[str], span: tuple[int, int]
) -> dict[str, Any]:
    """Each point's row of ``/api/quality`` over ``span``, by name."""
    body = await h.get("/api/quality", names, *span, site=site)
    return {item["name"]: item for item in body["points"]}


def truth_gaps(h: Harness, p: SimPoint, span: tuple[int, int], mode: str) -> list[tuple[int, int]]:
    t_us, v = h.sim.truth(p.name, *span)
    t = (t_us // 1000)[~np.isnan(v)]
    until = max(span[0], min(span[1], h.clock.ms + 1))
    return walk_gaps(t.tolist(), (span[0], until), sim_gap_ms(p.kind, mode))


def listed(body: dict[str, Any], name: str) -> list[tuple[int, int]]:
    return [(a, b) for a, b in body["metadata"]["gaps"].get(name, [])]


def across_hours(
    gaps: list[tuple[int, int]], span: tuple[int, int], until: int
) -> list[tuple[int, int]]:
    return [
        (a, b)
        for a, b in gaps
        if a == span[0] or b == until or a // MS_PER_HOUR != b // MS_PER_HOUR
    ]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    site=st.sampled_from(SITES),
    start=st.integers(EARLIEST, NOW - MS_PER_HOUR),
    length=st.integers(MS_PER_MINUTE, 2 * MS_PER_DAY),
)
def test_gaps_equal_a_walk_over_the_truth_with_each_points_rule(
    harness: Harness, site: str, start: int, length: int
) -> None:
    h = harness
    span = (start, start + length)
    chosen = points(h, site)
    names = [p.name for p in chosen]

    async def check() -> None:
        raw = await chart(h, site, names, span)
        hourly = await chart(h, site, names, span, interval="1h", agg="avg")
        m4 = await chart(h, site, names, span, max_points="400")
        quality = await quality_of(h, site, names, span)
        until = max(span[0], min(span[1], h.clock.ms + 1))
        modes = {s["name"]: s["mode"] for s in raw["series"]}
        for p in chosen:
            if p.kind != "zone_temp_cov":  # its mode is observed: either is a fair call
                assert modes[p.name] == (
                    "cov" if p.kind in ("ahu_mode", "occ_schedule", "compressor") else "sampled"
                )
            truth = truth_gaps(h, p, span, modes[p.name])
            assert listed(raw, p.name) == truth, p.kind
            between = across_hours(truth, span, until)
            assert listed(hourly, p.name) == between, p.kind
            served = m4["metadata"]["interval"]
            if served == "raw":
                assert listed(m4, p.name) == truth
            else:
                width = int(served.removeprefix("m4:").removesuffix("ms"))
                got = set(listed(m4, p.name))
                assert got <= set(truth)
                assert {(a, b) for a, b in truth if b - a > width} <= got
            # the quality table and the chart never disagree: the same gaps, the same time
            # (an observed mode is as observed when asked: more stored periods may say
            # otherwise by then, so each answer is held to the mode it reports)
            item = quality[p.name]
            assert item["gapLimitMs"] == sim_gap_ms(p.kind, item["mode"])
            if item["mode"] == modes[p.name]:
                assert (item["gaps"], item["gapMs"]) == (
                    len(between),
                    sum(b - a for a, b in between),
                ), p.kind
            else:
                ruled = across_hours(truth_gaps(h, p, span, item["mode"]), span, until)
                assert (item["gaps"], item["gapMs"]) == (
                    len(ruled),
                    sum(b - a for a, b in ruled),
                ), p.kind

    h.run(check())


def test_a_quiet_cov_point_is_held_not_shaded(harness: Harness) -> None:
    """Two days of a schedule point: under the old 15-minute rule nearly every quiet hour
    was a gap; its bands are now only the silences longer than 1.5 heartbeats."""
    h = harness
    site = SITES[0]
    schedule = next(p for p in points(h, site) if p.kind == "occ_schedule")
    span = (NOW - 3 * MS_PER_DAY, NOW - MS_PER_DAY)

    async def check() -> None:
        body = await chart(h, site, [schedule.name], span)
        t_us, v = h.sim.truth(schedule.name, *span)
        t = (t_us // 1000)[~np.isnan(v)].tolist()
        quiet_hours = walk_gaps(t, span, SAMPLED_GAP_MS)
        assert len(quiet_hours) > 20  # what the old rule shaded
        assert listed(body, schedule.name) == walk_gaps(t, span, HELD_GAP_MS)
        assert len(listed(body, schedule.name)) < len(quiet_hours) / 4
        (series,) = body["series"]
        assert series["mode"] == "cov"  # the page draws it as a held step

    h.run(check())


def test_a_stale_sampled_point_still_shows_its_gap(harness: Harness) -> None:
    h = harness
    found = None
    for site in SITES:
        rh = next(p for p in points(h, site) if p.kind == "stale_rh")
        for day in range(1, 10):
            span = (NOW - (day + 1) * MS_PER_DAY, NOW - day * MS_PER_DAY)
            t_us, v = h.sim.truth(rh.name, *span)
            t = (t_us // 1000)[~np.isnan(v)].tolist()
            long = [g for g in walk_gaps(t, span, SAMPLED_GAP_MS) if g[1] - g[0] > 2 * MS_PER_HOUR]
            if long:
                found = site, rh, span, walk_gaps(t, span, SAMPLED_GAP_MS)
                break
        if found:
            break
    assert found is not None, "the simulator makes some stale_rh point go quiet for hours"
    site, rh, span, want = found

    async def check() -> None:
        body = await chart(h, site, [rh.name], span)
        assert listed(body, rh.name) == want
        (item,) = (await quality_of(h, site, [rh.name], span)).values()
        assert item["gapLimitMs"] == SAMPLED_GAP_MS and item["gaps"] >= 1

    h.run(check())


def test_a_configured_floor_raises_the_limit_for_chart_and_quality_alike(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """``TSGATE_COV_GAP_FLOOR_S`` of 3 hours: a point reporting on change is a gap only
    after 3 hours of silence, on the chart and in the quality table; a sampled point keeps
    its cadence's limit."""
    floor_ms = 3 * MS_PER_HOUR
    h = Harness(tmp_path_factory.mktemp("cov-floor"), cov_gap_floor_s=floor_ms / 1000)
    try:
        site = SITES[1]
        chosen = [p for p in points(h, site) if p.kind in ("ahu_mode", "compressor", "stale_rh")]
        names = [p.name for p in chosen]
        span = (NOW - 3 * MS_PER_DAY, NOW - MS_PER_DAY)

        async def check() -> None:
            hourly = await chart(h, site, names, span, interval="1h", agg="avg")
            quality = await quality_of(h, site, names, span)
            for p in chosen:
                limit = SAMPLED_GAP_MS if p.kind == "stale_rh" else floor_ms
                t_us, v = h.sim.truth(p.name, *span)
                t = (t_us // 1000)[~np.isnan(v)].tolist()
                between = across_hours(walk_gaps(t, span, limit), span, span[1])
                assert listed(hourly, p.name) == between, p.kind
                item = quality[p.name]
                assert item["gapLimitMs"] == limit
                assert (item["gaps"], item["gapMs"]) == (
                    len(between),
                    sum(b - a for a, b in between),
                )

        h.run(check())
    finally:
        h.close()
