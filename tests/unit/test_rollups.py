"""Rollups: bucket statistics against a plain numpy reference, coarsening, merging, packing."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tsgate.core import grids, rollups
from tsgate.core.codec import CodecError, pack_columns
from tsgate.core.grids import Grid
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE, Series

FAST = settings(max_examples=120, deadline=None)
WIDTHS = st.sampled_from([15 * MS_PER_MINUTE, MS_PER_HOUR, 6 * MS_PER_HOUR, MS_PER_DAY])
VALUE = st.one_of(st.floats(-1e4, 1e4), st.just(np.nan))
STATE = st.sampled_from([0.0, 1.0, 2.0, 5.0, np.nan])  # on/off and modes, with NaNs


@st.composite
def series(draw: st.DrawFn, max_size: int = 400) -> Series:
    """Ascending times with short steps and long gaps (hours to days), values with NaNs."""
    n = draw(st.integers(0, max_size))
    start = draw(st.integers(-3 * MS_PER_DAY, 3 * MS_PER_DAY))
    steps = draw(
        hnp.arrays(
            np.int64,
            n,
            elements=st.one_of(st.integers(1, 10 * MS_PER_MINUTE), st.integers(1, 3 * MS_PER_DAY)),
        )
    )
    v = draw(hnp.arrays(np.float64, n, elements=draw(st.sampled_from([VALUE, STATE]))))
    return Series("p", start + np.cumsum(steps), v)


def reference(s: Series, width_ms: int, origin_ms: int = 0) -> dict[int, dict[str, float]]:
    """Per-bucket statistics the slow, obvious way: group, then plain numpy per group."""
    out: dict[int, dict[str, float]] = {}
    keys = (s.t_ms - origin_ms) // width_ms * width_ms + origin_ms
    for key in np.unique(keys):
        t, v = s.t_ms[keys == key], s.v[keys == key]
        ok = ~np.isnan(v)
        if not ok.any():
            continue
        out[int(key)] = {
            "count": float(ok.sum()),
            "sum": float(np.nansum(v)),
            "avg": float(np.nanmean(v)),
            "stddev": float(np.nanstd(v)),
            "min": float(np.nanmin(v)),
            "max": float(np.nanmax(v)),
            "first": float(v[ok][0]),
            "last": float(v[ok][-1]),
            "first_ms": float(t[ok][0]),
            "last_ms": float(t[ok][-1]),
            "min_ms": float(t[ok][np.argmin(v[ok])]),  # argmin: the first of equal minima
            "max_ms": float(t[ok][np.argmax(v[ok])]),
            # each value held until the next sample of the bucket
            "hold": float(np.sum(v[ok][:-1] * np.diff(t[ok]))),
            "on_ms": float(np.sum((v[ok][:-1] != 0) * np.diff(t[ok]))),
            "rises": float(np.sum((v[ok][:-1] == 0) & (v[ok][1:] != 0))),
        }
    return out


def assert_same_buckets(
    got: rollups.Buckets, want: rollups.Buckets, *, states: bool = True
) -> None:
    """Exact on everything except float sums, which depend on summation order."""
    assert got.width_ms == want.width_ms
    exact = ("start_ms", "count", "min", "max", "first", "last", "first_ms", "last_ms")
    for field in (*exact, "min_ms", "max_ms"):
        np.testing.assert_array_equal(getattr(got, field), getattr(want, field), err_msg=field)
    np.testing.assert_array_equal(got.rises, want.rises, err_msg="rises")
    for field in ("sum", "sumsq", "hold", "on_ms", "lin", "lin_ms"):
        np.testing.assert_allclose(
            getattr(got, field), getattr(want, field), rtol=1e-9, atol=1e-6, err_msg=field
        )
    assert got.gap_ms == want.gap_ms
    if not states:
        return
    assert got.has_states == want.has_states
    if len(want) and want.has_states:
        # the same time in each state (a state set may hold states no bucket reached)
        for k, state in enumerate(want.states):
            column = np.flatnonzero(got.states == state)
            held = got.state_ms[:, column[0]] if column.size else np.zeros(len(got))
            np.testing.assert_allclose(held, want.state_ms[:, k], atol=1e-6, err_msg=f"{state}")


ORIGINS = st.sampled_from([0, 4 * MS_PER_DAY, -MS_PER_HOUR, 3 * MS_PER_HOUR])


@FAST
@given(series(), WIDTHS, ORIGINS)
def test_bucketize_matches_numpy_reference(s: Series, width_ms: int, origin_ms: int) -> None:
    b = rollups.bucketize(s, width_ms, origin_ms)
    ref = reference(s, width_ms, origin_ms)
    assert b.start_ms.tolist() == sorted(ref)
    assert bool(np.all((b.start_ms - origin_ms) % width_ms == 0))
    for agg in ("count", "sum", "avg", "min", "max", "first", "last"):
        want = [ref[k][agg] for k in sorted(ref)]
        np.testing.assert_allclose(rollups.values(b, agg), want, rtol=1e-9, atol=1e-6)
    # One-pass variance loses ~sqrt(eps) * |mean| absolutely (documented in stddev).
    std_want = [ref[k]["stddev"] for k in sorted(ref)]
    np.testing.assert_allclose(rollups.stddev(b), std_want, rtol=1e-6, atol=1e-3)
    np.testing.assert_array_equal(b.first_ms, [ref[k]["first_ms"] for k in sorted(ref)])
    np.testing.assert_array_equal(b.last_ms, [ref[k]["last_ms"] for k in sorted(ref)])
    for field in ("min_ms", "max_ms", "rises"):
        np.testing.assert_array_equal(getattr(b, field), [ref[k][field] for k in sorted(ref)])
    for field in ("hold", "on_ms"):
        want = [ref[k][field] for k in sorted(ref)]
        np.testing.assert_allclose(getattr(b, field), want, rtol=1e-9, atol=1e-3)
    # the extremes' times are real sample times holding those values
    position = np.searchsorted(s.t_ms, b.min_ms)
    np.testing.assert_array_equal(s.v[position], b.min)
    np.testing.assert_array_equal(s.v[np.searchsorted(s.t_ms, b.max_ms)], b.max)


@FAST
@given(series())
def test_coarsen_hourly_equals_direct_bucketing(s: Series) -> None:
    hourly = rollups.bucketize(s, MS_PER_HOUR)
    for width in (6 * MS_PER_HOUR, MS_PER_DAY):
        assert_same_buckets(rollups.coarsen(hourly, width), rollups.bucketize(s, width))


@FAST
@given(series(), st.sampled_from([MS_PER_DAY, 7 * MS_PER_DAY]), st.integers(-10, 10))
def test_coarsen_with_an_origin_equals_direct_bucketing(s: Series, width: int, days: int) -> None:
    origin = days * MS_PER_DAY
    daily = rollups.bucketize(s, MS_PER_DAY)
    assert_same_buckets(rollups.coarsen(daily, width, origin), rollups.bucketize(s, width, origin))


def test_iso_weeks_start_on_monday() -> None:
    monday = 1_759_104_000_000  # 2025-09-29T00:00:00Z, a Monday
    t = np.array([monday - 1, monday, monday + 7 * MS_PER_DAY - 1], dtype=np.int64)
    b = rollups.bucketize(Series("p", t, np.array([1.0, 2.0, 3.0])), 7 * MS_PER_DAY, 4 * MS_PER_DAY)
    assert b.start_ms.tolist() == [monday - 7 * MS_PER_DAY, monday]
    assert b.count.tolist() == [1, 2]
    with pytest.raises(ValueError, match="not on the"):
        rollups.coarsen(b, 14 * MS_PER_DAY, MS_PER_HOUR)


@FAST
@given(series(), series(), WIDTHS)
def test_merge_takes_newer_bucket_on_collision(old: Series, new: Series, width: int) -> None:
    a, b = rollups.bucketize(old, width), rollups.bucketize(new, width)
    merged = rollups.merge(a, b)
    assert merged.start_ms.tolist() == sorted(set(a.start_ms.tolist()) | set(b.start_ms.tolist()))
    from_b = np.isin(merged.start_ms, b.start_ms)
    # state times are known when both sides know them (some value that is no state: not)
    both = a.has_states and b.has_states
    assert merged.has_states == both
    assert_same_buckets(merged.take(from_b), b, states=both)
    kept = a.take(~np.isin(a.start_ms, b.start_ms))
    assert_same_buckets(merged.take(~from_b), kept, states=both)


def test_stddev_clips_cancellation_to_zero() -> None:
    flat = Series("p", np.arange(288, dtype=np.int64) * 300_000, np.full(288, 70.1))
    b = rollups.bucketize(flat, MS_PER_DAY)
    assert b.sumsq[0] / b.count[0] - (b.sum[0] / b.count[0]) ** 2 != 0  # the cancellation
    assert rollups.stddev(b)[0] < 1e-5
    assert bool(np.all(np.isfinite(rollups.stddev(b))))


def test_all_nan_buckets_vanish_and_gaps_stay_gaps() -> None:
    t = np.array([0, 1, MS_PER_HOUR, 5 * MS_PER_HOUR], dtype=np.int64)
    b = rollups.bucketize(Series("p", t, np.array([1.0, 3.0, np.nan, 2.0])), MS_PER_HOUR)
    assert b.start_ms.tolist() == [0, 5 * MS_PER_HOUR]
    assert b.count.tolist() == [2, 1]
    assert rollups.values(b, "avg").tolist() == [2.0, 2.0]
    assert len(rollups.bucketize(Series.empty("p"), MS_PER_HOUR)) == 0


def test_crop_and_concat() -> None:
    t = np.arange(0, 10 * MS_PER_HOUR, 30 * MS_PER_MINUTE, dtype=np.int64)
    b = rollups.bucketize(Series("p", t, np.arange(t.size, dtype=np.float64)), MS_PER_HOUR)
    early, late = rollups.crop(b, 0, 4 * MS_PER_HOUR), rollups.crop(b, 4 * MS_PER_HOUR, 10**12)
    assert len(early) == 4
    assert len(rollups.crop(b, 5, 4)) == 0
    assert_same_buckets(rollups.concat([early, late]), b)
    assert_same_buckets(rollups.concat([late, early]), b)
    assert rollups.concat([rollups.Buckets.empty(MS_PER_HOUR)]).width_ms == MS_PER_HOUR


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda b: rollups.coarsen(b, 90 * MS_PER_MINUTE), "not a multiple"),
        (lambda b: rollups.bucketize(Series.empty("p"), 0), "positive"),
        (lambda b: rollups.concat([b, rollups.Buckets.empty(MS_PER_DAY)]), "cannot join"),
        (lambda b: rollups.concat([]), "at least one"),
        (lambda b: rollups.values(b, "median"), "unknown aggregate"),
    ],
)
def test_bad_requests_raise_value_error(call: object, message: str) -> None:
    assert callable(call)
    with pytest.raises(ValueError, match=message):
        call(rollups.Buckets.empty(MS_PER_HOUR))


@FAST
@given(series(), WIDTHS)
def test_pack_round_trip(s: Series, width: int) -> None:
    b = rollups.bucketize(s, width)
    back = rollups.unpack(rollups.pack(b))
    assert back.width_ms == width
    assert_same_buckets(back, b)


def test_unpack_refuses_other_blobs() -> None:
    ints: npt.NDArray[np.int64] = np.arange(3, dtype=np.int64)
    fmt: npt.NDArray[np.int64] = np.array([rollups.FORMAT], dtype=np.int64)
    with pytest.raises(CodecError, match="lacks columns"):
        rollups.unpack(pack_columns({"format": fmt, "start_ms": ints}))
    # a blob from before the format was recorded (and buckets kept state times) is stale
    b = rollups.bucketize(Series("p", ints * MS_PER_MINUTE, ints.astype(np.float64)), MS_PER_HOUR)
    old = {f: getattr(b, f) for f in rollups.ARRAY_FIELDS}
    width: npt.NDArray[np.int64] = np.array([MS_PER_HOUR], dtype=np.int64)
    with pytest.raises(rollups.StaleFormat, match="format none, not 2"):
        rollups.unpack(pack_columns({"width_ms": width, **old}))
    with pytest.raises(rollups.StaleFormat, match="format 1, not 2"):
        rollups.unpack(pack_columns({"format": fmt - 1, "width_ms": width, **old}))
    # state times that do not fit the states
    states: npt.NDArray[np.float64] = np.array([0.0, 1.0])
    with pytest.raises(CodecError, match="state times"):
        rollups.unpack(
            pack_columns(
                {
                    "format": fmt,
                    "width_ms": width,
                    "gap_ms": width,
                    **old,
                    "states": states,
                    "state_ms": ints * 1.0,
                }
            )
        )
    blob = rollups.pack(rollups.Buckets.empty(MS_PER_HOUR))
    with pytest.raises(CodecError):
        rollups.unpack(blob[:-4])


GRIDS = st.sampled_from(
    [
        (MS_PER_HOUR, 0, MS_PER_HOUR),
        (6 * MS_PER_HOUR, 0, MS_PER_HOUR),
        (MS_PER_DAY, 0, MS_PER_HOUR),
        (MS_PER_DAY, 0, MS_PER_DAY),
        (7 * MS_PER_DAY, 4 * MS_PER_DAY, MS_PER_DAY),  # ISO weeks from daily rollups
        (7 * MS_PER_DAY, 4 * MS_PER_DAY, MS_PER_HOUR),
    ]
)


@FAST
@given(
    series(), GRIDS, st.integers(-4 * MS_PER_DAY, 4 * MS_PER_DAY), st.integers(1, 8 * MS_PER_DAY)
)
def test_compose_equals_bucketing_only_the_samples_in_range(
    s: Series, grid: tuple[int, int, int], start: int, length: int
) -> None:
    """Stored buckets hold samples outside the range too; the composed answer never does."""
    width, origin, level = grid
    end = start + length
    edges, interior = grids.split_edges(start, end, level)
    in_range = s.crop(start, end)
    want = grids.clip_start(rollups.bucketize(in_range, width, origin), start)
    if interior is None:
        assert edges == [(start, end)]
        return
    stored = rollups.bucketize(s, level)
    got = grids.compose(
        rollups.crop(stored, *interior), [s.crop(*e) for e in edges], Grid(width, origin), start
    )
    assert_same_buckets(got, want)
    assert int(got.count.sum()) == int(np.count_nonzero(~np.isnan(in_range.v)))
    assert bool(np.all((got.start_ms >= start) & (got.start_ms < end)))
    for field in ("first_ms", "last_ms", "min_ms", "max_ms"):
        times = getattr(got, field)
        assert bool(np.all((times >= start) & (times < end))), field


@pytest.mark.parametrize(
    ("start", "end", "edges", "interior"),
    [
        (0, 3 * MS_PER_HOUR, [], (0, 3 * MS_PER_HOUR)),
        (10, 3 * MS_PER_HOUR, [(10, MS_PER_HOUR)], (MS_PER_HOUR, 3 * MS_PER_HOUR)),
        (0, 3 * MS_PER_HOUR + 5, [(3 * MS_PER_HOUR, 3 * MS_PER_HOUR + 5)], (0, 3 * MS_PER_HOUR)),
        (10, 20, [(10, 20)], None),
        (10, MS_PER_HOUR + 5, [(10, MS_PER_HOUR + 5)], None),  # no whole hour inside
        (-MS_PER_HOUR - 5, -5, [(-MS_PER_HOUR - 5, -5)], None),  # before 1970: floors, too
        (
            -2 * MS_PER_HOUR - 5,
            5,
            [(-2 * MS_PER_HOUR - 5, -2 * MS_PER_HOUR), (0, 5)],
            (-2 * MS_PER_HOUR, 0),
        ),
        (5, 5, [], None),
    ],
)
def test_split_edges(
    start: int, end: int, edges: list[tuple[int, int]], interior: tuple[int, int] | None
) -> None:
    assert grids.split_edges(start, end, MS_PER_HOUR) == (edges, interior)


def test_clip_start_stamps_only_a_partial_first_bucket() -> None:
    t = np.array([MS_PER_HOUR + 10, 2 * MS_PER_HOUR + 5], dtype=np.int64)
    b = rollups.bucketize(Series("p", t, np.array([1.0, 2.0])), MS_PER_HOUR)
    assert grids.clip_start(b, MS_PER_HOUR + 7).start_ms.tolist() == [
        MS_PER_HOUR + 7,
        2 * MS_PER_HOUR,
    ]
    assert grids.clip_start(b, MS_PER_HOUR) is b
    empty = rollups.Buckets.empty(MS_PER_HOUR)
    assert grids.clip_start(empty, 5) is empty
