"""Gap limits by each point's observed cadence: points whose value holds (COV, binary,
multistate) generated day by day with a known reporting pattern -- polled at a cadence
(with holes), heartbeating hourly with a few changes, or changing at irregular times --
go through what the gateway does with stored periods (each day's pattern observed, the
periods over the range judged, the one gap rule, the gaps found) and are compared with a
brute-force walk over the generated samples using the documented rule and the pattern
each day was generated with."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.simtruth import walk_gaps
from tsgate.core.kinds import (
    PeriodMode,
    judged_cadence_ms,
    observed_pattern,
)
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE, Series
from tsgate.core.quality import GAP_MS, gap_limit_ms, sample_gaps

T0 = 1_764_547_200_000  # 2025-12-01T00:00Z, a day boundary
CADENCES_MS = (MS_PER_MINUTE, 2 * MS_PER_MINUTE, 5 * MS_PER_MINUTE, 315_000, 10 * MS_PER_MINUTE)
KINDS = (("binary", "cov"), ("multistate", "cov"), ("analog", "cov"))
CATALOG_MS = 5 * MS_PER_MINUTE  # the points' collect_interval


@dataclass(frozen=True)
class Day:
    """How one generated day reports: ``polled`` every ``cadence_ms`` (a hole of
    ``hole_ms`` from ``hole_at``), ``heartbeat`` (hourly, plus ``changes`` changes),
    ``irregular`` (changes only, at random times), or ``silent`` (no sample)."""

    pattern: str
    cadence_ms: int = 0
    hole_at: float = 0.0
    hole_ms: int = 0
    changes: int = 0
    seed: int = 0

    @property
    def known_cadence_ms(self) -> int | None:
        """The cadence the day reports at while its value holds, as generated."""
        if self.pattern == "polled":
            return self.cadence_ms
        return MS_PER_HOUR if self.pattern == "heartbeat" else None


def days() -> st.SearchStrategy[Day]:
    polled = st.builds(
        Day,
        st.just("polled"),
        st.sampled_from(CADENCES_MS),
        st.floats(0.0, 1.0),
        st.integers(0, 6 * MS_PER_HOUR),
        st.integers(0, 4),
        st.integers(0, 2**31),
    )
    heartbeat = st.builds(
        Day, st.just("heartbeat"), changes=st.integers(0, 2), seed=st.integers(0, 2**31)
    )
    irregular = st.builds(
        Day, st.just("irregular"), changes=st.integers(30, 120), seed=st.integers(0, 2**31)
    )
    return st.one_of(polled, heartbeat, irregular, st.just(Day("silent")))


def samples(day: Day, start_ms: int) -> tuple[list[int], list[float]]:
    """The day's samples, on the generated cadence exactly (the simulator's points, with
    their jitter, are judged through the API)."""
    rng = np.random.default_rng(day.seed)
    end = start_ms + MS_PER_DAY
    if day.pattern == "silent":
        return [], []
    if day.pattern == "polled":
        t = np.arange(start_ms, end, day.cadence_ms)
        hole = start_ms + int(day.hole_at * (MS_PER_DAY - day.hole_ms))
        t = t[(t < hole) | (t >= hole + day.hole_ms)]
        flips = np.sort(rng.integers(start_ms, end, day.changes))
        v = np.searchsorted(flips, t) % 2  # a state changing ``changes`` times a day
        return t.tolist(), v.astype(float).tolist()
    if day.pattern == "heartbeat":
        beats = np.arange(start_ms, end, MS_PER_HOUR)
        # changes inside an hour, away from its heartbeat
        moved = start_ms + rng.choice(24, day.changes, replace=False) * MS_PER_HOUR
        moved = moved + rng.integers(10 * MS_PER_MINUTE, 50 * MS_PER_MINUTE, day.changes)
        t = np.sort(np.concatenate((beats, moved)))
        v = np.searchsorted(np.sort(moved), t, side="right") % 2
        return t.tolist(), v.astype(float).tolist()
    t = np.unique(rng.integers(start_ms, end, day.changes))
    return t.tolist(), (np.arange(t.size) % 2).astype(float).tolist()


def documented_limit(history: list[Day], span: tuple[int, int], floor_ms: int) -> int:
    """The documented rule over the days as generated: the days with stored samples that
    overlap ``span`` judge (else the nearest such day): when those reporting at a known
    cadence while their value holds hold more of ``span`` than the others, their cadence
    at the median of the time they hold (the catalog's interval when within 10 % of it);
    the limit is then the shorter of 1.5 hourly heartbeats and three of those intervals,
    never below the floor."""
    stored = [
        (T0 + i * MS_PER_DAY, T0 + (i + 1) * MS_PER_DAY, d)
        for i, d in enumerate(history)
        if d.pattern != "silent"
    ]
    over = [(s, e, d) for s, e, d in stored if s < span[1] and span[0] < e]
    cadence: int | None = None
    if not over and stored:
        distance = [max(s - span[1], span[0] - e) for s, e, _ in stored]
        cadence = stored[distance.index(min(distance))][2].known_cadence_ms
    elif over:
        held = [(min(e, span[1]) - max(s, span[0]), d.known_cadence_ms) for s, e, d in over]
        known = sorted((c, w) for w, c in held if c is not None)
        weight = sum(w for _, w in known)
        if weight > sum(w for w, c in held if c is None):
            running = 0
            for c, w in known:
                running += w
                if running * 2 >= weight:
                    cadence = c
                    break
    limit = 90 * MS_PER_MINUTE
    if cadence is not None and abs(cadence - CATALOG_MS) <= CATALOG_MS / 10:
        cadence = CATALOG_MS
    if cadence is not None:
        limit = min(limit, 3 * cadence)
    return max(floor_ms, limit)


@settings(max_examples=150, deadline=None)
@given(
    history=st.lists(days(), min_size=1, max_size=5),
    kind=st.sampled_from(KINDS),
    start=st.integers(0, 5 * MS_PER_DAY),
    length=st.integers(MS_PER_MINUTE, 3 * MS_PER_DAY),
    floor_ms=st.sampled_from((GAP_MS, MS_PER_MINUTE, 2 * MS_PER_HOUR)),
)
def test_gaps_by_the_observed_cadence_equal_a_walk_with_the_documented_rule(
    history: list[Day], kind: tuple[str, str], start: int, length: int, floor_ms: int
) -> None:
    t_all: list[int] = []
    v_all: list[float] = []
    periods: list[PeriodMode] = []
    for i, day in enumerate(history):
        day_start = T0 + i * MS_PER_DAY
        t, v = samples(day, day_start)
        t_all += t
        v_all += v
        mode, cadence = observed_pattern(np.array(t, dtype=np.int64), np.array(v))
        periods.append(PeriodMode("p", day_start, day_start + MS_PER_DAY, mode, cadence))
        # each generated day shows the cadence it was generated with
        assert cadence == day.known_cadence_ms, day
    # stored as the gateway stores them: the periods that show a mode
    stored = [(p.start_ms, p.end_ms, p.mode, p.cadence_ms) for p in periods if p.mode]
    span = (T0 + start, T0 + start + length)
    judged = judged_cadence_ms(stored, span)
    limit = gap_limit_ms(*kind, CATALOG_MS, floor_ms=floor_ms, observed_cadence_ms=judged)
    assert limit == documented_limit(history, span, floor_ms)
    series = Series("p", np.array(t_all, dtype=np.int64), np.array(v_all))
    assert sample_gaps(series.crop(*span), span, limit) == walk_gaps(
        [t for t in t_all if span[0] <= t < span[1]], span, limit
    )


def test_polled_heartbeating_irregular_and_changed_points_each_get_their_limit() -> None:
    rng = np.random.default_rng(7)
    day = (T0, T0 + MS_PER_DAY)
    # a fan status polled every 5 minutes, 20-40 s into each slot (a poller's jitter)
    polled = np.arange(*day, 5 * MS_PER_MINUTE) + rng.integers(20_000, 40_000, 288)
    fan = np.where((polled - T0) % MS_PER_DAY > 8 * MS_PER_HOUR, 1.0, 0.0)
    # a schedule point: hourly heartbeats and two changes
    beats = np.sort(
        np.concatenate((np.arange(*day, MS_PER_HOUR), [T0 + 7_777_777, T0 + 55_555_555]))
    )
    schedule = np.searchsorted([T0 + 7_777_777, T0 + 55_555_555], beats, side="right") % 2
    # changes at irregular times only
    changes = np.unique(rng.integers(*day, 60))
    toggling = np.arange(changes.size) % 2

    def limit(t: np.ndarray, v: np.ndarray) -> int:
        mode, cadence = observed_pattern(t.astype(np.int64), v.astype(float))
        judged = judged_cadence_ms([(*day, mode or "cov", cadence)], day)
        return gap_limit_ms("binary", "cov", 5 * MS_PER_MINUTE, observed_cadence_ms=judged)

    assert limit(polled, fan) == 15 * MS_PER_MINUTE
    assert limit(beats, schedule) == 90 * MS_PER_MINUTE
    assert limit(changes, toggling) == 90 * MS_PER_MINUTE
    # polled for a day, then heartbeating only: each range by the cadence of its own days
    history = [
        (*day, "sampled", 5 * MS_PER_MINUTE),
        (day[1], day[1] + MS_PER_DAY, "sampled", MS_PER_HOUR),
    ]
    assert judged_cadence_ms(history, (T0 + MS_PER_HOUR, T0 + 2 * MS_PER_HOUR)) == 5 * MS_PER_MINUTE
    assert (
        judged_cadence_ms(history, (day[1] + MS_PER_HOUR, day[1] + 9 * MS_PER_HOUR)) == MS_PER_HOUR
    )
    # mostly the polled day: its cadence; past the history: the nearest day's
    assert judged_cadence_ms(history, (T0 + MS_PER_HOUR, day[1] + MS_PER_HOUR)) == 5 * MS_PER_MINUTE
    assert (
        judged_cadence_ms(history, (day[1] + 3 * MS_PER_DAY, day[1] + 4 * MS_PER_DAY))
        == MS_PER_HOUR
    )
    assert judged_cadence_ms([], day) is None
