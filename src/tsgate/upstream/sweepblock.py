"""The samples of many points of a site at a batch of sweeps, computed at once.

``campus.present``, ``campus.values`` and ``Visibility.visible`` answer for one point over
many sweeps; a site's stream needs every point of the site at each sweep. Here the
site's drivers are computed once for the batch and every per-point part for all points at
once, sweeps × points: each signal formula once per kind, the change-of-value reports of
all those points in one chain, from the very values served. The block is exactly those
per-point answers, stacked.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from tsgate.upstream import building, campus
from tsgate.upstream.campus import SimPoint, SimSite
from tsgate.upstream.visibility import Visibility

_Mask = npt.NDArray[np.bool_]
_Values = npt.NDArray[np.float64]


def sweep_block(
    site: SimSite,
    points: Sequence[SimPoint],
    sweeps: npt.NDArray[np.int64],
    times_us: npt.NDArray[np.int64],
    seen: tuple[Visibility, int],
) -> tuple[_Mask, _Values]:
    """Whether each point reported at each sweep and is served at ``seen`` (visibility,
    as-of ms), and its values: sweeps × points, each column what ``campus.present(…) &
    visibility.visible(…)`` and ``campus.values(…)`` give for its point."""
    visibility, as_of_ms = seen
    keys = campus.keys(points)
    if not sweeps.size or not points:
        shape = (sweeps.size, len(points))
        return np.zeros(shape, dtype=np.bool_), np.zeros(shape, dtype=np.float64)
    reported = _reported(site, points, keys, sweeps)
    cov = [i for i, p in enumerate(points) if p.kind in building.DEADBANDS]
    if not cov:
        values = _values(site, points, keys, sweeps)
    else:
        plain = [i for i, p in enumerate(points) if p.kind not in building.DEADBANDS]
        values = np.empty(reported.shape, dtype=np.float64)
        values[:, plain] = _values(site, [points[i] for i in plain], keys[plain], sweeps)
        # change of value needs the whole hours around the sweeps: their values are served
        hours = building.whole_hours(sweeps)
        at = sweeps - hours[0]
        hourly = _values(site, [points[i] for i in cov], keys[cov], hours)
        values[:, cov] = hourly[at]
        deadbands = np.array([building.DEADBANDS[points[i].kind] for i in cov])
        reported[:, cov] &= building.cov_chain(hourly, deadbands)[at]
    mask = reported & visibility.visible_block(points, keys, sweeps, times_us, as_of_ms)
    return mask, values


def _reported(
    site: SimSite,
    points: Sequence[SimPoint],
    keys: npt.NDArray[np.uint64],
    sweeps: npt.NDArray[np.int64],
) -> _Mask:
    """``campus.present`` of every point but its change-of-value reports."""
    hours, at = np.unique(sweeps // building.SWEEPS_PER_HOUR, return_inverse=True)
    lost_hour = (campus.uniform(keys, hours[:, None], salt=2) < 0.003)[at]
    reported: _Mask = ~(lost_hour | campus.site_outage(site, sweeps)[:, None])
    reported &= np.fromiter((p.collect for p in points), np.bool_, len(points))
    stale = [i for i, p in enumerate(points) if p.kind == "stale_rh"]
    if stale:
        reported[:, stale] &= ~building.stale(keys[stale], sweeps[:, None], campus.uniform)
    return reported


def _values(
    site: SimSite,
    points: Sequence[SimPoint],
    keys: npt.NDArray[np.uint64],
    sweeps: npt.NDArray[np.int64],
) -> _Values:
    """``campus.values`` of every point, each kind's formula once for all its points."""
    drivers = campus.drivers(site, sweeps).as_column()
    column = sweeps[:, None]
    noise = campus.uniform(keys, column) - 0.5
    bias = np.fromiter((p.bias for p in points), np.float64, len(points))
    by_kind: defaultdict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(points):
        by_kind[p.kind].append(i)
    out = np.empty(noise.shape, dtype=np.float64)
    for kind, at in by_kind.items():
        out[:, at] = campus.signal(
            kind, drivers, key=keys[at], sweeps=column, noise=noise[:, at], bias=bias[at]
        )
    return out
