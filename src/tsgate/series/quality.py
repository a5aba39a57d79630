"""Data quality of a point over a range, from its hourly buckets alone.

Hourly buckets of exactly the samples in ``[start, end)`` (count, min, max and the times of
each hour's first and last sample) are enough for what an engineer asks first:

- **coverage**: samples received against the point's cadence (``collect_interval``);
- **longest gap** between consecutive samples, and from the range's ends to the first
  and last sample: two consecutive samples in different hours are consecutive buckets'
  last and first, so every gap of an hour or more is found exactly (a shorter gap inside
  one hour is not seen; the longest gap is then reported from hour boundaries only);
- **stale**: time since the last sample, against a threshold;
- **flatline hours**: hours with at least two samples whose max - min is within a tolerance;
- **out-of-range hours**: hours whose min or max lies outside the point's bounds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from tsgate.series.model import MS_PER_HOUR
from tsgate.series.rollups import Buckets


@dataclass(frozen=True)
class Quality:
    name: str
    samples: int
    expected: int  # samples the cadence promises over the range (up to now)
    coverage_pct: float  # samples / expected, at most 100
    longest_gap_ms: int
    last_ms: int | None  # time of the last sample in range
    stale_ms: int | None  # now - last sample, when the range reaches now
    stale: bool
    flatline_hours: int
    hours: int  # hours holding at least one sample
    out_of_range_hours: int = 0

    @property
    def missing(self) -> bool:
        return self.samples == 0


def assess(
    name: str,
    hourly: Buckets,
    span: tuple[int, int],
    now_ms: int,
    *,
    cadence_ms: int,
    stale_after_ms: int,
    flat_tolerance: float = 0.0,
    bounds: tuple[float | None, float | None] = (None, None),
) -> Quality:
    """The quality of one point from its hourly buckets of exactly the samples in ``span``."""
    if hourly.width_ms != MS_PER_HOUR:
        raise ValueError(f"quality needs hourly buckets, got {hourly.width_ms} ms")
    if cadence_ms <= 0:
        raise ValueError(f"cadence_ms must be positive, got {cadence_ms}")
    start_ms, end_ms = span
    until = max(start_ms, min(end_ms, now_ms + 1))  # nothing can have arrived after now
    samples = int(hourly.count.sum())
    expected = (until - start_ms) // cadence_ms
    coverage = 100.0 if expected <= 0 else min(100.0, 100.0 * samples / expected)
    if samples == 0:
        # no sample at all: the whole range is one gap, and stale if it reaches now
        empty_coverage = 0.0 if expected else 100.0
        return Quality(
            name, 0, expected, empty_coverage, until - start_ms, None, None, end_ms > now_ms, 0, 0
        )
    edges = np.concatenate(([start_ms], hourly.last_ms))
    nexts = np.concatenate((hourly.first_ms, [until]))
    longest = int(np.max(nexts - edges))
    last = int(hourly.last_ms[-1])
    # staleness is about now: a range that ends in the past is judged by its end
    stale_ms = until - last if end_ms > now_ms else None
    flat = (hourly.count >= 2) & (hourly.max - hourly.min <= flat_tolerance)
    low, high = bounds
    outside = np.zeros(len(hourly), dtype=bool)
    if low is not None:
        outside |= hourly.min < low
    if high is not None:
        outside |= hourly.max > high
    return Quality(
        name,
        samples,
        expected,
        coverage,
        longest,
        last,
        stale_ms,
        stale_ms is not None and stale_ms > stale_after_ms,
        int(np.count_nonzero(flat)),
        len(hourly),
        int(np.count_nonzero(outside)),
    )


@dataclass(frozen=True)
class Summary:
    points: int
    missing: int
    stale: int
    flatlined: int  # analog points with at least one flatline hour
    out_of_range: int  # points with at least one hour outside their bounds
    mean_coverage_pct: float
    samples: int


def summarise(items: Sequence[Quality], kinds: Mapping[str, str] | None = None) -> Summary:
    """Counts over the points; an on/off or multistate point (``kinds``) holding its value
    for hours is normal, so only analog points count as flatlined."""
    kinds = kinds or {}
    return Summary(
        points=len(items),
        missing=sum(q.missing for q in items),
        stale=sum(q.stale for q in items),
        flatlined=sum(
            q.flatline_hours > 0 and kinds.get(q.name, "analog") == "analog" for q in items
        ),
        out_of_range=sum(q.out_of_range_hours > 0 for q in items),
        mean_coverage_pct=float(np.mean([q.coverage_pct for q in items])) if items else 100.0,
        samples=sum(q.samples for q in items),
    )
