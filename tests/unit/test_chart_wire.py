"""The columnar MessagePack layout of chart series: arrays in byte planes, read back
exactly by the Python client's decoder and by the chart page's (``decode.js`` in Node).

Series are drawn with every length from 0, gaps from 1 ms to beyond int32 ms (24.8 days,
where times travel as float64), NaN and infinite values, exact decimals (``k / 10**d``,
d ≤ 4, within the int32 steps' range) and floats that are not decimals. Times must come
back equal; values equal to the input where the encoding holds them exactly (decimals,
float32 values) and to the input's float32 otherwise.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.pagedecoder import SCRIPT, node
from tsgate.client._core import columns
from tsgate.core.model import Series
from tsgate.wire.chart import decimal_scale, planes, series_object

T = np.array([0, 300_000, 600_000], dtype=np.int64)
T0 = 1_760_000_000_000  # 2025-10-09T08:53:20Z
DAY_MS = 86_400_000
INT32_MAX = 2**31 - 1
FLAT_KEYS = {"dt", "t", "v", "vd"}  # the names of the arrays before the byte planes


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


def _unplane(raw: bytes, dtype: str) -> np.ndarray[Any, Any]:
    size = np.dtype(dtype).itemsize
    return np.frombuffer(raw, dtype=np.uint8).reshape(size, -1).T.copy().view(dtype).ravel()


def test_planes_hold_every_first_byte_then_every_second() -> None:
    # int32 0x01020304 is 04 03 02 01 little-endian; big-endian input is written the same
    assert planes(np.array([0, 0x01020304], dtype="<i4")) == bytes([0, 4, 0, 3, 0, 2, 0, 1])
    assert planes(np.array([0, 0x01020304], dtype=">i4")) == bytes([0, 4, 0, 3, 0, 2, 0, 1])
    assert planes(np.array([1.0], dtype="<f8")) == np.array([1.0], dtype="<f8").tobytes()
    assert planes(np.empty(0, dtype="<f4")) == b""


def test_exact_decimals_travel_as_integer_steps() -> None:
    s = Series("p", T, np.array([72.35, 71.9, 70.0]))
    out = series_object(s, "columnar", msgpack=True)
    assert out["vs"] == 100 and "vp" not in out
    back = np.cumsum(_unplane(out["vdp"], "<i4")) / out["vs"]
    assert back.tolist() == [72.35, 71.9, 70.0]
    assert (out["t0"] + np.cumsum(_unplane(out["dtp"], "<i4"))).tolist() == T.tolist()
    assert not FLAT_KEYS & out.keys()


def test_gaps_and_long_pauses_fall_back_to_floats() -> None:
    with_nan = series_object(Series("p", T, np.array([1.5, np.nan, 2.5])), "columnar", msgpack=True)
    assert "vdp" not in with_nan and np.isnan(_unplane(with_nan["vp"], "<f4")[1])
    far = np.array([0, 40 * DAY_MS], dtype=np.int64)
    paused = series_object(Series("p", far, np.array([1.0, 2.0])), "columnar", msgpack=True)
    assert "dtp" not in paused and _unplane(paused["tp"], "<f8").tolist() == [
        0.0,
        40 * DAY_MS * 1.0,
    ]


def test_int32_deltas_up_to_their_largest() -> None:
    edge = np.array([T0, T0 + INT32_MAX], dtype=np.int64)
    assert "dtp" in series_object(Series("p", edge, np.ones(2)), "columnar", msgpack=True)
    over = np.array([T0, T0 + INT32_MAX + 1], dtype=np.int64)
    assert "tp" in series_object(Series("p", over, np.ones(2)), "columnar", msgpack=True)


# ---- round trips ---------------------------------------------------------------------

GAPS_MS = st.one_of(
    st.integers(1, 900_000),  # reports seconds to minutes apart
    st.integers(1, 10 * DAY_MS),
    st.sampled_from([INT32_MAX, INT32_MAX + 1]),
    st.integers(25 * DAY_MS, 400 * DAY_MS),  # beyond int32 ms
)
DECIMALS = st.builds(lambda k, d: k / 10**d, st.integers(-(10**5), 10**5), st.integers(0, 4))
FLOAT32S = st.floats(width=32, allow_nan=True, allow_infinity=True)
FLOAT64S = st.one_of(st.floats(-3e38, 3e38), st.just(np.nan))  # within float32's range


@st.composite
def series(draw: st.DrawFn, values: st.SearchStrategy[float], name: str = "p") -> Series:
    gaps = draw(st.lists(GAPS_MS, max_size=150))
    start = draw(st.integers(0, 2**42))  # 1970 to 2109
    t = start + np.cumsum(np.array([0, *gaps], dtype=np.int64))
    v = draw(st.lists(values, min_size=len(t), max_size=len(t)))
    n = draw(st.sampled_from([len(t), len(t), 1, 0]))  # now and then a single sample or none
    return Series(name, t[:n], np.array(v[:n], dtype=np.float64))


ANY_SERIES = st.one_of(series(DECIMALS), series(FLOAT32S), series(FLOAT64S))


def _round_trip(s: Series) -> tuple[dict[str, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    out = series_object(s, "columnar", msgpack=True)
    sent = msgspec.msgpack.decode(msgspec.msgpack.encode({"series": [out]}))["series"][0]
    t, v = columns(sent)
    return out, t, v


def _check_arrays(out: dict[str, Any], s: Series) -> None:
    assert not FLAT_KEYS & out.keys()
    assert out["n"] == len(s) and out["name"] == s.name
    assert len(out.keys() & {"dtp", "tp"}) == 1 and len(out.keys() & {"vp", "vdp"}) == 1
    assert ("vs" in out) == ("vdp" in out)
    for key, size in (("dtp", 4), ("tp", 8), ("vp", 4), ("vdp", 4)):
        if key in out:
            assert len(out[key]) == size * len(s)


def _expected_values(out: dict[str, Any], s: Series) -> np.ndarray[Any, Any]:
    if "vdp" in out:
        # the int32 steps carry the decimal the value is within 1e-9 of (the value itself
        # when it is one)
        return np.rint(s.v * out["vs"]) / out["vs"]
    return s.v.astype(np.float32).astype(np.float64)


@settings(max_examples=300, deadline=None)
@given(ANY_SERIES)
def test_round_trip_through_the_python_decoder(s: Series) -> None:
    out, t, v = _round_trip(s)
    _check_arrays(out, s)
    assert t.dtype == np.int64 and t.tolist() == s.t_ms.tolist()
    np.testing.assert_array_equal(v, _expected_values(out, s), strict=True)


@settings(max_examples=200, deadline=None)
@given(series(DECIMALS))
def test_exact_decimals_come_back_exactly(s: Series) -> None:
    out, t, v = _round_trip(s)
    assert "vdp" in out or not len(s)
    assert t.tolist() == s.t_ms.tolist()
    np.testing.assert_array_equal(v, s.v, strict=True)


@settings(max_examples=200, deadline=None)
@given(series(FLOAT32S))
def test_float32_values_come_back_exactly(s: Series) -> None:
    _, t, v = _round_trip(s)
    assert t.tolist() == s.t_ms.tolist()
    np.testing.assert_array_equal(v, s.v, strict=True)


def test_a_long_gap_keeps_times_exact() -> None:
    t = np.array([T0, T0 + 1, T0 + 40 * DAY_MS + 7, T0 + 41 * DAY_MS], dtype=np.int64)
    out, back, v = _round_trip(Series("p", t, np.array([1.5, np.nan, -2.0, 3.25])))
    assert "tp" in out and back.tolist() == t.tolist()
    np.testing.assert_array_equal(v, [1.5, np.nan, -2.0, 3.25])


def test_the_python_decoder_reads_earlier_servers_plain_arrays() -> None:
    values = np.array([72.4, 72.5, 71.9])
    plain = {
        "name": "p",
        "n": 3,
        "t0": T0,
        "dt": np.array([0, 300_000, 1], dtype="<i4").tobytes(),
        "vs": 10,
        "vd": np.diff(np.rint(values * 10).astype(np.int64), prepend=0).astype("<i4").tobytes(),
    }
    t, v = columns(plain)
    assert t.tolist() == [T0, T0 + 300_000, T0 + 300_001] and v.tolist() == values.tolist()
    far = {"name": "q", "n": 1, "t0": T0, "t": np.array([T0], "<f8").tobytes(), "v": b"\0" * 4}
    assert [x.tolist() for x in columns(far)] == [[T0], [0.0]]


def test_the_python_decoder_refuses_what_it_cannot_read() -> None:
    out = series_object(Series("p", T, np.array([1.5, np.nan, 3.5])), "columnar", msgpack=True)
    with pytest.raises(ValueError, match="dtp has 8 bytes"):
        columns({**out, "dtp": out["dtp"][:8]})
    with pytest.raises(ValueError, match="neither vp nor v"):
        columns({k: x for k, x in out.items() if k != "vp"})


@settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(ANY_SERIES, min_size=1, max_size=6))
def test_the_page_decodes_what_the_encoder_writes(tmp_path: Path, drawn: list[Series]) -> None:
    node_path = node()
    drawn = [Series(f"p{i}", s.t_ms, s.v) for i, s in enumerate(drawn)]
    sent = [series_object(s, "columnar", msgpack=True) for s in drawn]
    body = tmp_path / "chart.msgpack"
    body.write_bytes(msgspec.msgpack.encode({"metadata": {}, "series": sent}))
    run = subprocess.run(
        [node_path, str(SCRIPT), str(body)], capture_output=True, check=False, timeout=60
    )
    assert run.returncode == 0, run.stderr.decode()
    decoded = json.loads(run.stdout)
    assert [s["name"] for s in decoded] == [s.name for s in drawn]
    for got, s, out in zip(decoded, drawn, sent, strict=True):
        assert got["t"] == s.t_ms.tolist()
        values = np.array([np.nan if x is None else float(x) for x in got["v"]])
        np.testing.assert_array_equal(values, _expected_values(out, s), strict=True)
