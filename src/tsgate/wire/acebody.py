"""ACE data answers read from their bytes: numpy over the whole body, no object per row.

Upstream answers ``{"point_samples": [{"name": …, "value": …, "time": …}, …]}`` (the
site's stream adds ``next_cursor`` and ``has_more``), compact (msgspec, httpx) or with a
space after ``:`` and ``,`` (``json.dumps``, Flask-RESTX). A body of exactly that
layout — rows with these keys in this order, and strings without escapes, control
characters or anything beyond ASCII — is checked whole with vectorised tests of the
bytes around its quotes, and its columns are read from the bytes between them
(``acetexts``). Any
other body (other key order, extra keys, escapes, other whitespace, invalid JSON) is
decoded by msgspec into a struct per row (``samples_to_series``). Both give the same
series bit for bit, and a body that is not JSON raises ``msgspec.DecodeError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

import msgspec
import numpy as np
import numpy.typing as npt

from tsgate.samples import Series
from tsgate.wire.ace import PageBody, Sample, SamplesBody, samples_to_series, series_of_columns
from tsgate.wire.acetexts import IntArray, all_at, read_names, read_times, read_values

_Body = TypeVar("_Body", SamplesBody, PageBody)
_QUOTE, _COMMA = ord('"'), ord(",")
# a smaller body is decoded a row at a time: quicker than numpy's hundred-odd calls
_FEWEST_BYTES = 1 << 16


@dataclass(frozen=True)
class _Spelling:
    head: bytes  # the body up to the first row
    first: bytes  # the first row up to its name
    after_name: bytes  # from the quote closing a name to the one opening its value
    after_value: bytes
    between: bytes  # from the quote closing a time to the one opening the next name


_SPELLINGS = (
    _Spelling(b'{"point_samples":[', b'{"name":"', b'","value":"', b'","time":"', b'"},{"name":"'),
    _Spelling(
        b'{"point_samples": [', b'{"name": "', b'", "value": "', b'", "time": "', b'"}, {"name": "'
    ),
)


@dataclass(frozen=True)
class _Layout:
    """Where a checked body's rows are: the texts of each row's name, value and time."""

    content: bytes
    texts: tuple[tuple[IntArray, IntArray], ...]  # (starts, ends) of names, values, times
    end: int  # the index of the ``]`` closing the rows

    def __len__(self) -> int:
        return int(self.texts[0][0].size)

    def strings(self, k: int) -> tuple[IntArray, IntArray]:
        """Where each row's ``k``-th string (0 name, 1 value, 2 time) starts and ends."""
        return self.texts[k]


@dataclass(frozen=True)
class DataBody:
    """A data answer, checked whole: its rows (``series()``) and the stream's cursor fields."""

    rows: list[Sample] | _Layout = field(default_factory=list)
    next_cursor: str | None = None
    has_more: bool = False

    def __len__(self) -> int:
        return len(self.rows)

    def series(self) -> dict[str, Series]:
        """The rows grouped into series, as ``samples_to_series`` groups them; a time that
        is not ISO 8601 raises ``ValueError``."""
        if isinstance(self.rows, _Layout):
            return _layout_series(self.rows)
        return samples_to_series(self.rows)


def decode_samples(content: bytes) -> DataBody:
    """A ``point_samples`` answer (a point's read, a batch of points)."""
    layout = _layout(content)
    if layout is not None and _rest(layout, SamplesBody) is not None:
        return DataBody(layout)
    return DataBody(msgspec.json.decode(content, type=SamplesBody).point_samples)


def decode_page(content: bytes) -> DataBody:
    """A page of the site's stream: rows and its cursor fields."""
    layout = _layout(content)
    rest = _rest(layout, PageBody) if layout is not None else None
    if layout is not None and rest is not None:
        return DataBody(layout, rest.next_cursor, rest.has_more)
    page = msgspec.json.decode(content, type=PageBody)
    return DataBody(page.point_samples, page.next_cursor, page.has_more)


# ---- the layout ----------------------------------------------------------------------


def _layout(content: bytes) -> _Layout | None:
    """The rows of a body of the usual layout, checked; ``None`` for any other body.

    The bytes between the head and the last ``]`` must be rows whose every byte outside
    their three strings is the spelling's own, checked at once around the quotes that
    close every row's strings; with no quote but those, no backslash, no control
    character and no byte beyond ASCII there, they are a JSON array of those rows, each
    string's text its bytes (what follows the array is checked by ``_rest``).
    """
    if len(content) < _FEWEST_BYTES:
        return None
    spelling = next((s for s in _SPELLINGS if content.startswith(s.head + s.first)), None)
    if spelling is None or b"\\" in content:
        return None
    end = content.rfind(b"]")
    if end <= len(spelling.head):
        return None
    body = np.frombuffer(content, np.uint8, end)  # the head is ASCII, with two quotes
    if bool((body.view(np.int8) < 32).any()):  # a control character, or a byte beyond ASCII
        return None
    closing = _closing_quotes(body)
    if closing is None:
        return None
    name_end, value_end, time_end = closing
    if int(time_end[-1]) != end - 2 or content[end - 2 : end] != b'"}':
        return None
    if not (
        all_at(content, name_end, spelling.after_name)
        and all_at(content, value_end, spelling.after_value)
        and all_at(content, time_end[:-1], spelling.between)
    ):
        return None
    name_start = np.empty_like(name_end)
    name_start[0] = len(spelling.head) + len(spelling.first)
    name_start[1:] = time_end[:-1] + len(spelling.between)
    value_start = name_end + len(spelling.after_name)
    time_start = value_end + len(spelling.after_value)
    if not bool(
        ((name_start <= name_end) & (value_start <= value_end) & (time_start <= time_end)).all()
    ):  # each row's texts in their order (then its quotes are all the body's)
        return None
    texts = ((name_start, name_end), (value_start, value_end), (time_start, time_end))
    return _Layout(content, texts, end)


def _closing_quotes(body: npt.NDArray[np.uint8]) -> tuple[IntArray, IntArray, IntArray] | None:
    """Where each row's name, value and time would end, if ``body`` (up to the rows' last
    ``]``) is the head and the rows; ``None`` when it cannot be.

    Found from the commas (a row has three: after its name's closing quote, its value's,
    and the ``"}`` after its time's) when there are as many as the quotes say (12 a row
    and the head's two), as a comma is rarer than a quote (a third of the cost to find);
    else from the quotes.
    """
    commas = np.flatnonzero(body == _COMMA)
    rows = (commas.size + 1) // 3
    if rows and commas.size == 3 * rows - 1 and np.count_nonzero(body == _QUOTE) == 12 * rows + 2:
        after = np.append(commas, body.size).reshape(rows, 3)  # the last row's: the "]"
        return after[:, 0] - 1, after[:, 1] - 1, after[:, 2] - 2
    quotes = np.flatnonzero(body == _QUOTE)
    if quotes.size < 14 or (quotes.size - 2) % 12:
        return None
    closing = quotes[2:].reshape(-1, 12)
    return closing[:, 3], closing[:, 7], closing[:, 11]


def _rest(layout: _Layout, kind: type[_Body]) -> _Body | None:
    """The body's fields after the rows, decoded as the body would be with no rows;
    ``None`` when they are not JSON (the whole body, decoded, raises its own error).

    The rows end at the body's last ``]``, so no other list follows them: no second
    ``point_samples`` (whose value, as msgspec reads a repeated key, would win).
    """
    tail = layout.content[layout.end + 1 :]
    try:
        return msgspec.json.decode(b'{"point_samples":[]' + tail, type=kind)
    except msgspec.DecodeError:  # a ValidationError too
        return None


def _layout_series(layout: _Layout) -> dict[str, Series]:
    t_ms, us = read_times(layout.content, *layout.strings(2))
    values = read_values(layout.content, *layout.strings(1))
    names, point = read_names(layout.content, *layout.strings(0))
    return series_of_columns(names, point, t_ms, us, values)
