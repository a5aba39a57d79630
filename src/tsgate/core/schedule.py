"""Occupied spans from a site's schedule points (pure).

A schedule point (an occupancy schedule, on/off) holds each value until its next sample,
as every change-of-value point does. Its occupied spans over ``[start, stop)`` are where
the value held is non-zero: the value at ``start`` is the last sample before it (when the
caller read one), and before the point's first known sample nothing is assumed. A NaN
sample is no sample. A site with several schedule points is occupied where any of them
says so (:func:`union`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from tsgate.core import extents
from tsgate.core.model import Series

Span = tuple[int, int]


def held_spans(s: Series, start_ms: int, stop_ms: int) -> list[Span]:
    """Where ``s`` held a non-zero value within ``[start_ms, stop_ms)``: sorted, disjoint,
    non-touching spans. ``s`` may begin before ``start_ms`` (its last sample before the
    range says what held at ``start_ms``); samples at or after ``stop_ms`` are not used."""
    if stop_ms <= start_ms or len(s) == 0:
        return []
    known = ~np.isnan(s.v) & (s.t_ms < stop_ms)
    t, v = s.t_ms[known], s.v[known]
    if t.size == 0:
        return []
    begins = np.maximum(t, start_ms)
    ends = np.minimum(np.append(t[1:], stop_ms), stop_ms)
    on = (v != 0) & (ends > begins)
    return extents.merge(list(zip(begins[on].tolist(), ends[on].tolist(), strict=True)))


def union(spans: Iterable[Sequence[Span]]) -> list[Span]:
    """The instants any of the span lists covers, as sorted, disjoint, non-touching spans."""
    return extents.merge([span for found in spans for span in found])


def total_ms(spans: Sequence[Span]) -> int:
    return sum(end - start for start, end in spans)
