"""Time-weighted aggregates of buckets: each value holds until the next sample.

For change-of-value points and on/off points a sample mean is biased toward the periods
that changed most; what an engineer wants is the value over time. With every value held
until the next sample (previous-value hold, Haystack's ``cov``), a bucket ``[c0, c1)`` of
the answer (clipped to the range, and to now) is covered:

- from ``c0`` to its first sample by the previous bucket's last value (nothing is assumed
  before the first sample of the range: the first bucket starts at its first sample);
- between its samples by the bucket's ``hold`` integral (kept in the rollups);
- from its last sample to ``c1`` by its last value.

``twavg`` is the integral over the time covered; ``duty`` the % of that time the value
was non-zero; ``runhours`` the hours it was non-zero; ``starts`` the off -> on changes;
``timein:<state>`` the hours it held the value ``state`` (an integer: a multi-state mode or
0/1), from the rollups' time in each state (NaN where the values are not all states).
"""

from __future__ import annotations

import numpy as np

from tsgate.core.model import MS_PER_HOUR, TimeArray, ValueArray
from tsgate.core.rollups import Buckets

TIME_WEIGHTED = frozenset({"twavg", "duty", "runhours", "starts"})
TIMEIN = "timein:"
_MAX_STATE = 2**31


def timein_state(agg: str) -> float | None:
    """The state of a ``timein:<state>`` aggregate (an integer, e.g. ``timein:3``), else None."""
    if not agg.startswith(TIMEIN):
        return None
    text = agg[len(TIMEIN) :]
    digits = text[1:] if text[:1] == "-" else text
    if not (1 <= len(digits) <= 10 and digits.isascii() and digits.isdigit()):
        return None
    state = int(text)
    return float(state) if abs(state) <= _MAX_STATE else None


def is_time_weighted(agg: str) -> bool:
    return agg in TIME_WEIGHTED or timein_state(agg) is not None


def values(
    b: Buckets, agg: str, ends_ms: TimeArray, until_ms: int, *, linear: bool = False
) -> ValueArray:
    """One value per bucket of ``b`` (the exact buckets of a range, first one clipped to
    its start) for ``agg`` in :data:`TIME_WEIGHTED`; ``ends_ms`` is where each bucket ends
    on its grid, ``until_ms`` where the range ends (or now, if earlier). ``linear``: a
    ``twavg`` of a sampled point, joining samples by lines (:func:`linear_twavg`)."""
    state = timein_state(agg)
    if agg not in TIME_WEIGHTED and state is None:
        raise ValueError(f"unknown time-weighted aggregate {agg!r}")
    if len(b) == 0:
        return np.empty(0, dtype=np.float64)
    stop = np.minimum(ends_ms, until_ms)
    prev_last = np.append(np.nan, b.last[:-1])
    has_prev = np.arange(len(b)) > 0
    begin = np.where(has_prev, b.start_ms, b.first_ms)
    lead_ms = (b.first_ms - begin).astype(np.float64)  # held at the previous last value
    tail_ms = (stop - b.last_ms).astype(np.float64)  # held at this bucket's last value
    covered = (stop - begin).astype(np.float64)
    if agg == "starts":
        carried = has_prev & (prev_last == 0) & (b.first != 0)
        counted: ValueArray = (b.rises + carried).astype(np.float64)
        return counted
    if agg == "twavg" and linear:
        return linear_twavg(b, begin, stop)
    # every sample lies before the range's end and now, so each bucket covers some time
    if agg == "twavg":
        integral = np.where(has_prev, prev_last, 0.0) * lead_ms + b.hold + b.last * tail_ms
        mean: ValueArray = integral / covered
        return mean
    if state is not None:
        if not b.has_states:
            return np.full(len(b), np.nan)
        column = np.flatnonzero(b.states == state)
        inside = b.state_ms[:, column[0]] if column.size else np.zeros(len(b))
        held = (
            np.where(has_prev & (prev_last == state), lead_ms, 0.0)
            + inside
            + np.where(b.last == state, tail_ms, 0.0)
        )
        hours: ValueArray = held / MS_PER_HOUR
        return hours
    on = (
        np.where(has_prev & (prev_last != 0), lead_ms, 0.0)
        + b.on_ms
        + np.where(b.last != 0, tail_ms, 0.0)
    )
    share: ValueArray = on / MS_PER_HOUR if agg == "runhours" else 100.0 * on / covered
    return share


def linear_twavg(b: Buckets, begin: TimeArray, stop: TimeArray) -> ValueArray:
    """The time-weighted mean of a sampled point: consecutive samples at most
    ``b.gap_ms`` apart are joined by a straight line (the trapezoid rule), and a bucket
    covers the time those lines span inside ``[begin, stop)``. At a bucket edge a line
    to a sample of the neighbouring bucket is cut at its value at the edge; across a
    longer gap nothing is interpolated (the time is not covered), and nothing is assumed
    before the range's first sample or after its last. A bucket whose lone sample no
    line reaches is that sample's value. NaN where ``gap_ms`` is not known."""
    if b.gap_ms < 0:
        return np.full(len(b), np.nan)
    prev_last = np.append(np.nan, b.last[:-1])
    prev_ms = np.append(np.iinfo(np.int64).min // 2, b.last_ms[:-1])
    next_first = np.append(b.first[1:], np.nan)
    next_ms = np.append(b.first_ms[1:], np.iinfo(np.int64).max // 2)
    into = (b.first_ms - prev_ms) <= b.gap_ms  # a line from the previous bucket's last
    out = (next_ms - b.last_ms) <= b.gap_ms  # ... to the next bucket's first
    lead_ms = np.where(into, b.first_ms - begin, 0).astype(np.float64)
    tail_ms = np.where(out, stop - b.last_ms, 0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        at_begin = prev_last + (b.first - prev_last) * (begin - prev_ms) / (b.first_ms - prev_ms)
        at_stop = b.last + (next_first - b.last) * (stop - b.last_ms) / (next_ms - b.last_ms)
    lead = np.where(into, (at_begin + b.first) * 0.5 * lead_ms, 0.0)
    tail = np.where(out, (b.last + at_stop) * 0.5 * tail_ms, 0.0)
    covered = lead_ms + b.lin_ms + tail_ms
    with np.errstate(invalid="ignore", divide="ignore"):
        mean: ValueArray = np.where(covered > 0, (lead + b.lin + tail) / covered, b.sum / b.count)
    return mean
