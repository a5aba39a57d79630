"""PromQL windows against brute force, value formatting, label matching."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import simtruth
from tsgate.core import rollups
from tsgate.core.model import Series
from tsgate.promql import windows
from tsgate.promql.labels import Matcher, series_of
from tsgate.promql.wire import format_value

FUNCS = ["avg", "min", "max", "sum", "count", "last", "stddev", "stdvar"]


@st.composite
def samples(draw: st.DrawFn) -> Series:
    times = draw(st.lists(st.integers(0, 20_000), unique=True, max_size=60))
    values = draw(
        st.lists(
            st.floats(-1e3, 1e3, allow_nan=False) | st.just(math.nan),
            min_size=len(times),
            max_size=len(times),
        )
    )
    order = np.argsort(times)
    return Series("p", np.array(times, dtype=np.int64)[order], np.array(values)[order])


@settings(max_examples=200, deadline=None)
@given(
    s=samples(),
    func=st.sampled_from(FUNCS),
    start=st.integers(-500, 5000),
    step=st.integers(1, 3000),
    range_ms=st.integers(1, 8000),
)
def test_raw_windows_equal_brute_force(
    s: Series, func: str, start: int, step: int, range_ms: int
) -> None:
    times = np.arange(start, start + 10 * step, step, dtype=np.int64)
    got = windows.reduce(windows.Cells.of_series(s), func, times, range_ms)
    rows = list(zip(s.t_ms.tolist(), s.v.tolist(), strict=True))
    for t, value in zip(times.tolist(), got.tolist(), strict=True):
        expected = simtruth.over_time(func, simtruth.window(rows, t, range_ms))
        if expected is None:
            assert math.isnan(value)
        else:
            assert value == pytest.approx(expected, rel=1e-9, abs=1e-6)


@settings(max_examples=200, deadline=None)
@given(
    s=samples(),
    func=st.sampled_from(FUNCS),
    first=st.integers(-2, 20),
    buckets_per_step=st.integers(1, 4),
    buckets_per_range=st.integers(1, 6),
)
def test_bucket_windows_equal_the_samples_they_hold(
    s: Series, func: str, first: int, buckets_per_step: int, buckets_per_range: int
) -> None:
    width = 1000
    cells = windows.Cells.of_buckets(rollups.bucketize(s, width))
    times = np.arange(10, dtype=np.int64) * buckets_per_step * width + first * width
    range_ms = buckets_per_range * width
    got = windows.reduce(cells, func, times, range_ms)
    rows = list(zip(s.t_ms.tolist(), s.v.tolist(), strict=True))
    for t, value in zip(times.tolist(), got.tolist(), strict=True):
        # buckets hold [t - r, t): the raw window shifted by one millisecond
        expected = simtruth.over_time(func, simtruth.window(rows, t - 1, range_ms))
        if expected is None:
            assert math.isnan(value)
        else:
            assert value == pytest.approx(expected, rel=1e-9, abs=1e-6)


def test_last_with_freshness_needs_a_recent_sample() -> None:
    s = Series("p", np.array([100, 1900], dtype=np.int64), np.array([1.0, 2.0]))
    cells = windows.Cells.of_buckets(rollups.bucketize(s, 1000))
    times = np.array([1000, 2000, 3000], dtype=np.int64)
    got = windows.reduce(cells, "last", times, 1000, fresh_ms=500)
    # at 1000 the last sample (100) is 900 ms old; at 2000 it is 100 ms old; 3000: none
    assert np.isnan(got[0]) and got[1] == 2.0 and np.isnan(got[2])


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (2.0, "2"),
        (0.5, "0.5"),
        (-3.25, "-3.25"),
        (1e-05, "0.00001"),
        (1e21, "1000000000000000000000"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
        (0.1 + 0.2, "0.30000000000000004"),
        (np.float64(7.0), "7"),
    ],
)
def test_values_are_written_as_prometheus_writes_them(value: float, text: str) -> None:
    assert format_value(value) == text


def test_point_labels_and_anchored_regex_matchers() -> None:
    point = {
        "name": "ses/s/a/b",
        "marker_tags": ["vav", "Temp", "point"],
        "kv_tags": {"unit": "°F"},
        "point_type": "bacnet",
        "collect_interval": 900,
    }
    ref = series_of("s", point)
    labels = ref.label_map
    assert labels == {
        "__name__": "ace",
        "site": "s",
        "point": "ses/s/a/b",
        "unit": "°F",
        "kind": "bacnet",
        "tags": ",point,temp,vav,",
    }
    assert ref.lookback_ms == 1_800_000
    assert Matcher("tags", "=~", ".*,vav,.*").matches(labels)
    assert not Matcher("tags", "=~", "vav").matches(labels)  # anchored, as in Prometheus
    assert Matcher("unit", "!~", "%|kW").matches(labels)
    assert Matcher("missing", "=", "").matches(labels)  # an absent label is ""
    assert not Matcher("site", "!=", "s").matches(labels)
    bare = series_of("s", {"name": "x"})
    assert "unit" not in bare.label_map and bare.lookback_ms == 600_000


@settings(max_examples=300, deadline=None)
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=30))
def test_bulk_formatting_equals_one_by_one(values: list[float]) -> None:
    from tsgate.promql.wire import format_values

    array = np.array(values, dtype=np.float64)
    assert [t.decode() for t in format_values(array)] == [format_value(v) for v in values]
