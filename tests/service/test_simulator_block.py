"""The site stream computes a batch of sweeps for every point at once
(``upstream/sweepblock.py``): exactly the per-point functions stacked, bit for bit, and
exactly the rows, pages and cursors of the stream built point by point."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tsgate.upstream import campus
from tsgate.upstream.campus import SimPoint, SimSite
from tsgate.upstream.simulator import (
    _BATCH_CELLS,
    _BATCH_SWEEPS,
    _first_sweep,
    _fmt_us,
    _format,
    _parse_ms,
    _rows,
    create_simulator,
)
from tsgate.upstream.sweepblock import sweep_block
from tsgate.upstream.visibility import LatePoint, Outage, Visibility
from tsgate.wire.ace import Cursor, Sample, decode_cursor, encode_cursor, parse_time

# every site of the default simulator, and the large one last
SIM = create_simulator(seed=5, large_site=True)
SITES = [s.name for s in SIM.sites]
ZONED = [s.name for s in SIM.sites if s.zone is not None]  # clock changes, change of value
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
# where ranges start near: UTC midnight, Berlin's fall-back and spring-forward (01:00 UTC)
BASES = {
    "utc_midnight": parse_time("t", "2025-10-01T00:00:00"),
    "fall_back": parse_time("t", "2025-10-26T01:00:00"),
    "spring_forward": parse_time("t", "2026-03-29T01:00:00"),
}
SLOW = [HealthCheck.too_slow, HealthCheck.data_too_large]

# (start after the range's start, length, backlog after its end or None, site 0 every /
# 1 this / 2 another, indexes of the points it covers (none: all of the site's))
OutageSpec = tuple[int, int, int | None, int, tuple[int, ...]]
# (index of the point, added after the range's start, history before that or None)
LateSpec = tuple[int, int, int | None]
Faults = tuple[float, float, list[OutageSpec], list[LateSpec]]

faults = st.tuples(
    st.sampled_from([0.0, 0.0, 12.5, 600.0, 0.001]),
    st.sampled_from([0.0, 0.0, 200.0, 7.3]),
    st.lists(
        st.tuples(
            st.integers(-2 * HOUR_MS, DAY_MS),
            st.integers(1, 8 * HOUR_MS),
            st.none() | st.integers(-2 * HOUR_MS, 2 * DAY_MS),
            st.integers(0, 2),
            st.lists(st.integers(0, 10**6), max_size=30).map(tuple),
        ),
        max_size=3,
    ),
    st.lists(
        st.tuples(
            st.integers(0, 10**6),
            st.integers(-2 * HOUR_MS, DAY_MS),
            st.none() | st.integers(-DAY_MS, DAY_MS),
        ),
        max_size=3,
    ),
)


def visibility_of(
    site: SimSite, points: Sequence[SimPoint], start_ms: int, spec: Faults
) -> Visibility:
    """The faults of ``spec`` on ``points`` of ``site``, timed from ``start_ms``."""
    delay_s, jitter_s, outages, late = spec
    other = next(s.name for s in SIM.sites if s.name != site.name)
    names = [p.name for p in points]
    return Visibility(
        delay_s,
        jitter_s,
        tuple(
            Outage(
                start_ms + after,
                start_ms + after + length,
                None if backlog is None else start_ms + after + length + backlog,
                (None, site.name, other)[who],
                tuple(names[i % len(names)] for i in covered),
            )
            for after, length, backlog, who, covered in outages
        ),
        tuple(
            LatePoint(
                names[i % len(names)],
                start_ms + added,
                None if since is None else start_ms + added - since,
            )
            for i, added, since in late
        ),
    )


NO_FAULTS: Faults = (0.0, 0.0, [], [])


@settings(max_examples=80, deadline=None, derandomize=True, suppress_health_check=SLOW)
@given(
    site_name=st.sampled_from(SITES + ZONED),
    base=st.sampled_from(sorted(BASES)),
    offset_ms=st.integers(-2 * DAY_MS, 2 * DAY_MS),
    count=st.integers(1, 400),
    subset=st.none() | st.lists(st.integers(0, 10**6), min_size=1, max_size=40),
    spec=faults,
    now_after_ms=st.integers(-HOUR_MS, 2 * DAY_MS),
    now_at=st.none() | st.integers(0, 10**6),
)
# zoned sites over their clock changes, every point (change-of-value ones in part hours)
@example("rhine_lab", "fall_back", -HOUR_MS - 300_000, 31, None, NO_FAULTS, DAY_MS, None)
@example("rhine_lab", "spring_forward", -7 * 300_000, 29, None, (10.0, 30.0, [], []), 0, None)
@example("pune_clinic", "utc_midnight", -5 * 300_000, 300, None, NO_FAULTS, DAY_MS, None)
@example("large_campus", "utc_midnight", 0, 2, None, NO_FAULTS, DAY_MS, None)
# the as-of time at a backlog's upload; before a late point is added (with a history)
@example(
    "elm_school", "utc_midnight", 0, 36, None, (0.0, 0.0, [(0, HOUR_MS, HOUR_MS, 1, ())], []),
    2 * HOUR_MS, None,
)  # fmt: skip
@example(
    "elm_school", "utc_midnight", 0, 36, None, (0.0, 0.0, [], [(0, 2 * HOUR_MS, DAY_MS)]),
    HOUR_MS, None,
)  # fmt: skip
def test_the_block_is_the_per_point_functions_stacked(
    site_name: str,
    base: str,
    offset_ms: int,
    count: int,
    subset: list[int] | None,
    spec: Faults,
    now_after_ms: int,
    now_at: int | None,
) -> None:
    site = SIM.site_by_name[site_name]
    start_ms = BASES[base] + offset_ms
    # the stream's points, or any of the site's (not collecting ones too), in any order
    points = (
        list(site.collecting)
        if subset is None
        else [site.points[i % len(site.points)] for i in subset]
    )
    sweeps = np.arange(_first_sweep(start_ms), _first_sweep(start_ms) + count, dtype=np.int64)
    times_us = campus.sweep_times_us(site, sweeps)
    vis = visibility_of(site, points, start_ms, spec)
    now_ms = start_ms + now_after_ms
    if now_at is not None:  # the very millisecond a sample appears (but for a jitter)
        now_ms = (int(times_us[now_at % count]) + int(vis.delay_s * 1e6)) // 1000
    mask, values = sweep_block(site, points, sweeps, times_us, (vis, now_ms))
    want_mask = np.stack(
        [
            campus.present(site, p, sweeps) & vis.visible(p, sweeps, times_us, now_ms)
            for p in points
        ],
        axis=1,
    )
    want_values = np.stack([campus.values(site, p, sweeps) for p in points], axis=1)
    assert mask.shape == values.shape == (count, len(points))
    assert np.array_equal(mask, want_mask)
    assert np.array_equal(values.view(np.int64), want_values.view(np.int64))


def test_an_empty_block_has_its_shape() -> None:
    site = SIM.sites[2]
    sweeps = np.arange(5, dtype=np.int64)
    mask, values = sweep_block(
        site, [], sweeps, campus.sweep_times_us(site, sweeps), (Visibility(), 0)
    )
    assert mask.shape == values.shape == (5, 0)
    none = np.empty(0, dtype=np.int64)
    mask, values = sweep_block(site, site.points, none, none, (Visibility(), 0))
    assert mask.shape == values.shape == (0, len(site.points))


Rows = Callable[..., tuple[list[Sample], str | None]]


def walk(
    rows_of: Rows,
    site: SimSite,
    points: list[SimPoint],
    span: tuple[int, int],
    seen: tuple[Visibility, int],
    raw: bool,
    limit: int,
) -> list[tuple[list[Sample], str | None]]:
    """Every page of a stream, following each page's cursor as the paginated route does."""
    pages = []
    first_sweep, offset = _first_sweep(span[0]), 0
    while True:
        rows, cursor = rows_of(site, points, first_sweep, offset, span, seen, raw, limit)
        pages.append((rows, cursor))
        if cursor is None:
            return pages
        decoded = decode_cursor(cursor)
        first_sweep, offset = _first_sweep(_parse_ms(decoded.timestamp)), decoded.offset


@settings(max_examples=30, deadline=None, derandomize=True, suppress_health_check=SLOW)
@given(
    site_name=st.sampled_from(SITES),
    base=st.sampled_from(sorted(BASES)),
    offset_ms=st.integers(-2 * DAY_MS, 2 * DAY_MS),
    slots=st.integers(1, 300),
    short_ms=st.integers(0, 299_999),
    one_point=st.none() | st.integers(0, 10**6),
    spec=faults,
    lag_ms=st.integers(-2 * HOUR_MS, DAY_MS),
    raw=st.booleans(),
    limit=st.integers(1, 10) | st.sampled_from([3, 50, 1000, 10_000, 100_000, 10**9]),
)
@example("rhine_lab", "fall_back", -HOUR_MS + 1234, 36, 0, None, NO_FAULTS, 0, True, 7)
def test_every_page_of_a_walk_is_the_stream_built_point_by_point(
    site_name: str,
    base: str,
    offset_ms: int,
    slots: int,
    short_ms: int,
    one_point: int | None,
    spec: Faults,
    lag_ms: int,
    raw: bool,
    limit: int,
) -> None:
    site = SIM.site_by_name[site_name]
    start_ms = BASES[base] + offset_ms
    # a site's stream, or one point's read (months of sweeps a batch)
    if one_point is None:
        points = list(site.collecting)
        slots = min(slots, 100_000 // len(points))  # rows enough to build point by point
        end_ms = start_ms + slots * 300_000 - short_ms
    else:
        points = [site.points[one_point % len(site.points)]]
        end_ms = start_ms + 100 * (slots * 300_000 - short_ms)
    now_ms = end_ms + lag_ms  # nothing from the future: the route ends the span there
    span = (start_ms, min(end_ms, now_ms + 1))
    # pages enough to cut sweeps and cross batches, few enough to build point by point (a
    # page's batches hold about limit / points sweeps, however few of their rows it keeps)
    pages = min(30, max(2, 2_500 // len(points)))
    cells = len(points) * -(-(span[1] - span[0]) // 300_000)
    limit = max(limit, -(-cells // pages))
    seen = (visibility_of(site, points, start_ms, spec), now_ms)
    got = walk(_rows, site, points, span, seen, raw, limit)
    assert got == walk(_point_by_point_rows, site, points, span, seen, raw, limit)


def _point_by_point_rows(
    site: SimSite,
    points: Sequence[SimPoint],
    first_sweep: int,
    offset: int,
    span: tuple[int, int],
    seen: tuple[Visibility, int],
    raw: bool,
    limit: int,
) -> tuple[list[Sample], str | None]:
    """The site stream as it was before the block: each point's functions, stacked."""
    start_ms, end_ms = span
    vis, now_ms = seen
    out: list[Sample] = []
    sweep = first_sweep
    last_sweep = _first_sweep(end_ms - 1) + 1
    while sweep < last_sweep:
        wanted = (limit - len(out) + offset) // max(1, len(points)) + 2
        batch = max(1, min(_BATCH_SWEEPS, _BATCH_CELLS // max(1, len(points)), wanted))
        sweeps = np.arange(sweep, min(sweep + batch, last_sweep), dtype=np.int64)
        times_us = campus.sweep_times_us(site, sweeps)
        in_range = (times_us >= start_ms * 1000) & (times_us < end_ms * 1000)
        mask = (
            np.stack(
                [
                    campus.present(site, p, sweeps) & vis.visible(p, sweeps, times_us, now_ms)
                    for p in points
                ],
                axis=1,
            )
            & in_range[:, None]
        )
        vals = np.stack([campus.values(site, p, sweeps) for p in points], axis=1)
        s_idx, p_idx = np.nonzero(mask)
        if offset:
            skip = int(np.searchsorted(s_idx, 1, side="left")) if s_idx.size else 0
            drop = min(offset, skip)
            s_idx, p_idx = s_idx[drop:], p_idx[drop:]
            offset = 0
        room = limit - len(out)
        if s_idx.size > room:
            cut_sweep = int(s_idx[room])
            served_in_cut = int(np.count_nonzero(s_idx[:room] == cut_sweep))
            already = int(np.count_nonzero(mask[cut_sweep])) - int(
                np.count_nonzero(s_idx == cut_sweep)
            )
            out.extend(
                _format(site, list(points), sweeps, times_us, vals, s_idx[:room], p_idx[:room], raw)
            )
            stamp = _fmt_us(int(times_us[cut_sweep]))
            return out, encode_cursor(Cursor(offset=already + served_in_cut, timestamp=stamp))
        out.extend(_format(site, list(points), sweeps, times_us, vals, s_idx, p_idx, raw))
        sweep = int(sweeps[-1]) + 1
    return out, None
