"""Upstream pages decoded into arrays equal the plain per-row reading of every row.

The truth is written out row by row here: each time through ``datetime.fromisoformat``
(a zone-less time is UTC, an offset is applied), each value as numpy reads a page of
numbers, else booleans as 1/0 and anything else ``float`` cannot read as NaN, and the
rows grouped by point in first-seen order with the last row of a millisecond winning.
Pages are drawn with what the contract's strings allow: offsets, fractional seconds of
any length, duplicates, points interleaved and out of order, numbers in every JSON and
non-JSON spelling, booleans, junk, empty pages.
"""

from __future__ import annotations

import datetime as dt

import httpx
import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.asgi import FAST_POLICY
from tsgate.errors import UpstreamBadAnswer
from tsgate.upstream.ace import AceClient
from tsgate.wire.ace import PageBody, Sample, SamplesBody, parse_values, samples_to_series

UTC_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
T0 = dt.datetime(2025, 10, 9, 8, 53, 20)
START_MS = 1_760_000_000_000  # T0

NUMBER_TEXTS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(-1e6, 1e6).map(lambda x: f"{x:.2f}"),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["-0", "0", "-0.0", "-0e0", "1E5", "1e400", "-1e400", "1e-400", "5e-324"]),
    st.sampled_from(["+1", ".5", "5.", "00012", "1_000", " 12 ", "\t5\n", "nan", "-inf"]),
    st.sampled_from(["Infinity", "1" * 320]),
)
OTHER_TEXTS = st.one_of(
    st.sampled_from(["true", "False", "ON", "off", "active", "inactive", "", "null"]),
    st.sampled_from(["n/a", "1,2", "[1]", "[1", "2]", "1]", '"3"', "{}", "0x10", "١٢"]),
    st.text(max_size=6),
)


@st.composite
def _time_text(draw: st.DrawFn) -> str:
    """A time in one of the ISO 8601 forms upstream may send."""
    when = T0 + dt.timedelta(
        seconds=draw(st.integers(-40 * 86_400, 40 * 86_400)),
        microseconds=draw(st.integers(0, 999_999)),
    )
    form = draw(st.sampled_from(["us", "ms", "s", "offset", "z", "space"]))
    if form == "us":
        return when.isoformat(timespec="microseconds")
    if form == "ms":
        return when.isoformat(timespec="milliseconds")
    if form == "s":
        return when.isoformat(timespec="seconds")
    if form == "space":
        return when.isoformat(sep=" ", timespec="microseconds")
    if form == "z":
        return when.isoformat(timespec="microseconds") + "Z"
    offset = dt.timedelta(minutes=draw(st.integers(-14 * 60, 14 * 60)))
    return when.replace(tzinfo=dt.timezone(offset)).isoformat(timespec="microseconds")


@st.composite
def _page(draw: st.DrawFn) -> list[Sample]:
    names = [f"site/p{i}" for i in range(draw(st.integers(1, 4)))]
    numbers_only = draw(st.booleans())
    values = NUMBER_TEXTS if numbers_only else st.one_of(NUMBER_TEXTS, OTHER_TEXTS)
    one_form = draw(st.booleans())  # a page of upstream's own form, or of any form
    fixed = st.integers(0, 10**6).map(
        lambda k: (T0 + dt.timedelta(milliseconds=k * 997)).isoformat(timespec="microseconds")
    )
    times = fixed if one_form else _time_text()
    rows = draw(st.lists(st.tuples(st.sampled_from(names), values, times), max_size=60))
    if draw(st.booleans()):  # upstream's usual order: by point, then time
        rows.sort(key=lambda r: (names.index(r[0]), _us(r[2])))
    repeat = draw(st.booleans())
    if rows and repeat:  # a row repeated, as upstream does
        rows.insert(draw(st.integers(0, len(rows))), draw(st.sampled_from(rows)))
    return [Sample(n, v, t) for n, v, t in rows]


def _us(text: str) -> int:
    when = dt.datetime.fromisoformat(text.strip())
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    delta = when - UTC_EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _values(texts: list[str]) -> list[float]:
    try:
        return np.array(texts, dtype=np.float64).tolist()  # type: ignore[no-any-return]
    except ValueError:
        return [_value(t) for t in texts]


def _value(text: str) -> float:
    word = text.strip().lower()
    if word in ("true", "on", "active"):
        return 1.0
    if word in ("false", "off", "inactive"):
        return 0.0
    try:
        return float(word)
    except ValueError:
        return float("nan")


def _same_floats(got: list[float], want: list[float]) -> None:
    # bit for bit: NaN equals NaN, -0.0 is not 0.0
    assert np.array(got, dtype=np.float64).tobytes() == np.array(want, dtype=np.float64).tobytes()


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(NUMBER_TEXTS, OTHER_TEXTS), max_size=40), st.booleans())
def test_values_read_as_the_row_by_row_definition(texts: list[str], numbers: bool) -> None:
    if numbers:
        texts = [t for t in texts if _parses(t)]
    _same_floats(parse_values(texts).tolist(), _values(texts))


def _parses(text: str) -> bool:
    try:
        np.array([text], dtype=np.float64)
    except ValueError:
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(_page())
def test_pages_decode_into_the_samples_of_each_row(rows: list[Sample]) -> None:
    got = samples_to_series(rows)
    by_point: dict[str, dict[int, tuple[int, str]]] = {}
    for r in rows:  # the last row of a millisecond wins
        us = _us(r.time)
        by_point.setdefault(r.name, {})[us // 1000] = (us % 1000, r.value)
    assert list(got) == list(by_point)  # first-seen order
    page_values = _values([r.value for r in rows])
    value_of = {r.value: v for r, v in zip(rows, page_values, strict=True)}
    for name, samples in by_point.items():
        ms = sorted(samples)
        series = got[name]
        assert series.t_ms.tolist() == ms
        assert series.micros.tolist() == [samples[m][0] for m in ms]
        assert (series.us is None) == all(samples[m][0] == 0 for m in ms)
        _same_floats(series.v.tolist(), [value_of[samples[m][1]] for m in ms])
        assert series.t_ms.dtype == np.int64 and series.v.dtype == np.float64


@settings(max_examples=100, deadline=None)
@given(_page(), st.sampled_from([None, "c1"]), st.booleans())
def test_a_wire_body_decodes_as_its_rows(
    rows: list[Sample], cursor: str | None, more: bool
) -> None:
    body = msgspec.json.encode(PageBody(rows, cursor, more))
    page = msgspec.json.decode(body, type=PageBody)
    assert (page.next_cursor, page.has_more) == (cursor, more)
    assert page.point_samples == rows
    empty = msgspec.json.decode(b'{"point_samples": []}', type=SamplesBody)
    assert samples_to_series(empty.point_samples) == {}


@pytest.mark.anyio
@pytest.mark.parametrize("time", ["yesterday", "2025-13-01T00:00:00", "2025-10-09T25:00:00"])
async def test_a_time_upstream_garbles_is_a_bad_answer_not_a_crash(time: str) -> None:
    calls = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        rows = [{"name": "s/p", "value": "1", "time": "2025-10-09T08:53:20.000000"}]
        rows.append({"name": "s/p", "value": "2", "time": time})
        return httpx.Response(200, json={"point_samples": rows})

    client = AceClient("http://upstream/api", FAST_POLICY, transport=httpx.MockTransport(answer))
    try:
        with pytest.raises(UpstreamBadAnswer, match="not ISO 8601"):
            await client.points_series(["s/p"], START_MS, START_MS + 3_600_000, token="t")
    finally:
        await client.aclose()
    assert calls == 1  # upstream is alive: the same answer is not asked for again
