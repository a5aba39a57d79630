"""The in-memory shape of a timeseries: parallel numpy arrays, never lists of samples.

The value type the upstream seam and the series core both speak, so it sits below both
(``tsgate.core.model`` re-exports it for the core).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

TimeArray = npt.NDArray[np.int64]
ValueArray = npt.NDArray[np.float64]
MicroArray = npt.NDArray[np.uint16]

MS_PER_MINUTE = 60_000
MS_PER_HOUR = 3_600_000
MS_PER_DAY = 86_400_000


@dataclass(frozen=True, slots=True)
class Series:
    """One point's samples: ``t_ms`` (UTC epoch milliseconds, ascending) and ``v``.

    ``us`` is the sub-millisecond part of each time (0–999 µs), kept so that upstream's
    microsecond time strings can be given back exactly; ``None`` means all zero (any
    series built without it, e.g. rollups).
    """

    name: str
    t_ms: TimeArray
    v: ValueArray
    us: MicroArray | None = None

    @classmethod
    def empty(cls, name: str) -> Series:
        return cls(name, np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))

    @classmethod
    def from_unsorted(
        cls, name: str, t_ms: TimeArray, v: ValueArray, us: MicroArray | None = None
    ) -> Series:
        """Sort by time and keep the last of duplicate timestamps (upstream repeats rows).

        Two samples in the same millisecond are duplicates whatever their microseconds.
        """
        if t_ms.size == 0:
            return cls.empty(name)
        order = np.argsort(t_ms, kind="stable")
        t_sorted, v_sorted = t_ms[order], v[order]
        keep = np.ones(t_sorted.size, dtype=bool)
        keep[:-1] = t_sorted[1:] != t_sorted[:-1]
        us_kept = _nonzero(us[order][keep]) if us is not None else None
        return cls(name, t_sorted[keep], v_sorted[keep], us_kept)

    def __len__(self) -> int:
        return int(self.t_ms.size)

    @property
    def micros(self) -> MicroArray:
        """The sub-millisecond part of every time (zeros when not kept)."""
        if self.us is None:
            return np.zeros(self.t_ms.size, dtype=np.uint16)
        return self.us

    def crop(self, start_ms: int, end_ms: int) -> Series:
        """Samples with ``start_ms <= t < end_ms``."""
        # the method, not np.searchsorted: a third of the cost, and a page of the site
        # stream crops every point of a site
        lo, hi = self.t_ms.searchsorted((start_ms, end_ms)).tolist()
        if lo == 0 and hi == self.t_ms.size:
            return self
        us = self.us[lo:hi] if self.us is not None else None
        return Series(self.name, self.t_ms[lo:hi], self.v[lo:hi], us)


def _nonzero(us: MicroArray) -> MicroArray | None:
    return us if bool(us.any()) else None


def concat(name: str, parts: Iterable[Series]) -> Series:
    """Join pieces of one point's series; overlaps are resolved (last piece wins)."""
    pieces = [p for p in parts if len(p)]
    if not pieces:
        return Series.empty(name)
    if len(pieces) == 1:
        return Series(name, pieces[0].t_ms, pieces[0].v, pieces[0].us)
    t = np.concatenate([p.t_ms for p in pieces])
    v = np.concatenate([p.v for p in pieces])
    us = (
        np.concatenate([p.micros for p in pieces])
        if any(p.us is not None for p in pieces)
        else None
    )
    if bool(np.all(t[1:] > t[:-1])):
        return Series(name, t, v, us)
    return Series.from_unsorted(name, t, v, us)
