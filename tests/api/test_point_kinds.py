"""Point kinds and sampling modes in point search, chart series and quality, against the
simulator's own model of each point; ``TSGATE_POINT_KINDS`` overrides them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.clock import NOW, Clock
from tests.instance import SITE, Harness
from tsgate.core.model import MS_PER_DAY
from tsgate.core.quality import gaps
from tsgate.upstream.simulator import create_simulator
from tsgate.wire.ace import format_time


def modelled(sim_kind: str) -> tuple[str, str]:
    """What the simulator's model says a point is: statuses and occupancy are on/off."""
    binary = sim_kind.endswith("status") or sim_kind == "occupancy"
    return ("binary", "cov") if binary else ("analog", "sampled")


# one analog point made multistate, one binary point made sampled, by configuration
_SITE = create_simulator(seed=5, now_ms=Clock(NOW)).site_by_name[SITE]
ANALOG = next(p.name for p in _SITE.collecting if modelled(p.kind)[0] == "analog")
BINARY = next(p.name for p in _SITE.collecting if modelled(p.kind)[0] == "binary")
OVERRIDDEN = {ANALOG: ("multistate", "cov"), BINARY: ("binary", "sampled")}
# change-of-value analog points of a building (no tag says so): one forced to sampled
_LAB = create_simulator(seed=5, now_ms=Clock(NOW)).site_by_name["rhine_lab"]
COV_POINTS = [p.name for p in _LAB.collecting if p.kind == "zone_temp_cov"]
FORCED = COV_POINTS[-1]


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(
        tmp_path_factory.mktemp("kinds"),
        point_kinds=(
            f"{ANALOG}=multistate",
            f"{BINARY}=binary:sampled",
            f"{FORCED}=analog:sampled",
        ),
    )
    try:
        yield h
    finally:
        h.close()


def expected(name: str, sim_kind: str) -> tuple[str, str]:
    return OVERRIDDEN.get(name, modelled(sim_kind))


def test_search_results_carry_kind_and_mode(harness: Harness) -> None:
    h = harness
    r = h.run(h.call("/api/points/search", {"site": SITE, "limit": "1000"}))
    assert r.status_code == 200, r.text
    items = {i["name"]: i for i in r.json()["items"]}
    points = h.sim.site_by_name[SITE].points
    assert items and set(items) <= {p.name for p in points}
    seen = set()
    for p in points:
        if p.name in items:
            seen.add(expected(p.name, p.kind))
            assert (items[p.name]["kind"], items[p.name]["mode"]) == expected(p.name, p.kind)
    # the site has both kinds, and the overrides show as configured
    assert {("analog", "sampled"), ("binary", "cov"), ("multistate", "cov")} <= seen
    for name, described in OVERRIDDEN.items():
        assert (items[name]["kind"], items[name]["mode"]) == described


def test_chart_series_and_quality_carry_kind_and_mode(harness: Harness) -> None:
    h = harness
    site = h.sim.site_by_name[SITE]
    names = list(OVERRIDDEN) + [p.name for p in site.collecting[:6] if p.name not in OVERRIDDEN]
    kinds = {p.name: p.kind for p in site.points}
    start, end = NOW - 2 * MS_PER_DAY, NOW - MS_PER_DAY
    for layout in ("series", "columnar"):
        body = h.run(h.get("/api/timeseries", names, start, end, interval="1h", layout=layout))
        series = {s["name"]: s for s in body["series"]}
        assert list(series) == names
        for name in names:
            assert (series[name]["kind"], series[name]["mode"]) == expected(name, kinds[name])
    q = h.run(
        h.call(
            "/api/quality",
            {
                "site": SITE,
                "points": ",".join(names),
                "start": format_time(start),
                "end": format_time(end),
            },
        )
    )
    assert q.status_code == 200, q.text
    for item in q.json()["points"]:
        assert (item["kind"], item["mode"]) == expected(item["name"], kinds[item["name"]])


def test_modes_follow_the_reporting_pattern_once_samples_are_stored(harness: Harness) -> None:
    """No tag says the building's deadband points report on change: before any of their
    samples are stored they are ``sampled``, once a day is stored ``cov`` (in point
    search, chart series and quality), and a configured mode still wins."""
    h = harness
    sampled = [p.name for p in _LAB.collecting if p.kind == "zone_temp"][:2]
    names = [*COV_POINTS, *sampled]
    search = {"site": "rhine_lab", "q": "", "limit": "1000"}
    start, end = NOW - 3 * MS_PER_DAY, NOW - 2 * MS_PER_DAY

    def modes(body: dict[str, Any]) -> dict[str, str]:
        return {i["name"]: i["mode"] for i in body["items"] if i["name"] in names}

    before = h.run(h.call("/api/points/search", search))
    assert before.status_code == 200, before.text
    assert set(modes(before.json()).values()) == {"sampled"}
    query = {
        "site": "rhine_lab",
        "points": ",".join(names),
        "start": format_time(start),
        "end": format_time(end),
        "interval": "1h",
    }
    chart = h.run(h.call("/api/timeseries", query))
    assert chart.status_code == 200, chart.text
    want = {n: "sampled" if n in sampled or n == FORCED else "cov" for n in names}
    assert {s["name"]: s["mode"] for s in chart.json()["series"]} == want
    after = h.run(h.call("/api/points/search", search))
    assert modes(after.json()) == want
    assert {i["kind"] for i in after.json()["items"] if i["name"] in names} == {"analog"}
    q = h.run(h.call("/api/quality", {k: query[k] for k in ("site", "points", "start", "end")}))
    assert q.status_code == 200, q.text
    assert {i["name"]: i["mode"] for i in q.json()["points"]} == want


def test_a_kept_quality_answer_shows_the_modes_and_gap_limits_it_was_judged_by(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Nothing of the lab is stored yet: the first quality answer reads the samples, so
    the change-of-value points are judged ``cov`` with a heartbeat's gap limit (the one
    forced ``sampled`` by three intervals); the repeat is the kept answer, showing the
    same modes, limits and gaps (those of the simulator's samples)."""
    h = Harness(tmp_path_factory.mktemp("kept-modes"), point_kinds=(f"{FORCED}=analog:sampled",))
    try:
        start, end = NOW - 3 * MS_PER_DAY, NOW - 2 * MS_PER_DAY
        query = {
            "site": "rhine_lab",
            "points": ",".join(COV_POINTS),
            "start": format_time(start),
            "end": format_time(end),
        }
        first = h.run(h.call("/api/quality", query))
        assert first.status_code == 200, first.text
        assert first.headers["X-Cache-Source"] != "MEMORY"
        for item in first.json()["points"]:
            name = item["name"]
            if name == FORCED:
                assert (item["mode"], item["gapLimitMs"]) == ("sampled", 3000 * item["cadenceS"])
                continue  # its gaps are found exactly only from an hour (hourly buckets)
            assert (item["mode"], item["gapLimitMs"]) == ("cov", 5_400_000)
            # the gaps by that limit, as the simulator's samples have them
            t_us, _ = h.sim.truth(name, start, end)
            t_ms = t_us // 1000
            found = gaps(t_ms, t_ms, (start, end), item["gapLimitMs"])
            assert (item["gaps"], item["gapMs"]) == (len(found), sum(b - a for a, b in found))
        again = h.run(h.call("/api/quality", query))
        assert again.status_code == 200, again.text
        assert again.headers["X-Cache-Source"] == "MEMORY"
        assert again.json() == first.json()
    finally:
        h.close()
