"""Aligned frames: the index, placing sparse buckets, fills."""

from __future__ import annotations

import numpy as np
import pytest

from tsgate.core import frame
from tsgate.core.model import Series

N = np.nan


def test_index_starts_at_the_interval_holding_start() -> None:
    assert frame.index(1050, 1400, 100).tolist() == [1000, 1100, 1200, 1300]
    assert frame.index(1000, 1000, 100).tolist() == []


def test_place_puts_buckets_in_their_rows_and_drops_outsiders() -> None:
    times = frame.index(0, 500, 100)
    s = Series("p", np.array([-100, 100, 400, 500], dtype=np.int64), np.array([9.0, 1.0, 4.0, 5.0]))
    assert np.allclose(frame.place(times, s), [N, 1.0, N, N, 4.0], equal_nan=True)


@pytest.mark.parametrize(
    ("how", "values", "expected"),
    [
        ("none", [N, 1, N, 3, N], [N, 1, N, 3, N]),
        ("previous", [N, 1, N, N, 4, N], [N, 1, 1, 1, 4, 4]),
        ("linear", [N, 1, N, N, 4, N], [N, 1, 2, 3, 4, N]),
        ("previous", [N, N], [N, N]),
        ("linear", [5, N], [5, N]),
    ],
)
def test_fill(how: str, values: list[float], expected: list[float]) -> None:
    got = frame.fill(np.array(values, dtype=np.float64), how)
    assert np.allclose(got, expected, equal_nan=True)


def test_build_gives_coverage_per_interval() -> None:
    times = np.array([0, 200], dtype=np.int64)
    values = Series("p", times, np.array([1.0, 3.0]))
    counts = Series("p", times, np.array([2.0, 1.0]))
    built = frame.build(0, 300, 100, ["p"], [values], [counts], [2.0], "linear")
    assert built.rows == 3 and built.names == ("p",)
    assert np.allclose(built.values[0], [1, 2, 3])
    assert np.allclose(built.coverage[0], [1.0, 0.0, 0.5])  # the filled row has none
