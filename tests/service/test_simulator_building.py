"""The simulator's building points (``upstream/building.py``) against rules written out
by hand: change-of-value reports, local clocks with daylight saving and a half-hour
offset, short-cycling, flatlines and stale points; every range agrees with its splits."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsgate.upstream import building, campus, visibility
from tsgate.upstream.campus import SWEEP_MS, SimPoint, SimSite
from tsgate.upstream.simulator import create_simulator
from tsgate.wire.ace import format_time, parse_time, parse_times

SIM = create_simulator(seed=3, now_ms=lambda: parse_time("now", "2026-12-01T00:00:00"))
BERLIN = SIM.site_by_name["rhine_lab"]
PUNE = SIM.site_by_name["pune_clinic"]
# the spring-forward day and the fall-back day of 2026 in Berlin (UTC midnights around them)
SPRING = (parse_time("s", "2026-03-28T00:00:00"), parse_time("e", "2026-03-31T00:00:00"))
FALL = (parse_time("s", "2026-10-24T00:00:00"), parse_time("e", "2026-10-27T00:00:00"))


def of_kind(site: SimSite, kind: str) -> list[SimPoint]:
    return [p for p in site.points if p.kind == kind]


def truth(site: SimSite, p: SimPoint, start: int, end: int) -> tuple[np.ndarray, np.ndarray]:
    t_us, v = visibility.samples(site, p, start, end, as_of_ms=SIM.now_ms())
    return t_us // 1000, v


def local(site: SimSite, t_ms: int) -> dt.datetime:
    assert site.zone is not None
    return dt.datetime.fromtimestamp(t_ms / 1000, ZoneInfo(site.zone))


def test_sites_keep_a_real_zones_clock() -> None:
    assert (BERLIN.zone, PUNE.zone) == ("Europe/Berlin", "Asia/Kolkata")
    for site in (BERLIN, PUNE):
        kinds = {p.kind for p in site.points}
        assert set(building.KINDS) <= kinds


@pytest.mark.parametrize("site", [BERLIN, PUNE], ids=lambda s: s.name)
@pytest.mark.parametrize("span", [SPRING, FALL], ids=["spring", "fall"])
def test_ahu_mode_and_schedule_follow_the_local_clock(site: SimSite, span: tuple[int, int]) -> None:
    """Written out with zoneinfo, one sample at a time: occupied 06:30–19:00 on weekdays,
    warm-up the hour before, off at weekends."""
    mode, schedule = of_kind(site, "ahu_mode")[0], of_kind(site, "occ_schedule")[0]
    t, v = truth(site, mode, *span)
    ts, vs = truth(site, schedule, *span)
    assert t.size > 24 and ts.size > 24
    for when, value in zip(t.tolist(), v.tolist(), strict=True):
        clock = local(site, when)
        hour = clock.hour + clock.minute / 60 + clock.second / 3600
        if clock.weekday() >= 5:
            expected = 1
        elif 6.5 <= hour < 19:
            expected = 2
        elif 5.5 <= hour < 6.5:
            expected = 4
        else:
            expected = 3
        assert value == expected, (format_time(when), clock.isoformat())
    for when, value in zip(ts.tolist(), vs.tolist(), strict=True):
        clock = local(site, when)
        hour = clock.hour + clock.minute / 60 + clock.second / 3600
        assert value == float(clock.weekday() < 5 and 6.5 <= hour < 19)


def _reports_by_hand(site: SimSite, p: SimPoint, start: int, end: int) -> list[int]:
    """The change-of-value rule, one sweep at a time: report at each whole hour, and when
    the value moved more than the deadband since the last report."""
    sweeps = visibility.sweeps_of(start, end)
    lo = int(sweeps[0]) // 12 * 12
    every = np.arange(lo, int(sweeps[-1]) + 1, dtype=np.int64)
    values = campus.values(site, p, every)
    deadband = building.DEADBANDS[p.kind]
    reported: list[int] = []
    last = 0.0
    for sweep, value in zip(every.tolist(), values.tolist(), strict=True):
        if sweep % 12 == 0 or abs(value - last) > deadband:
            last = value
            reported.append(sweep)
    kept = np.array([s for s in reported if s >= int(sweeps[0])], dtype=np.int64)
    times = campus.sweep_times_us(site, kept) // 1000
    present = campus.present(site, p, kept)
    return [int(x) for x, ok in zip(times, present, strict=True) if ok and start <= x < end]


@pytest.mark.parametrize("kind", sorted(building.DEADBANDS))
def test_change_of_value_points_report_only_beyond_their_deadband(kind: str) -> None:
    start, end = SPRING
    for p in of_kind(BERLIN, kind):
        t, _ = truth(BERLIN, p, start, end)
        assert t.tolist() == _reports_by_hand(BERLIN, p, start, end)
        # fewer reports than sweeps, at irregular intervals
        assert t.size < (end - start) // SWEEP_MS * 0.8
        assert np.unique(np.diff(t) // SWEEP_MS).size > 2 or kind in ("ahu_mode", "occ_schedule")


def test_compressors_short_cycle_on_some_days() -> None:
    start, end = parse_time("s", "2026-03-02T00:00:00"), parse_time("e", "2026-03-28T00:00:00")
    shortest = []
    for p in of_kind(BERLIN, "compressor"):
        t, v = truth(BERLIN, p, start, end)
        on = np.flatnonzero((v[1:] != 0) & (v[:-1] == 0)) + 1
        off = [int(np.argmax(v[i:] == 0)) + i for i in on if bool((v[i:] == 0).any())]
        runs = [(t[b] - t[a]) for a, b in zip(on, off, strict=False)]
        assert runs and len(on) > 20
        shortest.append(min(runs))
    # a 10-minute cycle at partial load runs one sweep: about 5 minutes on
    assert min(shortest) < 8 * 60_000


def test_flatline_and_stale_points() -> None:
    start, end = parse_time("s", "2026-01-05T00:00:00"), parse_time("e", "2026-02-16T00:00:00")
    flat = of_kind(BERLIN, "flatline_temp")[0]
    t, v = truth(BERLIN, flat, start, end)
    days = np.array([local(BERLIN, x).toordinal() for x in t.tolist()])  # local days
    stuck = [
        d for d in np.unique(days) if np.unique(v[days == d]).size == 1 and (days == d).sum() > 200
    ]
    assert stuck, "no flat day in six weeks"
    stale = of_kind(BERLIN, "stale_rh")[0]
    t, _ = truth(BERLIN, stale, start, end)
    per_day = np.bincount((t // 86_400_000 - start // 86_400_000).astype(np.int64))
    assert (per_day < 250).any() and (per_day > 270).any()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=st.integers(SPRING[0], SPRING[1]),
    length=st.integers(1, 2 * 86_400_000),
    cut=st.floats(0, 1),
    which=st.sampled_from(
        [p.name for p in BERLIN.points[-8:]] + [p.name for p in PUNE.points[-8:]]
    ),
)
def test_any_split_of_a_range_serves_what_the_whole_does(
    start: int, length: int, cut: float, which: str
) -> None:
    site, p = SIM.point_index[which]
    middle = start + int(length * cut)
    whole = truth(site, p, start, start + length)
    first, second = truth(site, p, start, middle), truth(site, p, middle, start + length)
    assert np.array_equal(whole[0], np.concatenate([first[0], second[0]]))
    assert np.array_equal(whole[1], np.concatenate([first[1], second[1]]))


async def _served(
    c: httpx.AsyncClient, name: str, start: int, end: int
) -> tuple[np.ndarray, list[float]]:
    """One point's own read, as the simulator serves it: times (ms) and values."""
    r = await c.get(
        f"/points/{name.replace('/', '%2F')}/timeseries",
        params={"start_time": format_time(start), "end_time": format_time(end)},
        headers={"Authorization": "Bearer t"},
    )
    assert r.status_code == 200, r.text
    rows = r.json()["point_samples"]
    return parse_times([row["time"] for row in rows]), [float(row["value"]) for row in rows]


@pytest.mark.anyio
async def test_served_rows_are_the_truth() -> None:
    transport = httpx.ASGITransport(app=SIM)
    names = [p.name for p in PUNE.points[-8:]]
    start, end = parse_time("s", "2026-03-10T00:00:00"), parse_time("e", "2026-03-11T00:00:00")
    async with httpx.AsyncClient(transport=transport, base_url="http://sim/api") as c:
        served: dict[str, list[tuple[int, float]]] = {n: [] for n in names}
        for name in names:
            times, values = await _served(c, name, start, end)
            served[name] = list(zip(times.tolist(), values, strict=True))
    for name in names:
        site, p = SIM.point_index[name]
        t, v = truth(site, p, start, end)
        assert served[name] == list(zip(t.tolist(), v.tolist(), strict=True))


@pytest.mark.anyio
async def test_a_long_read_of_one_point_is_the_truth_of_its_days() -> None:
    """One point's read is generated months at a time (a site's, a day at a time): over a
    read longer than one batch, a change-of-value and a stale point still serve exactly
    the truth, day after day."""
    transport = httpx.ASGITransport(app=SIM)
    start = parse_time("s", "2026-01-01T00:00:00")
    end = start + 100 * 86_400_000  # longer than one batch of one point's sweeps
    chosen = [of_kind(BERLIN, kind)[0] for kind in ("stale_rh", *building.DEADBANDS)][:3]
    async with httpx.AsyncClient(transport=transport, base_url="http://sim/api") as c:
        for p in chosen:
            times, values = await _served(c, p.name, start, end)
            days = [truth(BERLIN, p, d, d + 86_400_000) for d in range(start, end, 86_400_000)]
            want_t = np.concatenate([t for t, _ in days])
            want_v = np.concatenate([v for _, v in days])
            assert len(values) == want_t.size > 2_000
            assert np.array_equal(times, want_t)
            assert values == want_v.tolist()
