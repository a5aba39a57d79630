"""Local days, ISO weeks and months (``tz=``) against the simulator's raw samples grouped
by their local date one by one: the DST days of 2026 in New York and Berlin, half-hour
and 45-minute zones, random windows before and after more caching; site zones."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.instance import AGGS, REDUCE, SITE, Harness
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE
from tsgate.errors import ConfigError
from tsgate.series.zones import parse_overrides, zone_at
from tsgate.wire.ace import parse_time

LATE_2026 = parse_time("now", "2026-12-01T12:00:00")
DST_DAYS = {  # the local days of 2026 whose clocks change, and their length in hours
    ("America/New_York", "2026-03-08"): 23,
    ("America/New_York", "2026-11-01"): 25,
    ("Europe/Berlin", "2026-03-29"): 23,
    ("Europe/Berlin", "2026-10-25"): 25,
}
MAX_DAYS = 27  # windows and warming reads never span a whole calendar month
ZONES = ("America/New_York", "Europe/Berlin", "Asia/Kolkata", "Asia/Kathmandu")
DIFF = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(
        tmp_path_factory.mktemp("zones"),
        now_ms=LATE_2026,
        site_zones=("office_tower=Asia/Kolkata",),
    )
    try:
        yield h
    finally:
        h.close()


def local_key(t_ms: int, tz: ZoneInfo, interval: str) -> dt.date:
    day = dt.datetime.fromtimestamp(t_ms / 1000, tz).date()
    if interval == "7d":
        return day - dt.timedelta(days=day.weekday())
    return day.replace(day=1) if interval == "1mo" else day


def reference(
    t: np.ndarray, v: np.ndarray, start: int, zone: str, interval: str, agg: str
) -> tuple[list[int], list[float]]:
    """Each sample's local date, week or month, one at a time; a bucket is stamped at its
    local midnight (or at ``start`` when that is earlier)."""
    tz = ZoneInfo(zone)
    keys = [local_key(int(x), tz, interval) for x in t]
    stamps, values = [], []
    for key in sorted(set(keys)):
        midnight = dt.datetime(key.year, key.month, key.day, tzinfo=tz)
        stamps.append(max(int(midnight.timestamp() * 1000), start))
        values.append(float(REDUCE[agg](v[[k == key for k in keys]])))
    return stamps, values


@st.composite
def windows(draw: st.DrawFn) -> tuple[int, int]:
    """Around a DST change of 2026, aligned to a UTC hour, a minute or nothing."""
    _, day = draw(st.sampled_from(sorted(DST_DAYS)))
    centre = parse_time("t", f"{day}T00:00:00")
    align = draw(st.sampled_from([MS_PER_HOUR, MS_PER_MINUTE, 1]))
    start = centre + draw(st.integers(-20 * MS_PER_DAY // align, 5 * MS_PER_DAY // align)) * align
    length = draw(st.integers(MS_PER_HOUR // align, MAX_DAYS * MS_PER_DAY // align)) * align
    return start, start + length


@DIFF
@given(
    windows(),
    st.sampled_from(ZONES),
    st.sampled_from(["1d", "7d", "1mo"]),
    st.sampled_from(AGGS),
    st.booleans(),
)
def test_local_buckets_equal_the_samples_grouped_by_local_date(
    harness: Harness, window: tuple[int, int], zone: str, interval: str, agg: str, warm: bool
) -> None:
    h, names = harness, harness.names(2)
    start, end = window

    async def check() -> None:
        if warm:  # a partly cached day at the window's start
            await h.get("/api/timeseries", names, start, start + 7 * MS_PER_HOUR)
        params = {"interval": interval, "agg": agg, "tz": zone}
        before = await h.get("/api/timeseries", names, start, end, **params)
        assert before["metadata"]["timeZone"] == zone
        total = 0
        for name, s in zip(names, before["series"], strict=True):
            t, v = await h.truth(name, start, end)
            total += t.size
            stamps, values = reference(t, v, start, zone, interval, agg)
            data = np.array(s["data"], dtype=np.float64).reshape(-1, 2)
            assert data[:, 0].astype(np.int64).tolist() == stamps
            np.testing.assert_allclose(data[:, 1], values, rtol=1e-9, atol=1e-9)
        assert before["metadata"]["totalSamples"] == total
        day_start = start - start % MS_PER_DAY
        await h.get("/api/timeseries", names, day_start, day_start + MAX_DAYS * MS_PER_DAY)
        after = await h.get("/api/timeseries", names, start, end, **params)
        # the same samples; only what is still provisional may have moved on to final
        for body in (before, after):
            body["metadata"].pop("provisional")
        assert after == before
        table = await h.get("/api/aggregations", names, start, end, interval=interval, tz=zone)
        assert table["metadata"]["timeZone"] == zone
        rows = [r for r in table["aggregations"] if r["name"] == names[0]]
        t, v = await h.truth(names[0], start, end)
        assert [r["count"] for r in rows] == reference(t, v, start, zone, interval, "count")[1]

    h.run(check())


@pytest.mark.parametrize(("zone", "day"), sorted(DST_DAYS))
def test_a_dst_day_is_one_bucket_of_23_or_25_hours(harness: Harness, zone: str, day: str) -> None:
    h, names = harness, harness.names(1)
    tz = ZoneInfo(zone)
    local = dt.date.fromisoformat(day)
    midnight = int(dt.datetime(local.year, local.month, local.day, tzinfo=tz).timestamp() * 1000)
    after = local + dt.timedelta(days=1)
    next_midnight = int(
        dt.datetime(after.year, after.month, after.day, tzinfo=tz).timestamp() * 1000
    )
    assert next_midnight - midnight == DST_DAYS[(zone, day)] * MS_PER_HOUR

    async def check() -> None:
        body = await h.get(
            "/api/timeseries",
            names,
            midnight - MS_PER_DAY,
            next_midnight + MS_PER_DAY,
            interval="1d",
            agg="count",
            tz=zone,
        )
        data = body["series"][0]["data"]
        assert [t for t, _ in data][1:3] == [midnight, next_midnight]
        t, _ = await h.truth(names[0], midnight, next_midnight)
        assert data[1][1] == t.size
        # about 12 samples an hour: 23 or 25 hours, not 24
        assert abs(t.size - 12 * DST_DAYS[(zone, day)]) <= 12

    h.run(check())


def test_site_zones_come_from_coordinates_or_configuration(harness: Harness) -> None:
    h = harness

    async def zone_of(site: str) -> Any:
        names = [p.name for p in h.sim.site_by_name[site].collecting[:1]]
        query = {
            "site": site,
            "points": names[0],
            "start": "2026-10-01T00:00:00",
            "end": "2026-10-03T00:00:00",
            "interval": "1d",
            "tz": "site",
        }
        r = await h.call("/api/timeseries", query)
        assert r.status_code == 200, r.text
        return r.json()

    # the simulated sites sit near Boston, Cincinnati and Chicago; one is configured
    elm = h.run(zone_of(SITE))
    assert elm["metadata"]["timeZone"] == "America/New_York"
    # the evening of 30 September (local) is clipped to the range, then local midnights
    assert [t for t, _ in elm["series"][0]["data"]] == [
        parse_time("t", "2026-10-01T00:00:00"),
        parse_time("t", "2026-10-01T04:00:00"),
        parse_time("t", "2026-10-02T04:00:00"),
    ]
    assert h.run(zone_of("demo_campus"))["metadata"]["timeZone"] == "America/New_York"
    assert h.run(zone_of("office_tower"))["metadata"]["timeZone"] == "Asia/Kolkata"


@pytest.mark.parametrize("tz", ["Mars/Olympus", "../../etc/passwd", "EST5EDT/x", "site/x"])
def test_unknown_zones_are_a_400_naming_tz(harness: Harness, tz: str) -> None:
    async def ask(path: str) -> httpx.Response:
        return await harness.api.get(
            path,
            params={
                "site": SITE,
                "points": harness.names(1)[0],
                "start": "2026-10-01T00:00:00",
                "end": "2026-10-02T00:00:00",
                "interval": "1d",
                "tz": tz,
            },
            headers=harness.token(),
        )

    for path in ("/api/timeseries", "/api/aggregations"):
        r = harness.run(ask(path))
        assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
        assert r.json()["param"] == "tz" and "IANA" in r.json()["detail"]


def test_coordinates_and_overrides() -> None:
    assert zone_at(52.52, 13.405) == "Europe/Berlin"
    assert zone_at(19.076, 72.8777) == "Asia/Kolkata"
    assert zone_at(27.7172, 85.324) == "Asia/Kathmandu"
    for lat, lng in ((None, 1.0), (0.0, 0.0), (91.0, 0.0), (float("nan"), 1.0), (True, 2.0)):
        assert zone_at(lat, lng) is None
    assert parse_overrides(["a=Europe/Berlin", " b = UTC "]) == {"a": "Europe/Berlin", "b": "UTC"}
    for bad in ("a", "a=", "=UTC", "a=Mars/Olympus"):
        with pytest.raises(ConfigError, match="TSGATE_SITE_ZONES"):
            parse_overrides([bad])


def _long_query(params: dict[str, str]) -> dict[str, str]:
    names = [f"ses/{SITE}/missing/{i}" for i in range(100)]
    return {
        "site": SITE,
        "points": ",".join(names),
        "start": "2023-01-01T00:00:00",
        "end": "2025-09-01T00:00:00",
        **params,
    }


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/timeseries", {"interval": "5min"}),
        ("/api/timeseries", {"interval": "15min", "tz": "Asia/Kolkata"}),
    ],
)
def test_buckets_computed_from_raw_samples_are_bounded(
    harness: Harness, path: str, params: dict[str, str]
) -> None:
    """Sub-hour intervals read every raw sample: a range that would read more than an
    answer may carry is a 413, before anything is fetched."""
    requests = harness.sim.stats.by_route["point_timeseries"]
    r = harness.run(harness.call(path, _long_query(params)))
    assert r.status_code == 413 and r.json()["limit"] == "max_inline_samples", r.text
    assert "raw samples" in r.json()["detail"]
    assert harness.sim.stats.by_route["point_timeseries"] == requests


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/timeseries", {"interval": "1d", "tz": "Asia/Kolkata"}),
        ("/api/timeseries", {"interval": "auto", "agg": "max", "tz": "Asia/Kathmandu"}),
        ("/api/aggregations", {"interval": "7d", "tz": "Asia/Kolkata"}),
    ],
)
def test_half_hour_zones_are_served_from_rollups(
    harness: Harness, path: str, params: dict[str, str]
) -> None:
    """Local days in +5:30 and +5:45 come from the 15-minute rollups: the same long range
    is not refused for reading raw samples (it is read: a job for the chart, and a 404
    for rows of points upstream does not know)."""
    r = harness.run(harness.call(path, _long_query(params)))
    assert r.status_code == (404 if path == "/api/aggregations" else 202), r.text
