"""The ACE API wire contract: times, cursors, page sizes, and sample rows <-> numpy.

Upstream rows are ``{"name": str, "value": str, "time": "2025-10-12T16:35:37.694434"}``:
the value is a string and the time has microseconds and no zone (UTC). Both the
simulator and the client speak through this module, so they cannot drift apart.
Times are parsed into epoch milliseconds plus the sub-millisecond part (``Series.us``)
and formatted back from both, so a time string comes back exactly as upstream sent it.

Cursors follow upstream: ``{"offset", "timestamp"}`` names the 5-minute sweep slot that
holds ``timestamp`` and how many of that slot's rows (in the page order) were served;
an offset past the slot's rows is capped at them, so the stream goes on with the next.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import itertools
import operator
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import msgspec
import numpy as np
import numpy.typing as npt

from tsgate.errors import BadParameter
from tsgate.samples import MicroArray, Series, TimeArray, ValueArray

PAGE_SIZES = (3, 10, 50, 100, 500, 1000, 5000, 10000, 50000, 100000, 300000, 500000)
DEFAULT_PAGE_SIZE = 10000
PER_PAGE = (2, 10, 20, 30, 40, 50, 100, 500, 1000, 5000, 10000, 100000)  # list endpoints
DEFAULT_PER_PAGE = 10
CURSOR_SLOT_MS = 300_000  # a cursor's timestamp names the 5-minute sweep slot holding it
_TRUE = {"true", "1"}
_FALSE = {"false", "0"}
_EPOCH = np.datetime64(0, "ms")


# ``gc=False``: a row holds only strings, so it can be in no reference cycle; a page of
# 20,000 rows is then 20,000 objects fewer for the collector to track and traverse
class Sample(msgspec.Struct, frozen=True, gc=False):
    name: str
    value: str
    time: str


class SamplesBody(msgspec.Struct, gc=False):
    point_samples: list[Sample] = msgspec.field(default_factory=list)


class PageBody(msgspec.Struct, gc=False):
    point_samples: list[Sample] = msgspec.field(default_factory=list)
    next_cursor: str | None = None
    has_more: bool = False


class Cursor(msgspec.Struct, frozen=True):
    """Where the next page starts: ``offset`` samples into the sweep at ``timestamp``."""

    offset: int
    timestamp: str


# ---- times -------------------------------------------------------------------------


def parse_time(param: str, raw: str | None) -> int:
    """An ISO-8601 time (zone-less means UTC) to epoch ms; a clear error names ``param``."""
    if raw is None or not raw.strip():
        raise BadParameter(param, "is required (ISO 8601, e.g. 2025-10-12T16:35:37)")
    text = raw.strip().replace(" ", "T", 1) if "T" not in raw else raw.strip()
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise BadParameter(param, f"{raw!r} is not an ISO 8601 time") from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000) if when.microsecond % 1000 == 0 else _exact_ms(when)


def _exact_ms(when: dt.datetime) -> int:
    delta = when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def parse_range(
    start_raw: str | None,
    end_raw: str | None,
    *,
    names: tuple[str, str] = ("start_time", "end_time"),
) -> tuple[int, int]:
    start_ms = parse_time(names[0], start_raw)
    end_ms = parse_time(names[1], end_raw)
    if end_ms <= start_ms:
        raise BadParameter(names[1], f"must be after {names[0]} ({end_raw!r} <= {start_raw!r})")
    return start_ms, end_ms


def format_time(ms: int, *, micros: int = 0) -> str:
    """Epoch ms to the ACE form: microseconds, no zone."""
    stamp = dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=ms, microseconds=micros)
    return stamp.isoformat(timespec="microseconds")


def format_times(t_ms: TimeArray, us: MicroArray | None = None) -> list[str]:
    """Vectorised ``format_time`` for many samples (``us``: their sub-millisecond parts)."""
    as_us = t_ms.astype("datetime64[ms]").astype("datetime64[us]")
    if us is not None:
        as_us = as_us + us.astype("timedelta64[us]")
    return np.datetime_as_string(as_us, unit="us").tolist()  # type: ignore[no-any-return]


def parse_times(texts: Sequence[str]) -> TimeArray:
    """ACE time strings (zone-less UTC) to epoch ms, vectorised."""
    return parse_times_us(texts)[0]


def parse_times_us(texts: Sequence[str]) -> tuple[TimeArray, MicroArray]:
    """ACE time strings to epoch ms and the sub-millisecond part (0–999 µs) of each."""
    if not texts:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.uint16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            stamps = np.array(texts, dtype="datetime64[us]")
        except (ValueError, UserWarning, DeprecationWarning):
            # a zone suffix is legal ISO that numpy warns on or rejects: the slow, exact path
            exact = np.array([_parse_us(t) for t in texts], dtype=np.int64)
            return exact // 1000, (exact % 1000).astype(np.uint16)
    micros = (stamps - np.datetime64(0, "us")).astype(np.int64)
    return micros // 1000, (micros % 1000).astype(np.uint16)


def _parse_us(text: str) -> int:
    when = dt.datetime.fromisoformat(text.strip())
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    delta = when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# ---- values ------------------------------------------------------------------------


def parse_values(texts: Sequence[str]) -> ValueArray:
    """String values to float64; booleans become 1/0, anything unparsable NaN."""
    if not texts:
        return np.empty(0, dtype=np.float64)
    numbers = _json_numbers(texts)
    if numbers is not None:
        return numbers
    try:
        return np.array(texts, dtype=np.float64)
    except ValueError:
        return np.array([_value(t) for t in texts], dtype=np.float64)


def _json_numbers(texts: Sequence[str]) -> ValueArray | None:
    """``texts`` parsed as one JSON array of numbers, when each text is one JSON number
    (about half the cost of numpy's string parsing); ``None`` when any is not.

    Exactly ``float(text)`` of each: a JSON number is a subset of what ``float`` reads,
    both round correctly, and no text holds a comma (the count proves it), so each array
    element is one text (a bracket in one nests or ends the array: refused).
    """
    joined = ",".join(texts)
    if joined.count(",") != len(texts) - 1:
        return None
    return joined_numbers(joined, len(texts), texts.__getitem__)


def joined_numbers(
    joined: str | bytes, count: int, text_at: Callable[[int], str]
) -> ValueArray | None:
    """The ``count`` comma-separated texts of ``joined`` (none holding a comma, each maybe
    padded with JSON whitespace) read as JSON numbers; ``None`` when any is not one.

    msgspec reads ``-0`` as the integer 0, so zeros are read again (``text_at(i)``, the
    ``i``-th text) when a ``-0`` is present; a number too large for a float is refused
    (``float`` reads it as infinite).
    """
    array: str | bytes
    if isinstance(joined, bytes):
        array, minus_zero = b"[" + joined + b"]", b"-0" in joined
    else:
        array, minus_zero = f"[{joined}]", "-0" in joined
    try:
        numbers = np.array(msgspec.json.decode(array, type=list[float]), np.float64)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    if numbers.size != count:
        return None
    if minus_zero:
        for i in np.flatnonzero(numbers == 0).tolist():
            numbers[i] = float(text_at(i))
    return numbers


def _value(text: str) -> float:
    lowered = text.strip().lower()
    if lowered in ("true", "on", "active"):
        return 1.0
    if lowered in ("false", "off", "inactive"):
        return 0.0
    try:
        return float(lowered)
    except ValueError:
        return float("nan")


def format_values(v: ValueArray) -> list[str]:
    """Floats back to ACE value strings (shortest round-trip repr)."""
    if not v.size:
        return []
    magnitude = np.abs(v)
    plain = ((magnitude >= _PLAIN_LO) & (magnitude < _PLAIN_HI)) | (v == 0)
    if bool(plain.all()):
        return _plain_reprs(v)
    texts = np.array([repr(x) for x in v.tolist()], dtype=object)
    texts[plain] = _plain_reprs(v[plain])
    return texts.tolist()  # type: ignore[no-any-return]


# within these magnitudes (and at zero) msgspec writes a float as ``repr`` does, at a
# third of the cost; outside them repr uses exponents (``1e-05``, ``1e+16``) it does not
_PLAIN_LO = 1e-4
_PLAIN_HI = 1e16


def _plain_reprs(v: ValueArray) -> list[str]:
    if not v.size:
        return []
    return msgspec.json.encode(v.tolist()).decode("ascii")[1:-1].split(",")


def _unique_values(v: ValueArray) -> list[str]:
    """``format_values`` of ``v``, each distinct float (bit for bit) formatted once."""
    if v.size < 64:
        return format_values(v)
    distinct, where = np.unique(v.view(np.int64), return_inverse=True)
    if distinct.size * 2 > v.size:
        return format_values(v)
    texts = np.array(format_values(distinct.view(np.float64)), dtype=object)
    return texts[where].tolist()  # type: ignore[no-any-return]


# ---- rows <-> series ---------------------------------------------------------------

_NAME = operator.attrgetter("name")
_VALUE = operator.attrgetter("value")
_TIME = operator.attrgetter("time")


def _point_codes(rows: list[Sample]) -> tuple[dict[str, int], npt.NDArray[np.int64]]:
    """Each row's point as a code, the codes in first-seen order of the names.

    Rows that come in runs of one point (a point's own read) are coded a run at a time;
    rows whose points alternate (the site's stream: a sweep's points one after another)
    a row at a time, which is quicker when runs are short.
    """
    if len(rows) > 1 and rows[0].name == rows[1].name:
        codes: dict[str, int] = {}
        run_codes: list[int] = []
        run_lengths: list[int] = []
        for name, run in itertools.groupby(map(_NAME, rows)):
            run_codes.append(codes.setdefault(name, len(codes)))
            run_lengths.append(len(list(run)))
        return codes, np.repeat(np.array(run_codes, dtype=np.int64), run_lengths)
    names = list(map(_NAME, rows))
    codes = {name: i for i, name in enumerate(dict.fromkeys(names))}
    return codes, np.fromiter(map(codes.__getitem__, names), dtype=np.int64, count=len(rows))


def samples_to_series(samples: Iterable[Sample]) -> dict[str, Series]:
    """Group rows by point into sorted, de-duplicated series (``series_of_columns``).

    Times and values of all rows are parsed at once (a page carries thousands of points).
    A time that is not ISO 8601 raises ``ValueError``.
    """
    rows = samples if isinstance(samples, list) else list(samples)
    if not rows:
        return {}
    t_ms, us = parse_times_us(list(map(_TIME, rows)))
    values = parse_values(list(map(_VALUE, rows)))
    codes, point = _point_codes(rows)
    return series_of_columns(list(codes), point, t_ms, us, values)


def series_of_columns(
    names: list[str],
    point: npt.NDArray[np.int64],
    t_ms: TimeArray,
    us: MicroArray,
    values: ValueArray,
) -> dict[str, Series]:
    """Rows given as columns (each row's point as a code into ``names``, the names in
    first-seen order) grouped by point into sorted, de-duplicated series.

    Sorted once by (point, time) unless the rows come in that order (upstream's usual:
    each point's rows together, in time order) and split by point in first-seen order;
    as ``Series.from_unsorted``, the last row of a repeated millisecond wins.
    """
    order = _point_time_order(point, t_ms, len(names))
    if order is not None:
        point, t_ms = point[order], t_ms[order]
        keep = np.ones(t_ms.size, dtype=bool)
        keep[:-1] = (t_ms[1:] != t_ms[:-1]) | (point[1:] != point[:-1])
        kept = order[keep]
        point, t_ms, values, us = point[keep], t_ms[keep], values[kept], us[kept]
    bounds = np.searchsorted(point, np.arange(len(names) + 1)).tolist()
    with_us = np.add.reduceat(us != 0, bounds[:-1]).tolist()  # any sub-ms part, per point
    out = {}
    for name, lo, hi, micros in zip(names, bounds[:-1], bounds[1:], with_us, strict=True):
        out[name] = Series(name, t_ms[lo:hi], values[lo:hi], us[lo:hi] if micros else None)
    return out


def _point_time_order(
    point: npt.NDArray[np.int64], t_ms: TimeArray, points: int
) -> npt.NDArray[np.int64] | None:
    """The order of the rows by (point, time), equal ones in row order (``np.lexsort``'s);
    ``None`` when the rows are in it, each (point, time) once.

    Both keys as one integer when they fit, whose stable sort (a merge of the rows' runs:
    a sweep's points in order, one point's times in order) is far quicker than lexsort.
    """
    lo, hi = int(t_ms.min()), int(t_ms.max())
    span = hi - lo + 1
    if span * points >= 2**62:
        same = point[1:] == point[:-1]
        in_order = (point[1:] > point[:-1]) | (same & (t_ms[1:] > t_ms[:-1]))
        return None if bool(in_order.all()) else np.lexsort((t_ms, point))
    key = point * span + (t_ms - lo)
    if bool((key[1:] > key[:-1]).all()):  # upstream's usual order: no sort, no duplicate
        return None
    return np.argsort(key, kind="stable")


def grouped_rows(series: Sequence[Series]) -> list[dict[str, str]]:
    """Rows grouped by point in the order given, each point's in time order: how
    upstream answers ``get_timeseries`` and the per-point reads."""
    rows: list[dict[str, str]] = []
    for s in series:
        if len(s):
            times = format_times(s.t_ms, s.us)
            rows.extend(
                {"name": s.name, "value": val, "time": tm}
                for val, tm in zip(format_values(s.v), times, strict=True)
            )
    return rows


# ---- query parameters --------------------------------------------------------------


def parse_bool(param: str, raw: str | None, default: bool) -> bool:
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise BadParameter(param, f"{raw!r} is not a boolean (use true/false/1/0)")


def parse_int(param: str, raw: str | None, *, lo: int, hi: int) -> int | None:
    """An optional integer parameter within ``lo..hi``; ``None`` when absent."""
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise BadParameter(param, f"{raw!r} is not an integer") from exc
    if not lo <= value <= hi:
        raise BadParameter(param, f"{value} is outside {lo}..{hi}")
    return value


def parse_per_page(raw: str | None) -> int:
    """``per_page`` of the list endpoints: one of the contract's enum, default 10."""
    size = parse_int("per_page", raw, lo=-(2**63), hi=2**63)
    if size is None:
        return DEFAULT_PER_PAGE
    if size not in PER_PAGE:
        allowed = ", ".join(map(str, PER_PAGE))
        raise BadParameter("per_page", f"{size} is not one of {allowed}")
    return size


def parse_page_size(raw: str | None) -> int:
    size = parse_int("page_size", raw, lo=-(2**63), hi=2**63)
    if size is None:
        return DEFAULT_PAGE_SIZE
    if size not in PAGE_SIZES:
        allowed = ", ".join(map(str, PAGE_SIZES))
        raise BadParameter("page_size", f"{size} is not one of {allowed}")
    return size


def encode_cursor(cursor: Cursor) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(cursor)).decode("ascii")


def decode_cursor(raw: str) -> Cursor:
    try:
        padded = raw + "=" * (-len(raw) % 4)
        data = base64.urlsafe_b64decode(padded.encode("ascii"))
        cursor = msgspec.json.decode(data, type=Cursor)
    except (binascii.Error, ValueError, UnicodeEncodeError, msgspec.DecodeError) as exc:
        raise BadParameter("cursor", "is malformed (pass back next_cursor unchanged)") from exc
    if cursor.offset < 0:
        raise BadParameter("cursor", "is malformed (negative offset)")
    parse_time("cursor", cursor.timestamp)
    return cursor


# ---- paging a merged result with our own stable cursors ------------------------------


@dataclass(frozen=True)
class Merged:
    """Rows of several series in page order, (time, µs, position in the list), as arrays."""

    t_ms: TimeArray
    v: ValueArray
    us: MicroArray
    idx: npt.NDArray[np.int32]
    names: tuple[str, ...]

    @classmethod
    def of(cls, series: Sequence[Series]) -> Merged:
        parts = [s for s in series if len(s)]
        if not parts:
            empty = np.empty(0, dtype=np.int64)
            return cls(
                empty, empty.astype(np.float64), empty.astype(np.uint16), empty.astype(np.int32), ()
            )
        t = np.concatenate([s.t_ms for s in parts])
        v = np.concatenate([s.v for s in parts])
        us = np.concatenate([s.micros for s in parts])
        idx = np.concatenate([np.full(len(s), i, dtype=np.int32) for i, s in enumerate(parts)])
        order = np.lexsort((idx, us, t))
        return cls(t[order], v[order], us[order], idx[order], tuple(s.name for s in parts))

    def __len__(self) -> int:
        return int(self.t_ms.size)


def page_rows(
    series: Sequence[Series] | Merged,
    cursor: Cursor | None,
    page_size: int,
    *,
    bucket_times: bool = False,
    raw: Sequence[Series] | None = None,
) -> tuple[list[dict[str, str]], str | None]:
    """One ACE page of rows ordered by (time, position in ``series``).

    The cursor names the sweep slot of the next row and how many of that slot's rows
    were already served, as upstream's does, so cursors pass between tsgate and upstream
    and stay valid whatever is cached when the next page is asked. ``raw``: the samples
    ``series`` were bucketed from; the cursor is then stamped, as upstream stamps it,
    with the time of the next row's raw sample (the first of its point in its bucket),
    not with the bucket's start, so its bytes are upstream's.
    """
    m = series if isinstance(series, Merged) else Merged.of(series)
    t = m.t_ms
    if not t.size:
        return [], None
    start = 0
    if cursor is not None:
        slot_ms = _slot(parse_time("cursor", cursor.timestamp))
        first = int(np.searchsorted(t, slot_ms, side="left"))
        in_slot = int(np.searchsorted(t, slot_ms + CURSOR_SLOT_MS, side="left")) - first
        start = first + min(cursor.offset, in_slot)  # upstream caps a forged offset
    stop = min(start + page_size, t.size)
    window = slice(start, stop)
    times = _run_times(t[window], None if bucket_times else m.us[window])
    names = np.array(m.names, dtype=object)[m.idx[window]].tolist()
    rows = [
        {"name": name, "value": val, "time": tm}
        for name, val, tm in zip(names, _unique_values(m.v[window]), times, strict=True)
    ]
    if stop >= t.size:
        return rows, None
    next_ms = int(t[stop])
    first_at = int(np.searchsorted(t, _slot(next_ms), side="left"))
    stamp = format_time(next_ms, micros=int(m.us[stop]))
    if raw is not None:
        stamp = _raw_stamp(raw, m.names[int(m.idx[stop])], next_ms) or stamp
    return rows, encode_cursor(Cursor(offset=stop - first_at, timestamp=stamp))


def _raw_stamp(raw: Sequence[Series], name: str, bucket_ms: int) -> str | None:
    """The time of ``name``'s first raw sample in the bucket starting at ``bucket_ms``
    (``None`` when ``raw`` has none there)."""
    for s in raw:
        if s.name != name:
            continue
        at = int(np.searchsorted(s.t_ms, bucket_ms, side="left"))
        if at < len(s) and _slot(int(s.t_ms[at])) == _slot(bucket_ms):
            return format_time(int(s.t_ms[at]), micros=int(s.micros[at]))
    return None


def _slot(ms: int) -> int:
    return ms - ms % CURSOR_SLOT_MS


def _run_times(t_ms: TimeArray, us: MicroArray | None) -> list[str]:
    """Time strings of page-ordered rows, each run of one instant formatted once
    (whole seconds, as rollup buckets are, when ``us`` is ``None``)."""
    if not t_ms.size:
        return []
    changes = t_ms[1:] != t_ms[:-1]
    if us is not None:
        changes |= us[1:] != us[:-1]
    starts = np.flatnonzero(np.concatenate(([True], changes)))
    if starts.size * 2 > t_ms.size:  # few repeats: format every row
        return _bucket_stamps(t_ms) if us is None else format_times(t_ms, us)
    firsts = t_ms[starts]
    texts = _bucket_stamps(firsts) if us is None else format_times(firsts, us[starts])
    runs = np.diff(np.append(starts, t_ms.size))
    return np.repeat(np.array(texts, dtype=object), runs).tolist()


def _bucket_stamps(t_ms: TimeArray) -> list[str]:
    return np.datetime_as_string(t_ms.astype("datetime64[ms]"), unit="s").tolist()  # type: ignore[no-any-return]
