"""The columnar MessagePack layout of chart series."""

from __future__ import annotations

import numpy as np
import pytest

from tsgate.core.model import Series
from tsgate.wire.chart import decimal_scale, series_object

T = np.array([0, 300_000, 600_000], dtype=np.int64)


@pytest.mark.parametrize(
    ("values", "scale"),
    [
        ([72.35, 71.9, 70.0], 100),
        ([1.0, 0.0, 1.0], 1),
        ([0.5, 0.25, 0.125], 1000),
        ([1e-7, 0, 0], None),
        ([3e-10, 0, 1], None),
        ([1.3165776750308944e-22, 0], None),
        ([0.30000000000000004, 0.1], 10),
        ([1e12, 0, 0], None),
    ],
)
def test_decimal_scale(values: list[float], scale: int | None) -> None:
    assert decimal_scale(np.array(values)) == scale


def test_exact_decimals_travel_as_integer_steps() -> None:
    s = Series("p", T, np.array([72.35, 71.9, 70.0]))
    out = series_object(s, "columnar", msgpack=True)
    assert out["vs"] == 100 and "v" not in out
    back = np.cumsum(np.frombuffer(out["vd"], dtype="<i4")) / out["vs"]
    assert back.tolist() == [72.35, 71.9, 70.0]
    assert (out["t0"] + np.cumsum(np.frombuffer(out["dt"], dtype="<i4"))).tolist() == T.tolist()


def test_gaps_and_long_pauses_fall_back_to_floats() -> None:
    with_nan = series_object(Series("p", T, np.array([1.5, np.nan, 2.5])), "columnar", msgpack=True)
    assert "vd" not in with_nan and np.isnan(np.frombuffer(with_nan["v"], dtype="<f4")[1])
    far = np.array([0, 40 * 86_400_000], dtype=np.int64)
    paused = series_object(Series("p", far, np.array([1.0, 2.0])), "columnar", msgpack=True)
    assert "dt" not in paused and np.frombuffer(paused["t"], dtype="<f8").tolist() == [
        0.0,
        40 * 86_400_000.0,
    ]
