"""The vectorised row builders equal the plain per-row definitions, bit for bit:
``format_values`` is ``repr`` of every float, ``samples_to_series`` is grouping by point
and ``Series.from_unsorted`` (rows given as columns sorted as ``np.lexsort`` sorts them),
``page_rows`` is sorting every sample by (time, µs, point) and formatting it alone."""

from __future__ import annotations

import datetime as dt

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tsgate.core import rollups
from tsgate.core.model import Series
from tsgate.wire.ace import (
    Cursor,
    Sample,
    decode_cursor,
    format_values,
    page_rows,
    samples_to_series,
    series_of_columns,
)

T0 = 1_760_000_000_000  # 2025-10-09T08:53:20Z
EPOCH = dt.datetime(1970, 1, 1)

# every float, with the ones that sit on repr's exponent boundaries drawn often
EDGES = [0.0, -0.0, 1e-4, -1e-4, 9.999999999999999e-05, 1e16, 9999999999999998.0, 1e-5, 5e-324]
FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(EDGES),
    st.floats(-1e6, 1e6).map(lambda x: round(x, 2)),
    st.integers(-(2**53), 2**53).map(float),
)


def _stamp(ms: int, us: int, *, seconds: bool = False) -> str:
    when = EPOCH + dt.timedelta(milliseconds=ms, microseconds=us)
    return when.isoformat(timespec="seconds" if seconds else "microseconds")


@settings(max_examples=300, deadline=None)
@given(st.lists(FLOATS, max_size=300), st.booleans())
def test_values_are_written_as_repr_writes_them(values: list[float], repeat: bool) -> None:
    v = np.array(values * (3 if repeat else 1), dtype=np.float64)
    assert format_values(v) == [repr(x) for x in v.tolist()]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 5),  # point
            st.integers(0, 40),  # time, in steps
            st.integers(0, 999),  # µs
            FLOATS,
        ),
        max_size=200,
    ),
    st.sampled_from([1, 1000, 300_000]),
    st.booleans(),
    st.booleans(),
)
def test_rows_group_into_the_series_each_point_alone_gives(
    drawn: list[tuple[int, int, int, float]], step_ms: int, whole_ms: bool, in_runs: bool
) -> None:
    if in_runs:  # a point's rows together (a point's own read), else as drawn (a stream)
        drawn = sorted(drawn, key=lambda d: d[0])
    rows = [
        Sample(f"p{p}", repr(v), _stamp(T0 + k * step_ms, 0 if whole_ms else us))
        for p, k, us, v in drawn
    ]
    got = samples_to_series(rows)
    by_point: dict[str, list[Sample]] = {}
    for r in rows:
        by_point.setdefault(r.name, []).append(r)
    assert list(got) == list(by_point)  # first-seen order
    for name, mine in by_point.items():
        t = np.array([_ms_of(r.time) for r in mine], dtype=np.int64)
        us = np.array([_us_of(r.time) for r in mine], dtype=np.uint16)
        v = np.array([float(r.value) for r in mine])
        want = Series.from_unsorted(name, t, v, us)
        have = got[name]
        assert have.t_ms.tolist() == want.t_ms.tolist()
        assert have.v.tobytes() == want.v.tobytes()
        assert (have.us is None) == (want.us is None)
        assert have.micros.tolist() == want.micros.tolist()
        assert have.t_ms.dtype == np.int64 and have.micros.dtype == np.uint16


def _ms_of(text: str) -> int:
    delta = dt.datetime.fromisoformat(text) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _us_of(text: str) -> int:
    return dt.datetime.fromisoformat(text).microsecond % 1000


@st.composite
def _series(draw: st.DrawFn) -> list[Series]:
    out = []
    for i in range(draw(st.integers(1, 6))):
        steps = draw(hnp.arrays(np.int64, st.integers(0, 80), elements=st.integers(0, 60)))
        t = np.unique(T0 + steps * draw(st.sampled_from([1000, 300_000, 300_001])))
        few = st.sampled_from(draw(st.lists(FLOATS, min_size=1, max_size=4)))  # repeated values
        each = draw(st.sampled_from([FLOATS, few]))
        values = draw(st.lists(each, min_size=t.size, max_size=t.size))
        v = np.array(values, dtype=np.float64)
        us = None
        if draw(st.booleans()):
            us = np.array(
                draw(st.lists(st.integers(0, 999), min_size=t.size, max_size=t.size)),
                dtype=np.uint16,
            )
        out.append(Series(f"site/p{i}", t, v, us))
    return out


@settings(max_examples=150, deadline=None)
@given(_series(), st.sampled_from([3, 10, 50, 100, 10**9]), st.booleans())
def test_pages_are_the_samples_sorted_and_formatted_one_by_one(
    series: list[Series], page_size: int, bucket_times: bool
) -> None:
    truth = sorted(
        (int(t), int(u), i, float(v))
        for i, s in enumerate(series)
        for t, u, v in zip(s.t_ms.tolist(), s.micros.tolist(), s.v.tolist(), strict=True)
    )
    want = [
        {
            "name": series[i].name,
            "value": repr(v),
            "time": _stamp(t, 0, seconds=True) if bucket_times else _stamp(t, u),
        }
        for t, u, i, v in truth
    ]
    got: list[dict[str, str]] = []
    cursor: Cursor | None = None
    for _ in range(10_000):
        rows, nxt = page_rows(series, cursor, page_size, bucket_times=bucket_times)
        assert len(rows) <= page_size
        got.extend(rows)
        if nxt is None:
            break
        cursor = decode_cursor(nxt)
    assert got == want


@st.composite
def _raw_series(draw: st.DrawFn) -> list[Series]:
    """Raw samples of a few points, several to a 5-minute bucket or fewer, with µs."""
    out = []
    for i in range(draw(st.integers(1, 5))):
        steps = draw(hnp.arrays(np.int64, st.integers(0, 60), elements=st.integers(0, 90)))
        t = np.unique(T0 + steps * draw(st.sampled_from([37_000, 100_000, 300_000, 300_001])))
        values = draw(st.lists(st.floats(-1e6, 1e6), min_size=t.size, max_size=t.size))
        us = draw(st.lists(st.integers(0, 999), min_size=t.size, max_size=t.size))
        out.append(Series(f"site/p{i}", t, np.array(values), np.array(us, dtype=np.uint16)))
    return out


@settings(max_examples=150, deadline=None)
@given(_raw_series(), st.sampled_from([1, 3, 10, 50]))
def test_a_bucketed_pages_cursor_names_the_next_rows_first_raw_sample(
    raw: list[Series], page_size: int
) -> None:
    """With ``raw`` given, the cursor of a page of 5-minute buckets is stamped with the
    time of the next row's raw sample (its point's first in its bucket), as upstream's
    is, and counts the rows of that bucket already served."""
    slot = 300_000
    firsts: dict[tuple[int, int], tuple[int, int]] = {}  # (bucket, point) -> first (ms, µs)
    for i, s in enumerate(raw):
        for t, u in zip(s.t_ms.tolist(), s.micros.tolist(), strict=True):
            firsts.setdefault((t - t % slot, i), (t, u))
    order = sorted(firsts)  # upstream's rows: by bucket, then point
    bucketed = [rollups.as_series(rollups.bucketize(s, slot), "avg", s.name) for s in raw]
    served = 0
    cursor: Cursor | None = None
    for _ in range(10_000):
        rows, nxt = page_rows(bucketed, cursor, page_size, bucket_times=True, raw=raw)
        assert [r["name"] for r in rows] == [
            raw[i].name for _, i in order[served : served + len(rows)]
        ]
        served += len(rows)
        if nxt is None:
            break
        cursor = decode_cursor(nxt)
        bucket, point = order[served]
        assert cursor.timestamp == _stamp(*firsts[(bucket, point)])
        assert cursor.offset == sum(1 for b, _ in order[:served] if b == bucket)
    assert served == len(order)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 4), st.integers(0, 30)), min_size=1, max_size=60),
    st.sampled_from([1, 997, 2**57]),  # the last: too wide for one integer key
    st.integers(-(2**61), 2**61),
)
def test_rows_as_columns_group_as_lexsort_orders_them(
    drawn: list[tuple[int, int]], step_ms: int, base_ms: int
) -> None:
    """Both keys sorted as one integer where they fit, else ``np.lexsort``: the same order."""
    first_seen = list(dict.fromkeys(p for p, _ in drawn))
    point = np.array([first_seen.index(p) for p, _ in drawn], dtype=np.int64)
    t_ms = np.array([base_ms // 2 + k * step_ms for _, k in drawn], dtype=np.int64)
    us = np.arange(point.size, dtype=np.uint16) % 3
    v = np.arange(point.size, dtype=np.float64)
    names = [f"p{p}" for p in first_seen]
    got = series_of_columns(names, point, t_ms, us, v)
    order = np.lexsort((t_ms, point))
    keep = np.ones(order.size, dtype=bool)
    keep[:-1] = (t_ms[order][1:] != t_ms[order][:-1]) | (point[order][1:] != point[order][:-1])
    kept = order[keep]
    assert list(got) == names
    for i, name in enumerate(names):
        mine = kept[point[kept] == i]
        assert got[name].t_ms.tolist() == t_ms[mine].tolist()
        assert got[name].v.tolist() == v[mine].tolist()
        assert got[name].micros.tolist() == us[mine].tolist()
