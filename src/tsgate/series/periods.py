"""Pure rules for stored periods: where a fetch lands, what it proves, and when a period
is final.

- **Where**: a fetched span is cut into the periods already stored for the point (a day,
  or a compacted month); where nothing is stored, into UTC days, or into a whole month
  when the span holds a settled calendar month.
- **What it proves** (*visibility is not time*): a sample stamped ``t`` may become
  visible upstream minutes after ``t``. A fetch made at ``F`` trusts only what lies before
  ``F - lookback``; the rest of it is the *tail*, served as covered while it is younger
  than the open TTL and then fetched again, overlapping the previous fetch.
- **When final**: a covered period whose samples keep the point's cadence is final. One
  with holes is *provisional* and re-checked on a schedule counted from the period's end
  (late backlogs of gateway historians); after the last step it is final as it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tsgate.core import extents
from tsgate.core.model import MS_PER_DAY, MS_PER_HOUR, MS_PER_MINUTE, TimeArray
from tsgate.series.index import FINAL, OPEN, PROVISIONAL, ChunkRow, Range

DEFAULT_CADENCE_MS = 5 * MS_PER_MINUTE
# re-checks of a provisional period, after its end
DEFAULT_RECHECKS_MS = (
    2 * MS_PER_HOUR,
    6 * MS_PER_HOUR,
    24 * MS_PER_HOUR,
    72 * MS_PER_HOUR,
    7 * MS_PER_DAY,
)
HOLE_CADENCES = 3  # a gap longer than this many reporting intervals is a hole
EDGE_CADENCES = 1.5  # ... and at the end of a covered range, one longer than this


@dataclass(frozen=True, slots=True)
class Profile:
    """What the catalog says of a point: does it collect, and how often it reports."""

    collecting: bool = True
    cadence_ms: int | None = None  # None: unknown, observed from the samples


@dataclass(frozen=True, slots=True)
class Target:
    """One period a fetch writes into, and the stored rows it replaces."""

    start_ms: int
    end_ms: int
    replaces: tuple[ChunkRow, ...]


def split_fetch(
    span: Range, fetched_at_ms: int, lookback_ms: int
) -> tuple[Range | None, Range | None]:
    """The trusted part of a fetched ``span`` and its untrusted tail (either may be None)."""
    start, end = span
    edge = fetched_at_ms - lookback_ms
    trusted = (start, min(end, edge)) if min(end, edge) > start else None
    tail = (max(start, edge), end) if end > max(start, edge) else None
    return trusted, tail


def targets(
    rows: Sequence[ChunkRow],
    span: Range,
    *,
    now_ms: int,
    settle_ms: int,
    fetched: Sequence[Range] = (),
) -> list[Target]:
    """The periods ``span`` of one point lands in, given that point's stored ``rows``.

    A settled month becomes one period (replacing the rows inside it) when ``span``,
    the point's other spans of the same write (``fetched``) and what the rows inside it
    cover make it whole: a month read around a day stored before is written once, not
    as a day chunk per day."""
    out: list[Target] = []
    day = extents.day_floor(span[0])
    while day < span[1]:
        holder = next((r for r in rows if r.period_start_ms <= day < r.period_end_ms), None)
        if holder is not None:
            out.append(Target(holder.period_start_ms, holder.period_end_ms, (holder,)))
            day = holder.period_end_ms
            continue
        month_end = extents.next_month(day)
        inside = tuple(r for r in rows if day <= r.period_start_ms < month_end)
        covered = [*fetched, span, *(c for r in inside for c in r.coverage)]
        whole_month = (
            day == extents.month_floor(day)
            and not extents.subtract((day, month_end), covered)
            and extents.is_settled(month_end, now_ms, settle_ms)
            and all(r.period_end_ms <= month_end for r in inside)
        )
        if whole_month:
            out.append(Target(day, month_end, inside))
            day = month_end
        else:
            out.append(Target(day, day + MS_PER_DAY, ()))
            day += MS_PER_DAY
    return out


def cadence_of(t_ms: TimeArray, profile: Profile) -> int:
    """The point's reporting interval: declared by the catalog, else the median observed."""
    if profile.cadence_ms:
        return profile.cadence_ms
    if t_ms.size >= 10:
        observed = int(np.median(np.diff(t_ms)))
        if observed > 0:
            return observed
    return DEFAULT_CADENCE_MS


def gap_limit_ms(profile: Profile) -> int:
    """Samples further apart than this are not joined by a line (a linear ``twavg``):
    :data:`HOLE_CADENCES` reporting intervals, the catalog's (else the default one)."""
    return HOLE_CADENCES * (profile.cadence_ms or DEFAULT_CADENCE_MS)


def find_holes(t_ms: TimeArray, covered: Sequence[Range], cadence_ms: int) -> list[Range]:
    """Where samples are missing inside the ``covered`` ranges, as the spans between the
    samples around them: gaps longer than :data:`HOLE_CADENCES` reporting intervals, and
    at each range's ends a gap longer than :data:`EDGE_CADENCES` intervals (what lies past
    an end is unknown, so an outage that starts or ends there may show only a little of
    itself; a covered range with no sample is one hole)."""
    limit = HOLE_CADENCES * cadence_ms
    edge = EDGE_CADENCES * cadence_ms
    out: list[Range] = []
    for start, end in covered:
        inside = t_ms[(t_ms >= start) & (t_ms < end)]
        if inside.size == 0:
            out.append((start, end))
            continue
        if int(inside[0]) - start > edge:
            out.append((start, int(inside[0])))
        gaps = np.flatnonzero(np.diff(inside) > limit)
        out.extend((int(inside[i]) + 1, int(inside[i + 1])) for i in gaps)
        if end - int(inside[-1]) > edge:
            out.append((int(inside[-1]) + 1, end))
    return out


def settle(
    period: Range,
    coverage: Sequence[Range],
    holes: Sequence[Range],
    profile: Profile,
    *,
    now_ms: int,
    schedule_ms: Sequence[int] = DEFAULT_RECHECKS_MS,
) -> tuple[str, int, int | None]:
    """``(state, re-checks done, next re-check)`` of a period after a write at ``now_ms``.

    Holes in what is covered make a period provisional (whether or not it is covered
    whole yet) until the schedule runs out; then it is final when covered whole, else
    open (what is missing is fetched when asked for)."""
    complete = tuple(coverage) == (period,)
    settled = FINAL if complete else OPEN
    if not holes or not profile.collecting:
        return settled, len(schedule_ms) if complete else 0, None
    for done, offset in enumerate(schedule_ms):
        if period[1] + offset > now_ms:
            return PROVISIONAL, done, period[1] + offset
    return settled, len(schedule_ms), None


def hole_spans(rows: Sequence[ChunkRow], *, join_ms: int = 6 * MS_PER_HOUR) -> list[Range]:
    """The holes of ``rows`` (one point), with neighbours closer than ``join_ms`` joined
    so one upstream read repairs an outage that spans days, yet no whole day between two
    separate holes is read again."""
    spans = sorted(h for r in rows for h in r.holes)
    out: list[Range] = []
    for s, e in spans:
        if out and s - out[-1][1] < join_ms:
            out[-1] = (out[-1][0], max(out[-1][1], e))
        else:
            out.append((s, e))
    return out
