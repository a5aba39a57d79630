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

from tsgate.series.model import MS_PER_HOUR, TimeArray, ValueArray
from tsgate.series.rollups import Buckets

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


def values(b: Buckets, agg: str, ends_ms: TimeArray, until_ms: int) -> ValueArray:
    """One value per bucket of ``b`` (the exact buckets of a range, first one clipped to
    its start) for ``agg`` in :data:`TIME_WEIGHTED`; ``ends_ms`` is where each bucket ends
    on its grid, ``until_ms`` where the range ends (or now, if earlier)."""
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
