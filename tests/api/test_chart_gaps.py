"""The chart answer's ``metadata.gaps`` against the gaps of ``Simulator.truth``: exact
from raw samples, and from buckets every gap between two buckets (so every gap longer
than a bucket), over random windows around a gateway outage."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.clock import NOW
from tests.instance import SITE, Harness
from tests.simtruth import sim_gap_ms, walk_gaps
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE
from tsgate.upstream.visibility import Outage

OUTAGE = (NOW - 2 * MS_PER_DAY + 5 * MS_PER_HOUR + 654_321, NOW - 2 * MS_PER_DAY + 9 * MS_PER_HOUR)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(tmp_path_factory.mktemp("chart-gaps"))
    names = tuple(p.name for p in h.sim.site_by_name[SITE].points[:30])
    h.sim.faults.outages = [Outage(*OUTAGE, backlog_ms=None, site=SITE, points=names)]
    try:
        collecting = [p.name for p in h.sim.site_by_name[SITE].collecting[:43]]
        h.run(h.read_polled_history(collecting, NOW - 4 * MS_PER_DAY, NOW + MS_PER_HOUR))
        yield h
    finally:
        h.close()


def true_gaps(h: Harness, name: str, start: int, end: int) -> list[tuple[int, int, bool]]:
    """Every span longer than the point's gap limit without a sample, and whether its two
    ends lie in different hours (or at the range's ends)."""
    t_us, v = h.sim.truth(name, start, end)
    t = (t_us // 1000)[~np.isnan(v)]
    until = max(start, min(end, h.clock.ms + 1))
    limit = sim_gap_ms(h.sim.site_by_name[SITE].by_name[name].kind)
    return [
        (a, b, a == start or b == until or a // MS_PER_HOUR != b // MS_PER_HOUR)
        for a, b in walk_gaps(t.tolist(), (start, until), limit)
    ]


def listed(body: dict[str, Any], name: str) -> list[tuple[int, int]]:
    return [(s, e) for s, e in body["metadata"]["gaps"].get(name, [])]


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    start=st.one_of(st.just(OUTAGE[0] + 1), st.integers(NOW - 3 * MS_PER_DAY, NOW - MS_PER_HOUR)),
    length=st.integers(MS_PER_MINUTE, 2 * MS_PER_DAY),
    first=st.integers(0, 40),
)
def test_chart_gaps_equal_the_truth(harness: Harness, start: int, length: int, first: int) -> None:
    h = harness
    end = start + length
    names = [p.name for p in h.sim.site_by_name[SITE].collecting[first : first + 3]]

    async def check() -> None:
        raw = await h.get("/api/timeseries", names, start, end)
        hourly = await h.get("/api/timeseries", names, start, end, interval="1h", agg="avg")
        m4 = await h.get("/api/timeseries", names, start, end, max_points="400")
        for name in names:
            truth = true_gaps(h, name, start, end)
            assert listed(raw, name) == [(a, b) for a, b, _ in truth]
            assert listed(hourly, name) == [(a, b) for a, b, apart in truth if apart]
            # M4 buckets are whole hours or wider: what it lists is true, and every gap
            # longer than its bucket is there
            served = m4["metadata"]["interval"]
            if served == "raw":  # short ranges are downsampled from raw samples
                assert listed(m4, name) == [(a, b) for a, b, _ in truth]
                continue
            width = int(served.removeprefix("m4:").removesuffix("ms"))
            got = set(listed(m4, name))
            assert got <= {(a, b) for a, b, _ in truth}
            assert {(a, b) for a, b, _ in truth if b - a > width} <= got

    h.run(check())


def test_a_point_without_samples_is_one_gap_up_to_now(harness: Harness) -> None:
    h = harness
    idle = next(p.name for p in h.sim.site_by_name[SITE].points if not p.collect)
    start, end = NOW - 6 * MS_PER_HOUR, NOW + MS_PER_HOUR

    async def check() -> None:
        body = await h.get("/api/timeseries", [idle], start, end, interval="1h", agg="avg")
        assert listed(body, idle) == [(start, h.clock.ms + 1)]

    h.run(check())
