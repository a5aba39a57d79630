"""Data answers read from their bytes (``wire/acebody.py``) equal msgspec's struct per row
grouped by ``samples_to_series``, bit for bit, for every body, or fail the same way.

Bodies are drawn as upstream and its look-alikes write them (msgspec's compact JSON,
``json.dumps``'s spaces, escaped or raw unicode, indents, other key orders, extra keys,
the cursor fields in any order) with names that need escapes, values in every JSON and
non-JSON spelling, times of every ISO form and digits that are no date, rows duplicated,
out of order and interleaved, and then maybe cut short or a byte changed. A body that is
not JSON raises ``msgspec.DecodeError`` (a ``ValidationError`` where msgspec's does), a
time that is no ISO 8601 ``ValueError``; every other body gives the same series, names
and point order, and the same cursor fields.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import msgspec
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tsgate.samples import Series
from tsgate.wire import acebody, acetexts
from tsgate.wire.ace import PageBody, SamplesBody, samples_to_series
from tsgate.wire.acebody import DataBody, decode_page, decode_samples

T0 = dt.datetime(2025, 10, 9, 8, 53, 20)
Outcome = tuple[dict[str, Series], str | None, bool] | type[Exception]


@pytest.fixture(autouse=True)
def _any_size() -> Iterator[None]:
    """Every body read from its bytes, however small (the drawn bodies are)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(acebody, "_FEWEST_BYTES", 0)
        yield


PLAIN_NAMES = st.one_of(
    st.sampled_from(["site/dev/pt", "campus-1/ahu-3/supply_air_temp", "a", "", "x" * 130]),
    st.from_regex(r"[a-z0-9/_. -]{1,40}", fullmatch=True),
)
ODD_NAMES = st.one_of(
    st.sampled_from(['p"q', "p\\q", "p\nq", "p\x00q", "p\x7fq", "é/pt", "🙂", "a]b", "a}b"]),
    st.sampled_from(['"name":"a', '","value":"', '"},{"name":"', "a,b", "point_samples"]),
    st.text(max_size=12),
)
NUMBERS = st.one_of(
    st.floats(-1e6, 1e6).map(lambda x: f"{x:.2f}"),
    st.tuples(st.floats(-1e4, 1e4), st.integers(0, 7)).map(lambda x: f"{x[0]:.{x[1]}f}"),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**9), 10**9).map(str),
    st.integers(-(2**70), 2**70).map(str),
)
ODD_NUMBERS = st.sampled_from(
    [
        *("-0", "0", "-0.0", "0.0", "00", "01", "-01", "0.", ".5", "5.", "-", "--1", "+1"),
        *("1e5", "1E-5", "-0e0", "12345678", "123456789", "-12345678", "1.2345678"),
        *("1234567.8", "99999999", "0.0000001", "1.2.3", " 1", "1 ", "1,5", "1e400"),
        *("5e-324", "1" * 40),
    ]
)
WORDS = st.sampled_from(
    [
        *("true", "false", "True", "ON", "off", "active", "inactive", "NaN", "nan", "-inf"),
        *("Infinity", "null", "", "n/a", "[1]", "1]", "{}", "0x10", "١٢", "1_000", "\t5\n"),
    ]
)
VALUES = st.one_of(NUMBERS, ODD_NUMBERS, WORDS, st.text(max_size=6))


@st.composite
def _time(draw: st.DrawFn) -> str:
    """A time of one of the forms upstream may send, or digits in a time's places."""
    form = draw(st.sampled_from(["us", "us", "us", "s", "ms", "z", "offset", "space", "digits"]))
    if form == "digits":  # any digits: year 0000, month 13, 29 February, hour 24, second 60
        fields = [draw(st.integers(0, top)) for top in (9999, 19, 39, 29, 69, 69, 999_999)]
        y, mo, d, h, mi, s, f = fields
        text = f"{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}"
        return text + f".{f:06d}" if draw(st.booleans()) else text
    if draw(st.booleans()):
        when = T0 + dt.timedelta(seconds=draw(st.integers(-86_400, 86_400)) * 7)
    else:
        when = draw(st.datetimes(dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31)))
    when = when.replace(microsecond=draw(st.sampled_from([0, 1, 999, 1000, 694_434, 999_999])))
    if form == "offset":
        offset = dt.timedelta(minutes=draw(st.integers(-14 * 60, 14 * 60)))
        return when.replace(tzinfo=dt.timezone(offset)).isoformat(timespec="microseconds")
    spec = {"us": "microseconds", "s": "seconds", "ms": "milliseconds"}.get(form, "microseconds")
    text = when.isoformat(sep=" " if form == "space" else "T", timespec=spec)
    return text + "Z" if form == "z" else text


@st.composite
def _rows(draw: st.DrawFn) -> list[dict[str, str]]:
    names = draw(st.lists(PLAIN_NAMES, min_size=1, max_size=5, unique=True))
    if draw(st.integers(0, 3)) == 0:
        names.append(draw(ODD_NAMES.filter(lambda n: n not in names)))
    values = draw(st.sampled_from([NUMBERS, st.one_of(NUMBERS, ODD_NUMBERS), VALUES]))
    upstreams = st.sampled_from([_time_of(k) for k in range(6)])
    times = draw(st.sampled_from([_time(), upstreams, upstreams]))
    drawn = draw(st.lists(st.tuples(st.sampled_from(names), values, times), max_size=40))
    order = draw(st.sampled_from(["drawn", "by point", "by time"]))
    if order == "by point":  # a point's read, a batch: each point's rows together
        drawn.sort(key=lambda r: names.index(r[0]))
    elif order == "by time":  # the site's stream: a sweep's points one after another
        drawn.sort(key=lambda r: r[2])
    if drawn and draw(st.booleans()):  # a row repeated, as upstream does
        drawn.insert(draw(st.integers(0, len(drawn))), draw(st.sampled_from(drawn)))
    return [{"name": n, "value": v, "time": t} for n, v, t in drawn]


def _time_of(k: int) -> str:
    return (T0 + dt.timedelta(milliseconds=k * 997)).isoformat(timespec="microseconds")


SPELLINGS = ["msgspec"] * 3 + ["json"] * 3 + ["json ascii", "compact", "indent", "mixed"]


@st.composite
def _body(draw: st.DrawFn, page: bool) -> bytes:
    rows = draw(_rows())
    if draw(st.integers(0, 5)) == 0 and rows:  # another key order, or one key more
        row = draw(st.sampled_from(rows))
        if draw(st.booleans()):
            row["unit"] = "degF"
        else:
            row.update({k: row.pop(k) for k in draw(st.permutations(["name", "value", "time"]))})
    fields: dict[str, Any] = {"point_samples": rows}
    if page and draw(st.booleans()):
        fields["next_cursor"] = draw(st.sampled_from([None, "eyJvZmZzZXQiOjF9", "", 5]))
    if page and draw(st.booleans()):
        fields["has_more"] = draw(st.sampled_from([True, False, "yes"]))
    if draw(st.integers(0, 5)) == 0:
        fields["point_samples_count"] = len(rows)
    keys = list(fields)
    if draw(st.integers(0, 3)) == 0:
        keys = draw(st.permutations(keys))
    ordered = {k: fields[k] for k in keys}
    body = _spelled(ordered, draw(st.sampled_from(SPELLINGS)))
    if draw(st.booleans()):
        body += draw(st.sampled_from([b"\n", b" ", b"\r\n\t"]))
    return body


def _spelled(obj: dict[str, Any], spelling: str) -> bytes:
    if spelling == "msgspec":
        return msgspec.json.encode(obj)
    if spelling == "json":  # Flask-RESTX's json.dumps, unicode as it is
        return json.dumps(obj, ensure_ascii=False).encode()
    if spelling == "json ascii":
        return json.dumps(obj).encode()
    if spelling == "compact":
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    if spelling == "indent":
        return json.dumps(obj, ensure_ascii=False, indent=1).encode()
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ":")).encode()


@st.composite
def _mutated(draw: st.DrawFn, page: bool) -> bytes:
    """A body, maybe cut short, a byte dropped, doubled or changed."""
    body = draw(_body(page))
    how = draw(st.sampled_from(["none", "none", "none", "cut", "drop", "double", "change"]))
    if how == "none" or not body:
        return body
    at = draw(st.integers(0, len(body) - 1))
    if how == "cut":
        return body[:at]
    if how == "drop":
        return body[:at] + body[at + 1 :]
    if how == "double":
        return body[: at + 1] + body[at:]
    byte = draw(st.sampled_from(b'"\\,:{}[] 0aZ\x01\xc3\xff'))
    return body[:at] + bytes([byte]) + body[at + 1 :]


def _old(body: bytes, page: bool) -> Outcome:
    """msgspec's struct per row and ``samples_to_series``: what the client read before."""
    try:
        if page:
            decoded = msgspec.json.decode(body, type=PageBody)
            cursor, more = decoded.next_cursor, decoded.has_more
        else:
            decoded = msgspec.json.decode(body, type=SamplesBody)
            cursor, more = None, False
    except msgspec.ValidationError:
        return msgspec.ValidationError
    except msgspec.DecodeError:
        return msgspec.DecodeError
    try:
        return samples_to_series(decoded.point_samples), cursor, more
    except ValueError:
        return ValueError


def _new(body: bytes, page: bool) -> Outcome:
    try:
        decoded = decode_page(body) if page else decode_samples(body)
    except msgspec.ValidationError:
        return msgspec.ValidationError
    except msgspec.DecodeError:
        return msgspec.DecodeError
    assert len(decoded) == len(_struct_rows(body, page))
    try:
        return decoded.series(), decoded.next_cursor, decoded.has_more
    except ValueError:
        return ValueError


def _struct_rows(body: bytes, page: bool) -> list[Any]:
    return msgspec.json.decode(body, type=PageBody if page else SamplesBody).point_samples


def _same(got: Outcome, want: Outcome) -> None:
    if isinstance(want, type) or isinstance(got, type):
        assert got is want
        return
    (series, cursor, more), (want_series, want_cursor, want_more) = got, want
    assert (cursor, more) == (want_cursor, want_more)
    assert list(series) == list(want_series)  # the names, in first-seen order
    for name, s in series.items():
        w = want_series[name]
        assert s.name == w.name == name
        assert s.t_ms.dtype == w.t_ms.dtype and s.t_ms.tobytes() == w.t_ms.tobytes()
        assert s.v.dtype == w.v.dtype and s.v.tobytes() == w.v.tobytes()  # NaN, -0.0 too
        assert (s.us is None) == (w.us is None)
        assert s.micros.dtype == w.micros.dtype and s.micros.tobytes() == w.micros.tobytes()


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.booleans().flatmap(lambda page: st.tuples(st.just(page), _mutated(page))))
def test_a_body_reads_as_its_rows_decoded_one_by_one(drawn: tuple[bool, bytes]) -> None:
    page, body = drawn
    _same(_new(body, page), _old(body, page))


@settings(max_examples=300, deadline=None)
@given(_rows(), st.sampled_from(["msgspec", "json"]), st.booleans())
def test_upstreams_own_layout_is_read_from_the_bytes(
    rows: list[dict[str, str]], spelling: str, page: bool
) -> None:
    plain = [r for r in rows if all(s.isascii() and s.isprintable() for s in r.values())]
    plain = [r for r in plain if not any(c in s for s in r.values() for c in '"\\')]
    body = _spelled({"point_samples": plain}, spelling)
    decoded = decode_page(body) if page else decode_samples(body)
    assert isinstance(decoded.rows, list) == (not plain)  # no struct per row
    _same(_new(body, page), _old(body, page))


# µs from 0000-01-01 to 9999-12-31, as numpy writes them (and reads them back)
ANY_TIME_US = st.integers(-62_167_219_200_000_000, 253_402_300_799_999_999)
SHORT_NUMBERS = st.from_regex(r"-?(0|[1-9][0-9]{0,7})(\.[0-9]{1,7})?", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["s/a", "s/bb", "site/ahu-1/zone_temperature_setpoint"]),
            st.one_of(SHORT_NUMBERS, st.from_regex(r"-?[0-9.]{1,9}", fullmatch=True)),
            ANY_TIME_US,
        ),
        min_size=1,
        max_size=30,
    ),
    st.sampled_from(["us", "s"]),
    st.sampled_from(["msgspec", "json"]),
)
def test_times_of_any_year_and_short_numbers_read_as_numpy_and_float_do(
    drawn: list[tuple[str, str, int]], unit: str, spelling: str
) -> None:
    stamps = np.array([t for _, _, t in drawn], dtype="datetime64[us]")
    times = np.datetime_as_string(stamps, unit=unit).tolist()
    rows = [{"name": n, "value": v, "time": t} for (n, v, _), t in zip(drawn, times, strict=True)]
    body = _spelled({"point_samples": rows}, spelling)
    assert not isinstance(decode_samples(body).rows, list)
    _same(_new(body, False), _old(body, False))


PLAIN_ROWS = [
    {"name": "s/a", "value": "72.5", "time": "2025-10-12T16:35:37.694434"},
    {"name": "s/b", "value": "-0", "time": "2025-10-12T16:35:37.694434"},
    {"name": "s/a", "value": "true", "time": "2025-10-12T16:40:37.000000"},
]


@pytest.mark.parametrize("spelling", ["msgspec", "json"])
@pytest.mark.parametrize("page", [False, True])
def test_a_body_cut_short_anywhere_is_broken_never_fewer_rows(spelling: str, page: bool) -> None:
    fields: dict[str, Any] = {"point_samples": PLAIN_ROWS}
    if page:
        fields.update(next_cursor="eyJvZmZzZXQiOjJ9", has_more=True)
    body = _spelled(fields, spelling)
    decode = decode_page if page else decode_samples
    whole = decode(body)
    assert not isinstance(whole.rows, list) and len(whole) == 3
    assert list(whole.series()) == ["s/a", "s/b"]
    for cut in range(len(body)):
        with pytest.raises(msgspec.DecodeError):
            decode(body[:cut])


ROW = b'{"name":"s/a","value":"1","time":"2025-10-12T16:35:37.694434"}'
ODD_BODIES = [
    b'{"point_samples":[ROW],"x":["a","b","c","d","e"]}',  # 12 more quotes before a ]
    b'{"point_samples":[ROW],"a":"","b":"","c":1,"d":[ROW]}',
    b'{"point_samples":[ROW],"next_cursor":"]","has_more":true}',
    b'{"point_samples":[ROW],"point_samples":[]}',
    b'{"point_samples":[ROW]}{"point_samples":[ROW]}',
    b'{"point_samples":[ROW]]}',
    b'{"point_samples":[ROW,]}',
    b'{"point_samples":[ROW,ROW] }',
    b' {"point_samples":[ROW]}',
    b'{"point_samples":[ROW],"has_more":"x"}',
    b'{"point_samples":[ROW],"has_more":true,"next_cursor":null}',
    b'{"point_samples":[ROW}',
    b'{"point_samples":[ROW]',
    b'{"point_samples":[{"name":"s/a","value":"1"2","time":"2025-10-12T16:35:37.694434"}]}',
    # a name's closing quote that is also its opening one, a quote in a value to make up
    b'{"point_samples":[ROW,{"name":","value":"1","time":"2025-10-12T16:35:37.694434"},'
    b'{"name":"s/a","value":"a"b","time":"2025-10-12T16:35:37.694434"}]}',
]


@pytest.mark.parametrize("body", [b.replace(b"ROW", ROW) for b in ODD_BODIES])
@pytest.mark.parametrize("page", [False, True])
def test_what_follows_the_rows_is_json_as_msgspec_reads_it(body: bytes, page: bool) -> None:
    _same(_new(body, page), _old(body, page))


ODD_TIMES = [
    *("2025-10-12T24:00:00.000000", "2025-10-12T23:60:00.000000", "2025-10-12T23:59:60"),
    *("2025-02-29T00:00:00.000000", "2024-02-29T00:00:00.000000", "2100-02-29T00:00:00"),
    *("2025-13-01T00:00:00.000000", "2025-00-01T00:00:00.000000", "2025-10-00T00:00:00"),
    *("2025-10-32T00:00:00.000000", "0000-01-01T00:00:00.000000", "9999-12-31T23:59:59"),
    *("2025-1a-12T16:35:37.694434", "2025-10-12 16:35:37.694434", "2025/10/12T16:35:37"),
    *("2025-10-12t16:35:37.694434", "2025-10-12T16:35:37.69443a", "2025-10-12T16-35-37"),
    *("2025-10-12T16:35:37.694", "+2025-10-12T16:35:37.69443", "NaT", "2025-10-12T16:35Z"),
    *("2025-10-12T16:35:37.694434+01:00", "2025-10-12T16:35:37:694434", "20251012T163537"),
]


@pytest.mark.parametrize("time", ODD_TIMES)
@pytest.mark.parametrize("every_row", [False, True])
def test_an_odd_time_reads_as_numpy_and_fromisoformat_read_it(time: str, every_row: bool) -> None:
    rows = [
        dict(r, time=time if every_row or k == 1 else r["time"]) for k, r in enumerate(PLAIN_ROWS)
    ]
    body = msgspec.json.encode({"point_samples": rows})
    assert not isinstance(decode_samples(body).rows, list)
    _same(_new(body, False), _old(body, False))


ODD_VALUES = [
    *(".5", "5.", "-.5", "-5.", "0.", "00", "01", "-01", "-", ".", "1.2.3", "- 1", "1-"),
    *("12345678", "-12345678", "123456789", "1234567.8", "0.0000001", "99999999.", "+1"),
    *("1e5", "1,5", "0x1", "", " ", "true", "NaN", "-0", "-0.0", "0.5e", "٣", "1\x7f"),
]


@pytest.mark.parametrize("value", ODD_VALUES)
@pytest.mark.parametrize("every_row", [False, True])
def test_an_odd_value_reads_as_parse_values_reads_it(value: str, every_row: bool) -> None:
    rows = [
        dict(r, value=value if every_row or k == 1 else "72.5") for k, r in enumerate(PLAIN_ROWS)
    ]
    body = _spelled({"point_samples": rows}, "json")
    _same(_new(body, False), _old(body, False))


def test_names_that_share_a_hash_are_told_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [{"name": n, "value": "1", "time": _time_of(k)} for k, n in enumerate("abab")]
    body = msgspec.json.encode({"point_samples": rows})
    every_name_one = (np.zeros(4, dtype=np.int64), np.zeros(1, dtype=np.int64))
    monkeypatch.setattr(acetexts, "_word_codes", lambda words: every_name_one)
    _same(_new(body, False), _old(body, False))
    assert list(decode_samples(body).series()) == ["a", "b"]


def test_a_small_body_is_decoded_a_row_at_a_time_alike() -> None:
    body = msgspec.json.encode({"point_samples": PLAIN_ROWS})
    read = decode_samples(body)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(acebody, "_FEWEST_BYTES", len(body) + 1)
        small = decode_samples(body)
    assert not isinstance(read.rows, list) and isinstance(small.rows, list)
    _same((small.series(), None, False), (read.series(), None, False))


def test_no_data_is_an_empty_body() -> None:
    assert len(DataBody()) == 0 and DataBody().series() == {}
    for body in (b'{"point_samples":[]}', b'{"point_samples": [], "has_more": false}'):
        assert decode_page(body).series() == {} and not decode_page(body).has_more
