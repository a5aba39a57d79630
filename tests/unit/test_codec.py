"""Storage codec: exact round trips, refusal of foreign bytes, and realistic sizes."""

from __future__ import annotations

import contextlib

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tsgate.core.codec import (
    CodecError,
    decode_series,
    encode_series,
    pack_columns,
    unpack_columns,
)
from tsgate.core.model import MS_PER_DAY, Series

FAST = settings(max_examples=150, deadline=None)
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True, width=64)


@st.composite
def series(draw: st.DrawFn) -> Series:
    """Ascending, duplicate-free times (gaps, negative epochs) with any float64 values."""
    n = draw(st.integers(min_value=0, max_value=300))
    start = draw(st.integers(min_value=-(10**13), max_value=10**13))
    gaps = draw(hnp.arrays(np.int64, n, elements=st.integers(1, 10 * MS_PER_DAY)))
    values = draw(hnp.arrays(np.float64, n, elements=ANY_FLOAT))
    return Series("p", start + np.cumsum(gaps), values)


def _same_bits(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> bool:
    # Bit equality: NaN payloads and the sign of zero survive too.
    return bool(np.array_equal(a.view(np.uint64), b.view(np.uint64)))


def zone_temperature(n: int, seed: int = 1) -> Series:
    """5-minute zone temperature: diurnal swing, drift, 2-decimal readings, seconds of jitter."""
    rng = np.random.default_rng(seed)
    t0 = 1_760_000_000_000
    t = t0 + np.arange(n, dtype=np.int64) * 300_000 + rng.integers(0, 3_000, n)
    hours = (t - t0) / 3.6e6
    drift = np.cumsum(rng.normal(0, 0.05, n))
    v = 71 + 3 * np.sin(2 * np.pi * hours / 24) + drift + rng.normal(0, 0.1, n)
    return Series("zone/temp", t, np.round(v, 2))


@FAST
@given(series())
def test_series_round_trip_is_bit_exact(s: Series) -> None:
    back = decode_series("other", encode_series(s))
    assert back.name == "other"
    assert back.t_ms.dtype == np.int64
    assert back.v.dtype == np.float64
    np.testing.assert_array_equal(back.t_ms, s.t_ms)
    assert _same_bits(back.v, s.v)


@pytest.mark.parametrize(
    "s",
    [
        Series.empty("e"),
        Series("one", np.array([-5], dtype=np.int64), np.array([np.nan])),
        Series("inf", np.array([0, 1, 2], dtype=np.int64), np.array([np.inf, -np.inf, -0.0])),
    ],
)
def test_edge_series_round_trip(s: Series) -> None:
    back = decode_series(s.name, encode_series(s))
    np.testing.assert_array_equal(back.t_ms, s.t_ms)
    assert _same_bits(back.v, s.v)


def test_decoded_arrays_are_read_only() -> None:
    back = decode_series("p", encode_series(zone_temperature(10)))
    with pytest.raises(ValueError, match="read-only"):
        back.v[0] = 1.0


def test_encode_refuses_unsorted_or_ragged_series() -> None:
    with pytest.raises(ValueError, match="ascending"):
        encode_series(Series("p", np.array([2, 1], dtype=np.int64), np.zeros(2)))
    with pytest.raises(ValueError, match="values"):
        encode_series(Series("p", np.array([1, 2], dtype=np.int64), np.zeros(3)))


def _flip(data: bytes, index: int, value: int) -> bytes:
    return data[:index] + bytes([value]) + data[index + 1 :]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:10], "shorter than its header"),
        (lambda b: b"XXXX" + b[4:], "bad magic"),
        (lambda b: _flip(b, 4, 9), "unsupported version"),
        (lambda b: _flip(b, 5, 1), "unsupported flags"),
        (lambda b: _flip(b, 8, 200), "header implies"),
        (lambda b: b[:-7], "truncated|corrupt"),
        (lambda b: b[:20], "not a zstd frame"),
        (lambda b: b[:-2] + bytes([b[-2] ^ 0xFF, b[-1]]), "corrupt"),
    ],
)
def test_decode_refuses_foreign_bytes(mutate: object, message: str) -> None:
    good = encode_series(zone_temperature(50))
    assert callable(mutate)
    with pytest.raises(CodecError, match=message):
        decode_series("p", mutate(good))


@FAST
@given(st.binary(max_size=64))
def test_decode_never_crashes_on_garbage(data: bytes) -> None:
    for decode in (lambda d: decode_series("p", d), unpack_columns):
        with contextlib.suppress(CodecError):
            decode(data)


@pytest.mark.parametrize(("n", "max_bytes_per_sample"), [(288, 7.0), (8_640, 5.5)])
def test_realistic_size(n: int, max_bytes_per_sample: float) -> None:
    # Measured 5.7 B/sample for a day and 4.6 B/sample for a month (vs 16 raw, ~150 JSON).
    size = len(encode_series(zone_temperature(n)))
    assert size / n <= max_bytes_per_sample


COLUMN_DTYPES = st.sampled_from(["<i8", "<f8", "<i4", "<f4", "|u1", "|b1", ">f8", ">i8"])


@FAST
@given(
    st.dictionaries(
        st.text(min_size=0, max_size=12),
        COLUMN_DTYPES.flatmap(lambda d: hnp.arrays(np.dtype(d), st.integers(0, 40), elements=None)),
        max_size=6,
    )
)
def test_columns_round_trip(columns: dict[str, npt.NDArray[np.generic]]) -> None:
    back = unpack_columns(pack_columns(columns))
    assert list(back) == list(columns)
    for name, array in columns.items():
        assert back[name].dtype == array.dtype.newbyteorder("<")
        assert back[name].tobytes() == array.astype(back[name].dtype).tobytes()


def test_pack_columns_refuses_non_numeric_or_2d() -> None:
    with pytest.raises(ValueError, match="1-D numeric"):
        pack_columns({"s": np.array(["a"])})
    with pytest.raises(ValueError, match="1-D numeric"):
        pack_columns({"m": np.zeros((2, 2))})


def test_unpack_columns_refuses_foreign_bytes() -> None:
    good = pack_columns({"a": np.arange(5, dtype=np.int64)})
    with pytest.raises(CodecError, match="bad magic"):
        unpack_columns(encode_series(zone_temperature(5)))
    with pytest.raises(CodecError, match=r"truncated|corrupt"):
        unpack_columns(good[:-3])
    lying = good[:6] + (2).to_bytes(2, "little") + good[8:]
    with pytest.raises(CodecError, match="truncated"):
        unpack_columns(lying)
