"""When the simulated upstream serves a sample, measured on the simulator's clock.

A sample timestamped ``t`` appears at ``t + delay`` (gateway batching), samples inside a
gateway :class:`Outage` appear only when its backlog is uploaded (a VOLTTRON historian),
and a :class:`LatePoint` exists only from the time it is added to the catalog.
:func:`samples` is the direct truth: exactly what upstream serves for a point, a range
and an as-of time (the values themselves are ``upstream.campus``'s).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from tsgate.upstream.campus import (
    SWEEP_MS,
    SimPoint,
    SimSite,
    present,
    sweep_times_us,
    uniform,
    values,
)


@dataclass(frozen=True)
class Outage:
    """A gateway offline over ``[start_ms, end_ms)``: its samples of that span reach
    upstream only at ``backlog_ms`` (``None``: never), all at once."""

    start_ms: int
    end_ms: int
    backlog_ms: int | None
    site: str | None = None  # None: every site
    points: tuple[str, ...] = ()  # empty: every point of the site

    def covers(self, point: SimPoint) -> bool:
        return (self.site is None or self.site == point.site) and (
            not self.points or point.name in self.points
        )


@dataclass(frozen=True)
class LatePoint:
    """A point added to the catalog at ``added_ms``; before that upstream knows nothing
    of it. Its samples start at ``since_ms`` (``None``: ``added_ms``); an earlier
    ``since_ms`` is a history the gateway uploads when the point is added."""

    name: str
    added_ms: int
    since_ms: int | None = None


@dataclass(frozen=True)
class Visibility:
    """When each sample becomes visible upstream, measured on the simulator's clock.

    A sample at ``t`` is visible from ``t + delay_s + jitter_s × u`` on, ``u`` a
    deterministic uniform [0, 1) per (point, sweep): fixed delays, random ones, or both.
    """

    delay_s: float = 0.0
    jitter_s: float = 0.0
    outages: tuple[Outage, ...] = ()
    late_points: tuple[LatePoint, ...] = ()

    @cached_property
    def _late(self) -> dict[str, LatePoint]:
        return {p.name: p for p in self.late_points}

    def listed(self, point: SimPoint, as_of_ms: int) -> bool:
        """Whether the catalog lists ``point`` at ``as_of_ms``."""
        late = self._late.get(point.name)
        return late is None or as_of_ms >= late.added_ms

    def visible(
        self,
        point: SimPoint,
        sweeps: npt.NDArray[np.int64],
        times_us: npt.NDArray[np.int64],
        as_of_ms: int,
    ) -> npt.NDArray[np.bool_]:
        """Whether each sample (its sweep and time) is served at ``as_of_ms``."""
        seen_at_us = times_us
        if self.delay_s or self.jitter_s:
            delay = self.delay_s + self.jitter_s * uniform(point.key, sweeps, salt=5)
            seen_at_us = times_us + (delay * 1e6).astype(np.int64)
        # the clock counts whole ms: a sample is visible in the millisecond it appears
        mask: npt.NDArray[np.bool_] = seen_at_us // 1000 <= as_of_ms
        for outage in self.outages:
            if outage.covers(point) and (outage.backlog_ms is None or as_of_ms < outage.backlog_ms):
                mask &= (times_us < outage.start_ms * 1000) | (times_us >= outage.end_ms * 1000)
        late = self._late.get(point.name)
        if late is not None:
            since_ms = late.added_ms if late.since_ms is None else late.since_ms
            mask &= (times_us >= since_ms * 1000) & (as_of_ms >= late.added_ms)
        return mask

    def visible_block(
        self,
        points: Sequence[SimPoint],
        keys: npt.NDArray[np.uint64],
        sweeps: npt.NDArray[np.int64],
        times_us: npt.NDArray[np.int64],
        as_of_ms: int,
    ) -> npt.NDArray[np.bool_]:
        """:meth:`visible` of many points at once, sweeps × points (``keys`` theirs)."""
        seen_at_us = times_us[:, None]
        if self.delay_s or self.jitter_s:
            # without a jitter every point's delay is the same (``jitter_s × u`` adds ±0)
            u = uniform(keys, sweeps[:, None], salt=5) if self.jitter_s else np.zeros((1, 1))
            delay = self.delay_s + self.jitter_s * u
            seen_at_us = seen_at_us + (delay * 1e6).astype(np.int64)
        mask = np.empty((sweeps.size, len(points)), dtype=np.bool_)
        mask[...] = seen_at_us // 1000 <= as_of_ms
        for outage in self.outages:
            if outage.backlog_ms is None or as_of_ms < outage.backlog_ms:
                kept = (times_us < outage.start_ms * 1000) | (times_us >= outage.end_ms * 1000)
                covered = np.fromiter(map(outage.covers, points), np.bool_, len(points))
                mask &= kept[:, None] | ~covered
        lates = [(i, self._late.get(p.name)) for i, p in enumerate(points)] if self._late else []
        for column, late in lates:
            if late is not None:
                since_ms = late.added_ms if late.since_ms is None else late.since_ms
                mask[:, column] &= (times_us >= since_ms * 1000) & (as_of_ms >= late.added_ms)
        return mask


def sweeps_of(start_ms: int, end_ms: int) -> npt.NDArray[np.int64]:
    """Every sweep whose sample may lie in ``[start_ms, end_ms)``: the slots containing
    the start and the end included (a sample lies 30–50 s into its slot)."""
    return np.arange(start_ms // SWEEP_MS, -(-end_ms // SWEEP_MS), dtype=np.int64)


def samples(
    site: SimSite,
    point: SimPoint,
    start_ms: int,
    end_ms: int,
    *,
    as_of_ms: int,
    visibility: Visibility | None = None,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The truth: the samples (µs times, values) of ``point`` in ``[start_ms, end_ms)``
    that upstream serves at ``as_of_ms``, computed directly from the model."""
    sweeps = sweeps_of(start_ms, end_ms)
    times_us = sweep_times_us(site, sweeps)
    keep = (
        present(site, point, sweeps)
        & (times_us >= start_ms * 1000)
        & (times_us < end_ms * 1000)
        & (visibility or Visibility()).visible(point, sweeps, times_us, as_of_ms)
    )
    return times_us[keep], values(site, point, sweeps[keep])
