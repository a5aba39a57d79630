"""The texts of a body's rows read from their byte ranges, a column at a time.

Times as numpy reads them (``parse_times_us``), values as ``parse_values`` reads them,
names coded in first-seen order: each by a vectorised reading where every text of the
column allows it, else text by text with those very functions. The ranges hold ASCII
without quotes, backslashes or control characters (``acebody`` checks the body).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tsgate.samples import MicroArray, TimeArray, ValueArray
from tsgate.wire.ace import joined_numbers, parse_times_us, parse_values

IntArray = npt.NDArray[np.int64]
_COMMA, _SPACE = ord(","), ord(" ")
_WIDEST_VALUE = 40  # longer value texts are read one by one
_WIDEST_NAME = 128  # longer names are coded one by one
_INDEX_BITS = 24  # a row's index in a sort key (upstream's largest page: 500,000 rows)


def all_at(content: bytes, at: IntArray, text: bytes) -> bool:
    """Whether ``text`` is in ``content`` at each of the ascending positions ``at``."""
    if not at.size or not text:
        return True
    if int(at[-1]) + len(text) > len(content):
        return False
    return windows(content, len(text))[at].tobytes() == text * at.size


def windows(content: bytes, width: int) -> npt.NDArray[np.bytes_]:
    """Every ``width`` bytes of ``content`` as one string, at each offset (a view)."""
    shape = (len(content) - width + 1,)
    return np.ndarray(shape, dtype=f"S{width}", buffer=content, strides=(1,))


def _texts(content: bytes, starts: IntArray, ends: IntArray) -> list[str]:
    return [
        content[a:b].decode("ascii") for a, b in zip(starts.tolist(), ends.tolist(), strict=True)
    ]


# ---- times --------------------------------------------------------------------------


def read_times(content: bytes, starts: IntArray, ends: IntArray) -> tuple[TimeArray, MicroArray]:
    """``parse_times_us`` of the texts: epoch ms and the µs beyond; ``ValueError`` for a
    time that is not ISO 8601."""
    fixed = _fixed_times(content, starts, ends)
    if fixed is not None:
        return fixed
    return parse_times_us(_texts(content, starts, ends))


@dataclass(frozen=True)
class _TimeForm:
    """``YYYY-MM-DDTHH:MM:SS`` with or without ``.ffffff``: each byte's least value, how
    far above it the byte may be (a digit 9, the tens of a minute 5, a separator 0), and
    where each two-digit number starts (year's two, month, day, hour, minute, second,
    the fraction's three)."""

    low: npt.NDArray[np.uint8]
    span: npt.NDArray[np.uint8]
    tens: IntArray


@functools.cache
def _time_form(width: int) -> _TimeForm:
    pattern = "0000-00-00T00:00:00.000000"[:width]
    span = np.array([9 if c == "0" else 0 for c in pattern], np.uint8)
    span[[5, 8, 11, 14, 17]] = (1, 3, 2, 5, 5)  # the tens of month, day, hour, min, sec
    tens = np.array([0, 2, 5, 8, 11, 14, 17, 20, 22, 24][: 7 if width == 19 else 10])
    return _TimeForm(np.frombuffer(pattern.encode(), np.uint8), span, tens)


def _fixed_times(
    content: bytes, starts: IntArray, ends: IntArray
) -> tuple[TimeArray, MicroArray] | None:
    """Times all of one form, ``YYYY-MM-DDTHH:MM:SS.ffffff`` or ``YYYY-MM-DDTHH:MM:SS``,
    read as numpy reads them; ``None`` when not all are, or one is not a valid time.

    The digits are read a column at a time (a column of digits of every row), each day
    numbered from the first of its month by a table of the months the times span.
    """
    width = int(ends[0] - starts[0])
    if width not in (19, 26) or not bool((ends - starts == width).all()):
        return None
    form = _time_form(width)
    digits = windows(content, width)[starts].view(np.uint8).reshape(-1, width) - form.low
    if bool((digits > form.span).any()):
        return None
    pairs = digits[:, form.tens] * np.uint8(10) + digits[:, form.tens + 1]
    century, year, month, day, hour, minute, second, *fraction = pairs.T.astype(np.int32, "C")
    month_of = (century * 100 + year) * 20 + month  # the tens of a month are 0 or 1
    lo = int(month_of.min())
    day_before, days_in = _months(lo, int(month_of.max()))
    at = month_of - lo
    # day 0 is 4294967295 days into the month, as an unsigned number; a month 0 or 13 none
    valid = ((day - 1).view(np.uint32) < days_in[at]) & (hour <= 23)
    if not bool(valid.all()):
        return None
    seconds = (day_before[at] + day) * 86_400 + (hour * 3600 + minute * 60 + second)
    micros = seconds * 1_000_000
    if fraction:
        micros += (fraction[0] * 100 + fraction[1]) * 100 + fraction[2]
    return micros // 1000, (micros % 1000).astype(np.uint16)


def _months(lo: int, hi: int) -> tuple[IntArray, npt.NDArray[np.uint32]]:
    """For each ``year * 20 + month`` in ``lo..hi``: the epoch day before the month's
    first, and its number of days (proleptic Gregorian, as numpy's; 0 for a month 0 or
    13 to 19)."""
    keys = np.arange(lo, hi + 1, dtype=np.int64)
    year, month = keys // 20, keys % 20
    real = (month >= 1) & (month <= 12)
    first = _epoch_day(year, np.clip(month, 1, 12))
    after = _epoch_day(year + (month >= 12), np.where(month >= 12, 1, np.clip(month + 1, 1, 12)))
    return first - 1, np.where(real, after - first, 0).astype(np.uint32)


def _epoch_day(year: IntArray, month: IntArray) -> IntArray:
    """Days from 1970-01-01 to the first of ``month`` of ``year`` (H. Hinnant's
    ``days_from_civil``)."""
    year = year - (month <= 2)
    era = year // 400
    of_era = year - era * 400
    of_year = (153 * ((month + 9) % 12) + 2) // 5
    days: IntArray = era * 146_097 + of_era * 365 + of_era // 4 - of_era // 100 + of_year
    return days - 719_468


# ---- values -------------------------------------------------------------------------


def read_values(content: bytes, starts: IntArray, ends: IntArray) -> ValueArray:
    """``parse_values`` of the texts."""
    numbers = _short_numbers(content, starts, ends)
    if numbers is None:
        numbers = _padded_numbers(content, starts, ends)
    if numbers is not None:
        return numbers
    return parse_values(_texts(content, starts, ends))


_ONES = 0x0101_0101_0101_0101  # a byte's value times this: the byte in all eight
_HIGH = 0x80 * _ONES
_PAIRS = 0x0000_00FF_0000_00FF
# two-digit pairs into the number of all eight: 100 + 10**6 << 32, and 1 + 10**4 << 32
_MUL_ODD, _MUL_EVEN = 0x000F_4240_0000_0064, 0x0000_2710_0000_0001


def _short_numbers(content: bytes, starts: IntArray, ends: IntArray) -> ValueArray | None:
    """``parse_values`` of the texts when each is a JSON number without an exponent of at
    most eight bytes after its sign (a controller's ``72.5``); ``None`` otherwise.

    Each text is read as one 64-bit word: its dot found and taken out, its digits made
    one integer with three multiplications (D. Lemire's eight-digit parse), divided by
    the power of ten of its fraction. The integer (below 10**8) and the power (at most
    10**7) are exact, so the quotient is the text's value rounded once, as ``float``'s.
    """
    negative = np.frombuffer(content, np.uint8)[starts] == ord("-")
    first = starts + negative
    size = ends - first  # bytes after the sign
    if int(size.min()) < 1 or int(size.max()) > 8 or int(first[-1]) + 8 > len(content):
        return None
    kept = _byte_masks()
    within = kept[size]
    text = windows(content, 8)[first].view(np.uint64) & within
    # ASCII bytes: adding 0x7F sets a byte's top bit unless it is zero (here: a dot)
    dots = ~((text ^ (0x2E * _ONES)) + 0x7F * _ONES) & _HIGH
    digits = text + (dots >> 6)  # a dot read as a 0
    not_digit = ((digits + 0x46 * _ONES) | (digits - 0x30 * _ONES)) & _HIGH & within
    has_dot = dots != 0
    dot_at = np.where(has_dot, (np.bitwise_count(dots - 1) - 7) >> 3, size)
    bad = (not_digit != 0) | (np.bitwise_count(dots) > 1)
    bad |= has_dot & ((dot_at < 1) | (dot_at > size - 2))  # a digit each side of a dot
    bad |= ((text & 0xFF) == ord("0")) & (dot_at != 1)  # no leading zero
    if bool(bad.any()):
        return None
    below = kept[dot_at]
    digits &= 0x0F * _ONES  # each digit's value
    number = (digits & below) | ((digits >> 8) & ~below)  # the dot taken out
    number <<= ((8 - size + has_dot) * 8).astype(np.uint64)  # the last digit in the top byte
    number = number * 10 + (number >> 8)
    number = ((number & _PAIRS) * _MUL_ODD + ((number >> 16) & _PAIRS) * _MUL_EVEN) >> 32
    values: ValueArray = number.astype(np.float64) / _powers_of_ten()[size - dot_at - has_dot]
    np.negative(values, out=values, where=negative)
    return values


@functools.cache
def _byte_masks() -> npt.NDArray[np.uint64]:
    """For 0 to 8 bytes, the word with those low bytes kept."""
    return np.array([(1 << (8 * k)) - 1 for k in range(9)], dtype=np.uint64)


@functools.cache
def _powers_of_ten() -> ValueArray:
    return np.array([float(10**k) for k in range(8)])


def _padded_numbers(content: bytes, starts: IntArray, ends: IntArray) -> ValueArray | None:
    """``parse_values`` of the texts when each is a JSON number: the texts are read as one
    JSON array, each padded to the longest with spaces (JSON's whitespace, which changes
    no number); ``None`` otherwise."""
    lengths = ends - starts
    width = int(lengths.max()) + 1
    if width > _WIDEST_VALUE or int(starts[-1]) + width > len(content):
        return None
    cells = windows(content, width)[starts].view(np.uint8).reshape(-1, width)
    np.putmask(cells, np.arange(width) >= lengths[:, None], _SPACE)
    cells[:, -1] = _COMMA
    joined = cells.tobytes()[:-1]
    if joined.count(b",") != lengths.size - 1:  # a text holds a comma
        return None

    def text_at(i: int) -> str:
        return content[int(starts[i]) : int(ends[i])].decode("ascii")

    return joined_numbers(joined, lengths.size, text_at)


# ---- names --------------------------------------------------------------------------


def read_names(content: bytes, starts: IntArray, ends: IntArray) -> tuple[list[str], IntArray]:
    """The rows' names in first-seen order, and each row's as a code into them."""
    first = content[int(starts[0]) : int(ends[0])]
    if bool((ends - starts == len(first)).all()) and all_at(content, starts, first):
        return [first.decode("ascii")], np.zeros(starts.size, np.int64)  # a point's read
    words = _name_words(content, starts, ends)
    if words is not None and starts.size < 1 << _INDEX_BITS:
        point, firsts = _word_codes(words)
        if bool((words == words[firsts[point]]).all()):  # no two names share a hash
            return _texts(content, starts[firsts], ends[firsts]), point
    return _coded(_texts(content, starts, ends))


def _name_words(content: bytes, starts: IntArray, ends: IntArray) -> npt.NDArray[np.uint64] | None:
    """Each name as 64-bit words, zero after its end (names hold no zero byte)."""
    lengths = ends - starts
    width = -(-int(lengths.max()) // 8) * 8
    if width > _WIDEST_NAME or int(starts[-1]) + width > len(content):
        return None
    words = windows(content, width)[starts].view(np.uint64).reshape(starts.size, -1)
    words &= _word_masks(width)[lengths]
    return words


@functools.cache
def _word_masks(width: int) -> npt.NDArray[np.uint64]:
    """For each length up to ``width``, the masks of its bytes in ``width // 8`` words."""
    kept = np.arange(width) < np.arange(width + 1)[:, None]
    return np.where(kept, np.uint8(0xFF), np.uint8(0)).view(np.uint64)


_MIX = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93)


def _word_codes(words: npt.NDArray[np.uint64]) -> tuple[IntArray, IntArray]:
    """Each row's point as a code by a hash of its name's words, the codes in first-seen
    order, and each code's first row. Rows in runs of one point (a batch of points'
    reads) are coded a run at a time, rows of interleaved points (the site's stream) a
    row at a time. Two names may share a hash: the caller checks every row's words."""
    key = np.zeros(words.shape[0], np.uint64)
    for k in range(words.shape[1]):
        key = (key ^ words[:, k]) * np.uint64(_MIX[k % len(_MIX)])
    changed = key[1:] != key[:-1]
    heads = np.flatnonzero(changed) + 1
    if heads.size * 8 > key.size:
        return _first_seen(key)
    heads = np.concatenate(([0], heads))
    run_codes, firsts = _first_seen(key[heads])
    return np.repeat(run_codes, np.diff(heads, append=key.size)), heads[firsts]


def _first_seen(key: npt.NDArray[np.uint64]) -> tuple[IntArray, IntArray]:
    """Each key's code, codes numbered in the order their keys first appear, and the
    index of each code's first key (of equal keys, only the top 40 bits are told apart).

    Each key's top bits and its index in one word, sorted (a stable argsort, at a third
    of its cost): equal keys together, each run in index order.
    """
    index_mask = (1 << _INDEX_BITS) - 1
    packed = np.sort(
        (key & np.uint64(~index_mask & (2**64 - 1))) | np.arange(key.size, dtype=np.uint64)
    )
    order = (packed & np.uint64(index_mask)).astype(np.int64)
    ordered = packed >> np.uint64(_INDEX_BITS)
    new = np.empty(ordered.size, dtype=bool)
    new[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    firsts = order[new]
    rank = np.empty(firsts.size, np.int64)
    rank[np.argsort(firsts)] = np.arange(firsts.size)
    codes = np.empty(key.size, np.int64)
    codes[order] = rank[np.cumsum(new) - 1]
    return codes, np.sort(firsts)


def _coded(names: list[str]) -> tuple[list[str], IntArray]:
    codes = {name: i for i, name in enumerate(dict.fromkeys(names))}
    point = np.fromiter(map(codes.__getitem__, names), dtype=np.int64, count=len(names))
    return list(codes), point
