"""The ACE wire contract: times, values, cursors and paging."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tsgate.core.model import Series
from tsgate.errors import BadParameter
from tsgate.wire.ace import (
    Cursor,
    decode_cursor,
    encode_cursor,
    format_time,
    format_times,
    page_rows,
    parse_bool,
    parse_page_size,
    parse_range,
    parse_time,
    parse_times,
    parse_values,
)

T0 = 1_760_000_000_000  # 2025-10-09T08:53:20Z


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2025-10-09T08:53:20", T0),
        ("2025-10-09T08:53:20Z", T0),
        ("2025-10-09T08:53:20+00:00", T0),
        ("2025-10-09T10:53:20+02:00", T0),
        ("2025-10-09 08:53:20", T0),
        ("2025-10-09T08:53:20.694434", T0 + 694),
        ("2025-10-09", T0 - (8 * 3600 + 53 * 60 + 20) * 1000),
    ],
)
def test_parse_time_accepts_iso_forms(raw: str, expected: int) -> None:
    assert parse_time("start_time", raw) == expected


@pytest.mark.parametrize("raw", [None, "", "yesterday", "2025-13-01T00:00:00", "12345"])
def test_parse_time_rejects_with_the_parameter_named(raw: str | None) -> None:
    with pytest.raises(BadParameter) as err:
        parse_time("start_time", raw)
    assert err.value.param == "start_time"


def test_range_must_move_forward() -> None:
    with pytest.raises(BadParameter) as err:
        parse_range("2025-10-02T00:00:00", "2025-10-01T00:00:00")
    assert err.value.param == "end_time"
    with pytest.raises(BadParameter):
        parse_range("2025-10-01T00:00:00", "2025-10-01T00:00:00")


def test_times_round_trip_in_ace_form() -> None:
    assert format_time(T0 + 694) == "2025-10-09T08:53:20.694000"
    t = np.array([T0, T0 + 300_001], dtype=np.int64)
    assert format_times(t) == ["2025-10-09T08:53:20.000000", "2025-10-09T08:58:20.001000"]
    assert parse_times(format_times(t)).tolist() == t.tolist()
    assert parse_times(["2025-10-09T08:53:20Z"]).tolist() == [T0]


def test_values_parse_numbers_booleans_and_junk() -> None:
    assert parse_values(["72.5", "0", "-1e3"]).tolist() == [72.5, 0.0, -1000.0]
    got = parse_values(["True", "off", "n/a", "3"])
    assert got[:2].tolist() == [1.0, 0.0]
    assert np.isnan(got[2])
    assert got[3] == 3.0


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        ("true", True),
        ("True", True),
        ("1", True),
        ("false", False),
        ("False", False),
        ("0", False),
        (None, False),
    ],
)
def test_raw_data_spellings(raw: str | None, value: bool) -> None:
    assert parse_bool("raw_data", raw, default=False) is value


def test_bad_boolean_names_the_parameter() -> None:
    with pytest.raises(BadParameter) as err:
        parse_bool("raw_data", "maybe", default=False)
    assert err.value.param == "raw_data"


def test_page_size_is_the_upstream_enum() -> None:
    assert parse_page_size(None) == 10000
    assert parse_page_size("50000") == 50000
    for bad in ("7", "0", "abc", "-3"):
        with pytest.raises(BadParameter) as err:
            parse_page_size(bad)
        assert err.value.param == "page_size"


def test_cursor_round_trip_and_garbage() -> None:
    cursor = Cursor(offset=12, timestamp="2025-10-09T08:53:20.694434")
    assert decode_cursor(encode_cursor(cursor)) == cursor
    for bad in (
        "!!!",
        "bm90IGpzb24=",
        encode_cursor(Cursor(offset=-1, timestamp="2025-10-09T00:00:00")),
    ):
        with pytest.raises(BadParameter) as err:
            decode_cursor(bad)
        assert err.value.param == "cursor"


@settings(max_examples=40, deadline=None)
@given(
    n_points=st.integers(1, 4),
    n_sweeps=st.integers(0, 30),
    page_size=st.sampled_from([3, 10, 50]),
    seed=st.integers(0, 1000),
)
def test_paging_serves_every_row_once_in_order(
    n_points: int, n_sweeps: int, page_size: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    series = []
    for i in range(n_points):
        # shared sweep times with random gaps, as upstream sends them
        keep = rng.random(n_sweeps) < 0.8
        t = (T0 + np.arange(n_sweeps, dtype=np.int64) * 300_000)[keep]
        series.append(Series(f"p{i}", t, rng.normal(size=t.size)))
    whole, none = page_rows(series, None, 10**9)
    assert none is None
    got: list[dict[str, str]] = []
    cursor = None
    for _ in range(1000):
        rows, nxt = page_rows(series, cursor, page_size)
        assert len(rows) <= page_size
        got.extend(rows)
        if nxt is None:
            break
        cursor = decode_cursor(nxt)
    assert got == whole
    assert len(whole) == sum(len(s) for s in series)
    keys = [(r["time"], int(r["name"][1:])) for r in whole]
    assert keys == sorted(keys)
