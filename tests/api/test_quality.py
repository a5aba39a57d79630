"""``GET /api/quality`` against the simulator's samples read directly, and its bad inputs."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from tests.clock import NOW
from tests.instance import SITE, Harness
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR
from tsgate.wire.ace import format_time, parse_time

PAST = (parse_time("t", "2025-11-03T07:30:00"), parse_time("t", "2025-11-10T00:00:00"))
LIVE = (NOW - 3 * MS_PER_DAY - 17 * 60_000, NOW + MS_PER_HOUR)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(tmp_path_factory.mktemp("quality"))
    try:
        yield h
    finally:
        h.close()


async def ask(h: Harness, start: int, end: int, **params: str) -> httpx.Response:
    query = {"site": SITE, "start": format_time(start), "end": format_time(end), **params}
    return await h.call("/api/quality", query)


@pytest.mark.parametrize("span", [PAST, LIVE], ids=["past", "live"])
def test_every_point_of_the_site_against_its_raw_samples(
    harness: Harness, span: tuple[int, int]
) -> None:
    h = harness
    start, end = span

    async def check() -> None:
        r = await ask(h, start, end, flat_tolerance="0.05")
        assert r.status_code == 200, r.text
        body = r.json()
        collecting = [p.name for p in h.sim.site_by_name[SITE].collecting]
        assert [p["name"] for p in body["points"]] == collecting  # the catalog's order
        now = parse_time("now", body["metadata"]["now"])
        assert body["metadata"]["timeZone"] == "America/New_York"  # near Boston
        until = min(end, now + 1)
        for item in body["points"]:
            t, v = await h.truth(item["name"], start, end)
            assert item["samples"] == t.size and not item["missing"]
            assert item["expected"] == (until - start) // 300_000
            longest = int(np.diff(np.concatenate(([start], t, [until]))).max())
            if longest >= MS_PER_HOUR:
                assert item["longestGapMs"] == longest
            else:
                assert item["longestGapMs"] <= longest
            assert parse_time("t", item["lastTime"]) == t[-1]
            hours = t // MS_PER_HOUR
            flat = sum(
                int((v[hours == x].size >= 2) and np.ptp(v[hours == x]) <= 0.05)
                for x in np.unique(hours)
            )
            assert item["flatlineHours"] == flat
            if end > now:
                assert item["staleMs"] == until - t[-1] and item["stale"] is False
            else:
                assert item["staleMs"] is None
        summary = body["summary"]
        assert summary["points"] == len(collecting) and summary["missing"] == 0
        assert summary["samples"] == sum(p["samples"] for p in body["points"])
        analog = [p for p in body["points"] if p["kind"] == "analog"]
        assert summary["flatlined"] == sum(p["flatlineHours"] > 0 for p in analog)
        # fans and occupancy report on/off: binary points whose value holds (cov)
        by_name = {p.name: p for p in h.sim.site_by_name[SITE].collecting}
        for item in body["points"]:
            on_off = by_name[item["name"]].kind in ("fan_status", "occupancy")
            assert (item["kind"], item["mode"]) == (
                ("binary", "cov") if on_off else ("analog", "sampled")
            )

    h.run(check())


def test_named_points_a_stale_threshold_and_bounds(harness: Harness) -> None:
    h, names = harness, harness.names(2)

    async def check() -> None:
        r = await ask(h, *LIVE, points=",".join(names), stale_after="1", low="66", high="72.5")
        body = r.json()
        assert [p["name"] for p in body["points"]] == names
        assert all(p["stale"] for p in body["points"]) and body["summary"]["stale"] == 2
        for item in body["points"]:
            t, v = await h.truth(item["name"], *LIVE)
            hours = t // MS_PER_HOUR
            outside = sum(
                int(v[hours == x].min() < 66 or v[hours == x].max() > 72.5)
                for x in np.unique(hours)
            )
            assert item["outOfRangeHours"] == outside
        assert body["summary"]["outOfRange"] == sum(
            p["outOfRangeHours"] > 0 for p in body["points"]
        )

    h.run(check())


@pytest.mark.parametrize(
    ("params", "status", "param"),
    [
        ({"site": ""}, 400, "site"),
        ({"start": "yesterday-ish"}, 400, "start"),
        ({"end": format_time(PAST[0] + 93 * MS_PER_DAY)}, 413, None),
        ({"points": "no/such/point"}, 400, "points"),
        ({"flat_tolerance": "-1"}, 400, "flat_tolerance"),
        ({"flat_tolerance": "nan"}, 400, "flat_tolerance"),
        ({"stale_after": "inf"}, 400, "stale_after"),
        ({"stale_after": "soon"}, 400, "stale_after"),
        ({"low": "cold"}, 400, "low"),
        ({"high": "inf"}, 400, "high"),
        ({"low": "80", "high": "60"}, 400, "high"),
        ({"site": "no_such_site"}, 404, None),
    ],
)
def test_bad_quality_requests_are_clear_problems(
    harness: Harness, params: dict[str, str], status: int, param: str | None
) -> None:
    query = {"site": SITE, "start": format_time(PAST[0]), "end": format_time(PAST[1]), **params}

    async def check() -> httpx.Response:
        return await harness.call("/api/quality", query)

    r = harness.run(check())
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    if param is not None:
        assert r.json()["param"] == param
