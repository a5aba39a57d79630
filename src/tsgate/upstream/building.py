"""The simulator's building points beyond 5-minute analog sweeps.

Sites in a real time zone (``SimSite.zone``; daylight saving or a half-hour offset)
carry, besides the usual VAVs and AHUs, the points that make time-weighted statistics
matter:

- ``ahu_mode`` (BACnet multi-state): 1 off (weekends), 2 occupied, 3 unoccupied, 4 warm-up
  (the hour before occupancy);
- ``occ_schedule`` (binary): the site's schedule, on exactly over the modelled occupied
  hours;
- ``compressor`` (binary output): cycles with the load while occupied, short-cycling
  (10-minute cycles instead of 40) on about a quarter of the days;
- ``zone_temp_cov`` (analog, change of value): reports only when it moved more than
  its deadband since its last report, and at every whole hour (a heartbeat);
- ``flatline_temp`` (analog, sampled): stuck at one value on about a fifth of the days;
- ``stale_rh`` (analog, sampled): stops reporting at some hour on about a sixth of the
  days and stays silent until the next day.

Every change-of-value point (the binary and multi-state ones too) reports on the same
rule: at each whole hour, and at a sweep whose value differs from its last report by more
than its deadband. The hour restarts the chain, so any range is computed from its own
hours and every range agrees with every other.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

SWEEPS_PER_HOUR = 12
# kind -> (BACnet object type, unit)
KINDS = {
    "ahu_mode": ("multiStateValue", ""),
    "occ_schedule": ("binaryValue", ""),
    "compressor": ("binaryOutput", ""),
    "zone_temp_cov": ("analogInput", "°F"),
    "flatline_temp": ("analogInput", "°F"),
    "stale_rh": ("analogInput", "%RH"),
}
# the points of each building device, in order: (kind, how many)
DEVICE_POINTS = (
    ("ahu_mode", 1),
    ("occ_schedule", 1),
    ("compressor", 2),
    ("zone_temp_cov", 2),
    ("flatline_temp", 1),
    ("stale_rh", 1),
)
# change-of-value points and their deadbands (a change must exceed it to be reported)
DEADBANDS = {"ahu_mode": 0.5, "occ_schedule": 0.5, "compressor": 0.5, "zone_temp_cov": 0.5}
# the analog kind whose signal a building point carries (when it carries one)
RESEMBLES = {"zone_temp_cov": "zone_temp", "flatline_temp": "return_temp", "stale_rh": "outside_rh"}
SHORT_CYCLE_DAYS = 0.25
FLATLINE_DAYS = 0.2
STALE_DAYS = 1 / 6


def device_points(site: str, devices: int) -> list[tuple[str, str, str, str, bool]]:
    """``(name, kind, unit, device, collect)`` of every point of a site's building devices."""
    out = []
    for n in range(devices):
        device = f"9000:{n + 1}-{9001 + n}"
        index = 1
        for kind, count in DEVICE_POINTS:
            object_type, unit = KINDS[kind]
            for _ in range(count):
                out.append((f"ses/{site}/{device}/{object_type}/{index}", kind, unit, device, True))
                index += 1
    return out


# a point's key, or a row of keys (many points at once)
Key = int | npt.NDArray[np.uint64]
Uniform = Callable[[Key, npt.NDArray[np.int64], int], npt.NDArray[np.float64]]


@functools.lru_cache(maxsize=1 << 16)
def _offset_h(zone: str, hour: int) -> float:
    offset = dt.datetime.fromtimestamp(hour * 3600, ZoneInfo(zone)).utcoffset()
    return offset.total_seconds() / 3600 if offset is not None else 0.0


def utc_offsets_h(zone: str, sweeps: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """The zone's UTC offset in hours at each sweep (offsets change on whole UTC hours in
    every zone the simulator uses)."""
    hours = sweeps // SWEEPS_PER_HOUR
    unique, inverse = np.unique(hours, return_inverse=True)
    offsets = np.array([_offset_h(zone, int(h)) for h in unique], dtype=np.float64)
    found: npt.NDArray[np.float64] = offsets[inverse.reshape(hours.shape)]
    return found


def signal(
    kind: str,
    *,
    key: Key,
    sweeps: npt.NDArray[np.int64],
    local: tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.bool_]],
    load: npt.NDArray[np.float64],
    noise: npt.NDArray[np.float64],
    base: npt.NDArray[np.float64],
    uniform: Uniform,
) -> npt.NDArray[np.float64]:
    """The value of a building point at each sweep: ``local`` is (local hour, local day
    number, occupied), ``base`` the usual signal of the analog kind it resembles.

    Many points of a kind at once: ``key`` a row of keys, ``sweeps`` and ``local`` columns,
    ``load``, ``noise`` and ``base`` sweeps × points (a signal they share is a column)."""
    local_h, day, occupied = local
    weekday = ((day + 3) % 7) < 5  # 1970-01-01 was a Thursday
    days = day.astype(np.int64)
    if kind == "ahu_mode":
        warmup = weekday & (local_h >= 5.5) & (local_h < 6.5)
        mode = np.where(occupied, 2.0, np.where(warmup, 4.0, 3.0))
        return np.where(weekday, mode, 1.0)
    if kind == "occ_schedule":
        return occupied.astype(np.float64)
    if kind == "compressor":
        cycle = np.where(uniform(key, days, 6) < SHORT_CYCLE_DAYS, 2, 8)
        on_sweeps = np.round(load * cycle)
        return np.where(occupied & (sweeps % cycle < on_sweeps), 1.0, 0.0)
    if kind == "flatline_temp":
        stuck = uniform(key, days, 7) < FLATLINE_DAYS
        return np.where(stuck, 70.0 + np.round(4 * uniform(key, days, 8), 2), base)
    if kind in ("zone_temp_cov", "stale_rh"):
        return base
    raise ValueError(f"unknown building point kind {kind!r}")


def stale(key: Key, sweeps: npt.NDArray[np.int64], uniform: Uniform) -> npt.NDArray[np.bool_]:
    """Sweeps in which a ``stale_rh`` point is silent: from a random hour of a stale day to
    the end of that (UTC) day (many at once: ``key`` a row, ``sweeps`` a column)."""
    days = sweeps // (24 * SWEEPS_PER_HOUR)
    from_sweep = (uniform(key, days, 9) * 24).astype(np.int64) * SWEEPS_PER_HOUR
    silent: npt.NDArray[np.bool_] = (uniform(key, days, 10) < STALE_DAYS) & (
        sweeps % (24 * SWEEPS_PER_HOUR) >= from_sweep
    )
    return silent


def cov_reports(
    sweeps: npt.NDArray[np.int64],
    deadband: float,
    values_at: Callable[[npt.NDArray[np.int64]], npt.NDArray[np.float64]],
) -> npt.NDArray[np.bool_]:
    """Whether a change-of-value point reports in each sweep: at each whole hour, and
    where its value differs from its last report by more than ``deadband``."""
    if sweeps.size == 0:
        return np.zeros(sweeps.shape, dtype=np.bool_)
    hours = whole_hours(sweeps)
    found: npt.NDArray[np.bool_] = cov_chain(values_at(hours), deadband)[sweeps - hours[0]]
    return found


def whole_hours(sweeps: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The sweeps of every whole hour holding one of ``sweeps`` (not empty), in order."""
    lo = int(sweeps.min()) // SWEEPS_PER_HOUR * SWEEPS_PER_HOUR
    hi = (int(sweeps.max()) // SWEEPS_PER_HOUR + 1) * SWEEPS_PER_HOUR
    return np.arange(lo, hi, dtype=np.int64)


def cov_chain(
    values: npt.NDArray[np.float64], deadband: float | npt.NDArray[np.float64]
) -> npt.NDArray[np.bool_]:
    """The reports of change-of-value points over :func:`whole_hours`: ``values`` of one
    point, or sweeps × points (``deadband`` then one or a row, one per point)."""
    hours = values.reshape(-1, SWEEPS_PER_HOUR, *values.shape[1:])
    report = np.zeros(hours.shape, dtype=np.bool_)
    report[:, 0] = True
    last = hours[:, 0].copy()
    for j in range(1, SWEEPS_PER_HOUR):  # one step per sweep of the hour, every hour at once
        moved = np.abs(hours[:, j] - last) > deadband
        report[:, j] = moved
        last = np.where(moved, hours[:, j], last)
    return report.reshape(values.shape)
