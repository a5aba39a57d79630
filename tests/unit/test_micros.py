"""Upstream's microsecond time strings survive parsing, the series model, the storage
codec (format 2; format-1 chunks still decode) and the drop-in formatting."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from tsgate.core.codec import CodecError, decode_series, encode_series
from tsgate.core.model import Series, concat
from tsgate.wire.ace import (
    Sample,
    format_times,
    grouped_rows,
    page_rows,
    parse_times_us,
    samples_to_series,
)

STAMPS = ["2025-10-12T16:35:37.694434", "2025-10-12T16:40:38.000999", "2025-10-12T16:45:39.466615"]
# format 1 as the codec wrote it before microseconds were kept (the same 3 times, in ms)
V1_CHUNK = bytes.fromhex(
    "5453474301000000030000005e1247d99901000028b52ffd2428cd000070129504009a9904002440"
    "0026284004002b29401b00080b88c9c513e0"
)


def test_time_strings_round_trip_to_the_microsecond() -> None:
    t_ms, us = parse_times_us(STAMPS)
    assert us.tolist() == [434, 999, 615]
    assert format_times(t_ms, us) == STAMPS
    assert parse_times_us(["2025-10-12T16:35:37.694434+00:00"])[1].tolist() == [434]


def test_the_model_carries_microseconds_through_its_operations() -> None:
    t_ms, us = parse_times_us(STAMPS)
    s = Series.from_unsorted("p", t_ms[::-1].copy(), np.arange(3.0), us[::-1].copy())
    assert s.micros.tolist() == [434, 999, 615]
    assert s.crop(int(t_ms[1]), int(t_ms[2]) + 1).micros.tolist() == [999, 615]
    plain = Series("p", t_ms[:1] - 300_000, np.zeros(1))  # no microseconds at all
    joined = concat("p", [plain, s])
    assert joined.micros.tolist() == [0, 434, 999, 615]
    assert concat("p", [plain]).us is None  # nothing to keep, nothing allocated
    assert Series.from_unsorted("p", t_ms, np.zeros(3), np.zeros(3, dtype=np.uint16)).us is None


def test_rows_give_back_upstreams_strings() -> None:
    rows = [
        Sample("b", "1.5", STAMPS[0]),
        Sample("a", "2.0", STAMPS[0]),
        Sample("a", "3", STAMPS[2]),
    ]
    series = samples_to_series(rows)
    swept, _ = page_rows(list(series.values()), None, 2**62)  # a sweep: by time, then point
    assert [r["time"] for r in swept] == [STAMPS[0], STAMPS[0], STAMPS[2]]
    grouped = grouped_rows([series["a"], series["b"]])
    assert [(r["name"], r["time"]) for r in grouped] == [
        ("a", STAMPS[0]),
        ("a", STAMPS[2]),
        ("b", STAMPS[0]),
    ]


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 200).flatmap(
        lambda n: st.tuples(
            hnp.arrays(np.int64, n, elements=st.integers(1, 10**8)),
            hnp.arrays(np.uint16, n, elements=st.integers(0, 999)),
        )
    )
)
def test_codec_round_trips_microseconds(parts: tuple[np.ndarray, np.ndarray]) -> None:
    gaps, us = parts
    s = Series("p", 1_760_000_000_000 + np.cumsum(gaps), np.arange(gaps.size, dtype=np.float64), us)
    back = decode_series("p", encode_series(s))
    np.testing.assert_array_equal(back.t_ms, s.t_ms)
    np.testing.assert_array_equal(back.micros, s.micros)
    version = encode_series(s)[4]
    assert version == (2 if us.any() else 1)


def test_format_1_chunks_still_decode() -> None:
    old = decode_series("p", V1_CHUNK)
    assert old.us is None and old.micros.tolist() == [0, 0, 0] and len(old) == 3
    t_ms, _ = parse_times_us(STAMPS)
    # the same samples without microseconds are still written in format 1 (the bytes
    # follow the compression level; what they decode to does not)
    again = encode_series(Series("p", t_ms, np.array([10.0, 11.0, 12.0])))
    assert again[:5] == V1_CHUNK[:5]
    back = decode_series("p", again)
    np.testing.assert_array_equal(back.t_ms, old.t_ms)
    np.testing.assert_array_equal(back.v, old.v)


def test_codec_refuses_bad_microseconds() -> None:
    t_ms, _ = parse_times_us(STAMPS)
    with pytest.raises(ValueError, match=r"0\.\.999"):
        encode_series(Series("p", t_ms, np.zeros(3), np.array([1, 2, 1000], dtype=np.uint16)))
    good = encode_series(Series("p", t_ms, np.zeros(3), np.array([1, 2, 3], dtype=np.uint16)))
    with pytest.raises(CodecError, match="header implies"):
        decode_series("p", good[:4] + bytes([1]) + good[5:])  # a v2 payload read as v1
