"""``agg=timein:<state>`` and the time-weighted aggregates of the simulator's building
points in local days, against a walk over the simulator's own samples: daylight-saving
days in Berlin, and Kolkata's +5:30 days served from the 15-minute rollups."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from tests.instance import Harness
from tests.unit.test_weighted import brute, brute_linear
from tsgate.core.model import MS_PER_DAY, Series
from tsgate.wire.ace import format_time, parse_time

NOW = parse_time("now", "2026-11-20T12:00:00")
# Berlin's two DST days of 2026 (local days of 23 and 25 hours) and a Kolkata week
WINDOWS = {
    "rhine_lab": [
        (parse_time("s", "2026-03-27T09:10:00"), parse_time("e", "2026-03-31T17:20:00")),
        (parse_time("s", "2026-10-24T00:00:00"), parse_time("e", "2026-10-27T05:00:00")),
    ],
    "pune_clinic": [
        (parse_time("s", "2026-03-26T18:30:00"), parse_time("e", "2026-04-02T07:07:00")),
    ],
}
ZONES = {"rhine_lab": "Europe/Berlin", "pune_clinic": "Asia/Kolkata"}


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(tmp_path_factory.mktemp("timein"), now_ms=NOW)
    try:
        yield h
    finally:
        h.close()


def of_kind(h: Harness, site: str, kind: str) -> str:
    return next(p.name for p in h.sim.site_by_name[site].points if p.kind == kind)


def local_days(zone: str, start: int, end: int) -> list[tuple[int, int]]:
    """Local midnights by zoneinfo, one day at a time (the reference for the calendar)."""
    tz = ZoneInfo(zone)
    day = dt.datetime.fromtimestamp(start / 1000, tz).date()
    out = []
    while True:
        lo = int(dt.datetime(day.year, day.month, day.day, tzinfo=tz).timestamp() * 1000)
        day += dt.timedelta(days=1)
        hi = int(dt.datetime(day.year, day.month, day.day, tzinfo=tz).timestamp() * 1000)
        if lo >= end:
            return out
        out.append((lo, hi))


async def chart(h: Harness, site: str, name: str, start: int, end: int, **params: str):  # type: ignore[no-untyped-def]
    query = {
        "site": site,
        "points": name,
        "start": format_time(start),
        "end": format_time(end),
        **params,
    }
    return await h.call("/api/timeseries", query)


@pytest.mark.parametrize(
    ("site", "window"),
    [(site, w) for site, windows in WINDOWS.items() for w in windows],
    ids=lambda x: x if isinstance(x, str) else format_time(x[0])[:10],
)
@pytest.mark.parametrize(
    ("kind", "aggs"),
    [
        ("ahu_mode", ("timein:1", "timein:2", "timein:3", "timein:4", "timein:9", "starts")),
        ("compressor", ("timein:0", "timein:1", "duty", "runhours", "starts", "twavg")),
        ("occ_schedule", ("timein:1", "duty")),
        ("zone_temp_cov", ("twavg",)),
    ],
)
def test_local_days_equal_a_walk_over_the_samples(
    harness: Harness, site: str, window: tuple[int, int], kind: str, aggs: tuple[str, ...]
) -> None:
    h = harness
    name = of_kind(h, site, kind)
    start, end = window

    async def check() -> None:
        t, v = await h.truth(name, start, end)
        bounds = local_days(ZONES[site], start, end)
        for agg in aggs:
            r = await chart(h, site, name, start, end, interval="1d", tz="site", agg=agg)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["metadata"]["timeZone"] == ZONES[site]
            data = np.array(body["series"][0]["data"], dtype=np.float64).reshape(-1, 2)
            want = brute(Series(name, t, v), bounds, start, end, agg)
            np.testing.assert_allclose(data[:, 1], want, rtol=1e-9, atol=1e-9, err_msg=agg)
        # every hour of a covered day is in some state
        if kind == "ahu_mode":
            states = [f"timein:{k}" for k in (1, 2, 3, 4)]
            total = np.zeros(len(bounds))
            for agg in states:
                r = await chart(h, site, name, start, end, interval="1d", tz="site", agg=agg)
                total = total + np.array(r.json()["series"][0]["data"])[:, 1]
            covered = brute(Series(name, t, np.ones_like(v)), bounds, start, end, "runhours")
            np.testing.assert_allclose(total, covered, rtol=1e-9)

    h.run(check())


@pytest.mark.parametrize(
    ("site", "window"),
    [(site, w) for site, windows in WINDOWS.items() for w in windows],
    ids=lambda x: x if isinstance(x, str) else format_time(x[0])[:10],
)
@pytest.mark.parametrize("interval", ["1h", "1d"])
def test_twavg_of_sampled_points_joins_samples_by_lines(
    harness: Harness, site: str, window: tuple[int, int], interval: str
) -> None:
    """A sampled analog point's twavg is the mean of the lines between its samples (none
    across a gap over three 5-minute reporting intervals); a change-of-value one's holds
    each value (the test above)."""
    h = harness
    names = [p.name for p in h.sim.site_by_name[site].collecting if p.kind == "zone_temp"][:2]
    start, end = window
    zone = ZONES[site]

    async def check() -> None:
        query = {"interval": interval, "tz": "site", "agg": "twavg"}
        r = await chart(h, site, ",".join(names), start, end, **query)
        assert r.status_code == 200, r.text
        for s in r.json()["series"]:
            assert (s["kind"], s["mode"]) == ("analog", "sampled")
            t, v = await h.truth(s["name"], start, end)
            if interval == "1d":
                bounds = local_days(zone, start, end)
            else:
                first = start - start % 3_600_000
                bounds = [(b, b + 3_600_000) for b in range(first, end, 3_600_000)]
            want = brute_linear(Series(s["name"], t, v), bounds, start, end, 15 * 60_000)
            data = np.array(s["data"], dtype=np.float64).reshape(-1, 2)
            np.testing.assert_allclose(data[:, 1], want, rtol=1e-9, atol=1e-9)

    h.run(check())


def test_half_hour_days_are_served_from_rollups(harness: Harness) -> None:
    """A quarter of Kolkata days, far more samples than one answer may read raw, is
    composed from the 15-minute rollups (no 413)."""
    h = harness
    name = of_kind(h, "pune_clinic", "zone_temp_cov")
    start, end = NOW - 120 * MS_PER_DAY, NOW - 30 * MS_PER_DAY

    async def check() -> None:
        t, v = await h.truth(name, start, end)
        for zone in ("Asia/Kolkata", "Asia/Kathmandu"):  # +5:30 and +5:45
            r = await chart(h, "pune_clinic", name, start, end, interval="1d", tz=zone, agg="twavg")
            assert r.status_code == 200, r.text
            data = np.array(r.json()["series"][0]["data"], dtype=np.float64).reshape(-1, 2)
            assert len(data) == 91  # from mid-day to mid-day
            want = brute(Series(name, t, v), local_days(zone, start, end), start, end, "twavg")
            np.testing.assert_allclose(data[:, 1], want, rtol=1e-9, atol=1e-9)

    h.run(check())


@pytest.mark.parametrize(
    ("agg", "kind", "message"),
    [
        ("timein:", "ahu_mode", "timein:<state>"),
        ("timein:on", "ahu_mode", "timein:<state>"),
        ("timein:1.5", "ahu_mode", "timein:<state>"),
        ("timein:" + "9" * 400, "ahu_mode", "timein:<state>"),
        ("timein:2", "zone_temp_cov", "is analog"),
        ("timein:1", "flatline_temp", "is analog"),
    ],
)
def test_bad_timein_is_a_problem(harness: Harness, agg: str, kind: str, message: str) -> None:
    h = harness
    name = of_kind(h, "rhine_lab", kind)
    start, end = WINDOWS["rhine_lab"][0]

    async def check() -> None:
        r = await chart(h, "rhine_lab", name, start, end, interval="1d", agg=agg)
        assert r.status_code == 400, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert message in r.json()["detail"] and len(r.text) < 2000

    h.run(check())


def test_timein_over_an_absurd_range_is_refused(harness: Harness) -> None:
    h = harness
    name = of_kind(h, "rhine_lab", "ahu_mode")

    async def check() -> None:
        r = await chart(
            h, "rhine_lab", name, 0, parse_time("e", "9999-01-01T00:00:00"), agg="timein:2"
        )
        assert 400 <= r.status_code < 500, r.text
        assert r.headers["content-type"].startswith("application/problem+json")

    h.run(check())


@pytest.mark.parametrize(
    ("site", "window"),
    [(site, w) for site, windows in WINDOWS.items() for w in windows],
    ids=lambda x: x if isinstance(x, str) else format_time(x[0])[:10],
)
@pytest.mark.parametrize("interval", ["1h", "1d"])
def test_aggregation_rows_carry_the_hours_in_each_state(
    harness: Harness, site: str, window: tuple[int, int], interval: str
) -> None:
    """``/api/aggregations`` gives a multistate or binary point's rows a ``timein:<state>``
    column for every state it held (local days across daylight saving, Kolkata's +5:30),
    equal to a walk over the simulator's samples; an analog point's rows carry none."""
    h = harness
    mode, compressor, analog = (
        of_kind(h, site, k) for k in ("ahu_mode", "compressor", "zone_temp_cov")
    )
    start, end = window
    if interval == "1d":
        bounds = local_days(ZONES[site], start, end)
    else:
        first = start - start % 3_600_000
        bounds = [(b, b + 3_600_000) for b in range(first, end, 3_600_000)]

    async def check() -> None:
        query = {
            "site": site,
            "points": f"{mode},{compressor},{analog}",
            "start": format_time(start),
            "end": format_time(end),
            "interval": interval,
            "tz": "site",
        }
        r = await h.call("/api/aggregations", query)
        assert r.status_code == 200, r.text
        rows = r.json()["aggregations"]
        for name in (mode, compressor):
            mine = [row for row in rows if row["name"] == name]
            t, v = await h.truth(name, start, end)
            columns = {k for k in mine[0] if k.startswith("timein:")}
            held = {f"timein:{int(s)}" for s in np.unique(v)}
            assert held <= columns and all(set(row) >= columns for row in mine)
            covered = np.zeros(len(mine))
            for column in sorted(columns):
                want = brute(Series(name, t, v), bounds, start, end, column)
                got = np.array([row[column] for row in mine], dtype=np.float64)
                np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9, err_msg=column)
                covered += got
            # every hour a covered bucket spans is in some state
            ones = Series(name, t, np.ones_like(v))
            want_covered = brute(ones, bounds, start, end, "runhours")
            np.testing.assert_allclose(covered, want_covered, rtol=1e-9, atol=1e-9)
        assert not any(
            k.startswith("timein:") for row in rows if row["name"] == analog for k in row
        )
        # states asked by name: only those columns, 0 hours for a state never held
        asked = await h.call("/api/aggregations", {**query, "points": mode, "timein": "2, 9"})
        assert asked.status_code == 200, asked.text
        t, v = await h.truth(mode, start, end)
        for column in ("timein:2", "timein:9"):
            got = [row[column] for row in asked.json()["aggregations"]]
            want = brute(Series(mode, t, v), bounds, start, end, column)
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)
        assert not any("timein:1" in row for row in asked.json()["aggregations"])

    h.run(check())


@pytest.mark.parametrize(
    ("timein", "kind", "message"),
    [
        ("", "ahu_mode", "lists states"),
        (" , ", "ahu_mode", "lists states"),
        ("on", "ahu_mode", "is not a state"),
        ("1.5", "ahu_mode", "is not a state"),
        ("2,,3", "ahu_mode", "is not a state"),
        ("9" * 400, "ahu_mode", "is not a state"),
        (",".join(str(n) for n in range(40)), "ahu_mode", "at most 32 states"),
        ("1", "zone_temp_cov", "is analog"),
    ],
)
def test_bad_timein_columns_are_problems(
    harness: Harness, timein: str, kind: str, message: str
) -> None:
    h = harness
    name = of_kind(h, "rhine_lab", kind)
    start, end = WINDOWS["rhine_lab"][0]

    async def check() -> None:
        query = {
            "site": "rhine_lab",
            "points": name,
            "start": format_time(start),
            "end": format_time(end),
            "interval": "1d",
            "timein": timein,
        }
        r = await h.call("/api/aggregations", query)
        assert r.status_code == 400, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        problem = r.json()
        assert message in problem["detail"] and len(r.text) < 2000
        assert "timein" in r.text

    h.run(check())
