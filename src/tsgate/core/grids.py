"""Bucket grids and the exact buckets of a range on them.

A grid says where buckets start: every ``width_ms`` from ``origin_ms`` (the epoch, or a
Monday for ISO weeks), or at explicit starts (local days, weeks and months of uneven
length, from :mod:`tsgate.core.calendar`). The answer to ``[start, end)`` counts exactly
the samples in it: the whole stored rollup buckets inside come from the rollups, the
partial ones at unaligned edges from the raw samples of the edge spans
(:func:`split_edges`, :func:`compose`), and a clipped first bucket is stamped at the range
start (:func:`clip_start`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tsgate.core.model import Series, TimeArray
from tsgate.core.rollups import (
    DEFAULT_GAP_MS,
    Buckets,
    bucketize,
    bucketize_at,
    coarsen,
    concat,
    regroup_at,
)

Range = tuple[int, int]


@dataclass(frozen=True)
class Grid:
    """Buckets every ``width_ms`` from ``origin_ms``, or (``starts`` set) beginning at each
    of ``starts``, ascending UTC ms whose first is at or before the range start;
    ``width_ms`` is then their nominal width."""

    width_ms: int
    origin_ms: int = 0
    starts: TimeArray | None = None

    def tiles(self, level_ms: int) -> bool:
        """Whether every bucket boundary lies on the epoch-aligned ``level_ms`` grid, so
        that whole buckets of that level build this grid's buckets."""
        if self.starts is None:
            return self.width_ms % level_ms == 0 and self.origin_ms % level_ms == 0
        return bool(np.all(self.starts % level_ms == 0))

    def bucket(self, s: Series, gap_ms: int = DEFAULT_GAP_MS) -> Buckets:
        """Raw samples into this grid's buckets (lines join samples ``gap_ms`` apart)."""
        if self.starts is None:
            return bucketize(s, self.width_ms, self.origin_ms, gap_ms=gap_ms)
        return bucketize_at(s, self.starts, self.width_ms, gap_ms=gap_ms)

    def ends(self, b: Buckets, until_ms: int) -> TimeArray:
        """Where each of ``b``'s buckets (on this grid) ends; the last calendar bucket's
        end lies beyond the range, so ``until_ms`` (the range's end or now) stands in."""
        if self.starts is None:
            floor = (b.start_ms - self.origin_ms) // self.width_ms * self.width_ms
            ends: TimeArray = floor + self.origin_ms + self.width_ms
            return ends
        slot = np.searchsorted(self.starts, b.start_ms, side="right") - 1
        bounds = np.append(self.starts[1:], max(until_ms, int(self.starts[-1]) + 1))
        calendar_ends: TimeArray = bounds[slot]
        return calendar_ends

    def regroup(self, b: Buckets) -> Buckets:
        """Finer buckets (on a level this grid :meth:`tiles`) into this grid's buckets."""
        if self.starts is not None:
            return regroup_at(b, self.starts, self.width_ms)
        if self.width_ms == b.width_ms and self.origin_ms % self.width_ms == 0:
            return b
        return coarsen(b, self.width_ms, self.origin_ms)


def clip_start(b: Buckets, start_ms: int) -> Buckets:
    """Stamp a first bucket that begins before ``start_ms`` at ``start_ms``.

    The answer to a range ``[start, end)`` stamps every bucket inside it: a partial first
    bucket at ``max(bucket_start, start)``, every other bucket at its grid start.
    """
    if len(b) == 0 or int(b.start_ms[0]) >= start_ms:
        return b
    stamps = b.start_ms.copy()
    stamps[0] = start_ms
    return dataclasses.replace(b, start_ms=stamps)


def split_edges(start_ms: int, end_ms: int, level_ms: int) -> tuple[list[Range], Range | None]:
    """Split ``[start_ms, end_ms)`` into raw edge spans and an interior of whole
    ``level_ms`` buckets (epoch-aligned): ``(edges, interior or None)``.

    The edges are the parts before the first and after the last whole bucket (none when
    the range is aligned); a range within one bucket is all edge.
    """
    if level_ms <= 0:
        raise ValueError(f"level_ms must be positive, got {level_ms}")
    if end_ms <= start_ms:
        return [], None
    inner_start = -(-start_ms // level_ms) * level_ms
    inner_end = end_ms // level_ms * level_ms
    if inner_start >= inner_end:
        return [(start_ms, end_ms)], None
    edges = [r for r in ((start_ms, inner_start), (inner_end, end_ms)) if r[0] < r[1]]
    return edges, (inner_start, inner_end)


def compose(
    interior: Buckets,
    edges: Sequence[Series],
    grid: Grid,
    start_ms: int,
    gap_ms: int | None = None,
) -> Buckets:
    """The exact buckets of a range on ``grid`` from stored ``interior`` buckets (whole
    buckets of one level, epoch-aligned, which the grid tiles) and the raw samples of its
    ``edges`` (:func:`split_edges`).

    Each edge is bucketed at the interior's level and joined with it (they never share a
    bucket), the whole is regrouped onto the grid, and a clipped first bucket is stamped
    at ``start_ms``: every statistic counts exactly the samples in range. The edges are
    joined by lines with ``gap_ms`` (default: the interior's).
    """
    level_ms = interior.width_ms
    if not grid.tiles(level_ms):
        raise ValueError(f"the grid's buckets are not whole {level_ms} ms buckets")
    gap = interior.gap_ms if gap_ms is None else gap_ms
    if not len(interior):
        interior = Buckets.empty(level_ms, gap)
    parts = [p for p in (interior, *(bucketize(e, level_ms, gap_ms=gap) for e in edges)) if len(p)]
    # in time order, so that joining them is one concatenation and no sort
    parts.sort(key=lambda p: int(p.start_ms[0]))
    joined = concat(parts or [interior])
    return clip_start(grid.regroup(joined), start_ms)
