"""A deterministic simulated campus: sites, points and their signals as functions of time.

Every value is computed from (seed, point, sweep index), never stored, so any range,
past or present, gives the same samples for the same seed, and overlapping ranges agree.
When a sample is *visible* upstream is a separate question, answered in
``upstream.visibility``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from tsgate.upstream import building

SWEEP_MS = 300_000  # every collecting point reports once per 5-minute sweep
_U64 = np.uint64


@dataclass(frozen=True)
class SimPoint:
    id: int
    name: str
    site: str
    kind: str
    unit: str
    collect: bool
    device: str
    bias: float  # per-point offset so neighbouring zones differ
    key: int  # 63-bit hash driving this point's noise and gaps


@dataclass(frozen=True)
class SimSite:
    id: int
    name: str
    nice_name: str
    campus: str
    latitude: float
    longitude: float
    utc_offset_h: int
    points: tuple[SimPoint, ...] = field(repr=False)
    key: int = 0
    zone: str | None = None  # an IANA zone (its offsets drive the clock), else utc_offset_h

    @cached_property
    def collecting(self) -> tuple[SimPoint, ...]:
        return tuple(p for p in self.points if p.collect)

    @cached_property
    def by_name(self) -> dict[str, SimPoint]:
        return {p.name: p for p in self.points}


# kind -> (unit, Niagara property name)
_VAV_PROPS = (
    ("zone_temp", "°F", "ZoneTemp"),
    ("zone_setpoint", "°F", "ZoneTempSp"),
    ("damper", "%", "DamperPos"),
    ("airflow", "cfm", "Airflow"),
    ("discharge_temp", "°F", "DischargeAirTemp"),
    ("fan_status", "", "FanStatus"),
    ("occupancy", "", "OccCmd"),
    ("co2", "ppm", "ZoneCO2"),
)
_AHU_PROPS = (
    ("supply_temp", "°F", "SaTemp"),
    ("return_temp", "°F", "RaTemp"),
    ("fan_speed", "%", "SfSpeed"),
    ("fan_status", "", "SfStatus"),
    ("static_pressure", "inH2O", "DuctStaticPress"),
    ("power", "kW", "SfPower"),
)
_BACNET_KINDS = (
    ("outside_air_temp", "°F"),
    ("outside_rh", "%RH"),
    ("power", "kW"),
    ("chw_temp", "°F"),
    ("zone_temp", "°F"),
)


def _hash(*parts: object) -> int:
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & 0x7FFF_FFFF_FFFF_FFFF


@dataclass(frozen=True)
class _SiteSpec:
    name: str
    nice: str
    campus: str
    vavs: int
    ahus: int
    bacnet: int
    lat: float
    lon: float
    utc_offset_h: int
    zone: str | None = None  # sites in a zone also carry building devices
    buildings: int = 0


_SITES = (
    _SiteSpec(
        "demo_campus", "Mercy General Hospital", "MercyCampus", 330, 12, 240, 39.1, -84.5, -5
    ),
    _SiteSpec("office_tower", "Harbor Office Tower", "HarborTower", 48, 4, 40, 41.9, -87.6, -6),
    _SiteSpec("elm_school", "Elm Street School", "ElmSchool", 14, 2, 16, 42.4, -71.1, -5),
    # daylight saving, and a half-hour offset: local clocks, with building devices
    _SiteSpec(
        "rhine_lab",
        "Rhine Research Lab",
        "RhineLab",
        6,
        1,
        10,
        50.94,
        6.96,
        1,
        "Europe/Berlin",
        2,
    ),
    _SiteSpec(
        "pune_clinic",
        "Pune Clinic",
        "PuneClinic",
        4,
        1,
        10,
        18.52,
        73.86,
        5,
        "Asia/Kolkata",
        2,
    ),
)
# only when asked (benchmarks): a site of about 3,500 collecting points
LARGE_SITE = _SiteSpec(
    "large_campus", "Lakeside Medical Center", "LakesideCampus", 545, 20, 400, 41.5, -81.7, -5
)


def build_campus(seed: int, *, large_site: bool = False) -> tuple[SimSite, ...]:
    """The sites of the simulated campus for ``seed`` (thousands of points on the first),
    and with ``large_site`` one more of about 3,500 collecting points, last."""
    sites = []
    next_id = 1
    specs = (*_SITES, LARGE_SITE) if large_site else _SITES
    for site_id, spec in enumerate(specs, start=1):
        points = _site_points(seed, spec, next_id)
        next_id += len(points)
        sites.append(
            SimSite(
                id=site_id,
                name=spec.name,
                nice_name=spec.nice,
                campus=spec.campus,
                latitude=spec.lat,
                longitude=spec.lon,
                utc_offset_h=spec.utc_offset_h,
                points=tuple(points),
                key=_hash(seed, "site", spec.name),
                zone=spec.zone,
            )
        )
    return tuple(sites)


def _site_points(seed: int, spec: _SiteSpec, first_id: int) -> list[SimPoint]:
    rng = np.random.default_rng(_hash(seed, spec.name))
    base = f"ses/{spec.name}/192.168.96.4/n4/{spec.campus}/C.Drivers.BacnetNetwork"
    # (name, kind, unit, device, collect) for every configured point of the site
    specs: list[tuple[str, str, str, str, bool]] = []
    for n in range(spec.vavs):
        device = f"Vav{701 + n}"
        for kind, unit, prop in _VAV_PROPS:
            # about two thirds of configured points collect, as on real sites
            specs.append(
                (f"{base}.{device}.points.{prop}", kind, unit, device, bool(rng.random() < 0.7))
            )
    for n in range(spec.ahus):
        device = f"Ahu{n + 1}"
        specs.extend(
            (f"{base}.{device}.points.{prop}", kind, unit, device, True)
            for kind, unit, prop in _AHU_PROPS
        )
    for n in range(spec.bacnet):
        kind, unit = _BACNET_KINDS[n % len(_BACNET_KINDS)]
        device = f"8000:{33 + n // 64}-{8033 + n // 64}"
        name = f"ses/{spec.name}/{device}/analogValue/{100 + n}"
        specs.append((name, kind, unit, device, bool(rng.random() < 0.8)))
    specs.extend(building.device_points(spec.name, spec.buildings))
    biases = rng.normal(0.0, 1.0, size=len(specs))
    return [
        SimPoint(
            id=first_id + i,
            name=name,
            site=spec.name,
            kind=kind,
            unit=unit,
            collect=collect,
            device=device,
            bias=float(biases[i]),
            key=_hash(seed, name),
        )
        for i, (name, kind, unit, device, collect) in enumerate(specs)
    ]


# ---- sweeps, gaps and signals -----------------------------------------------------


def _mix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """splitmix64 finaliser: a counter-based hash, vectorised (wrapping uint64 arithmetic)."""
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def uniform(
    key: building.Key, idx: npt.NDArray[np.int64], salt: int = 0
) -> npt.NDArray[np.float64]:
    """Deterministic uniform [0, 1) noise for a key and sweep indexes.

    ``key`` may be a vector of keys (see :func:`keys`), broadcast against ``idx``: with the
    sweeps as a column, the noise of many points at once, sweeps × points.
    """
    salted: np.unsignedinteger[Any] | npt.NDArray[np.unsignedinteger[Any]]
    if isinstance(key, int):
        salted = _U64((key + salt * 7919) & 0xFFFF_FFFF_FFFF_FFFF)
    else:  # uint64 arithmetic wraps as the mask does
        salted = key + _U64(salt * 7919)
    mixed = _mix(idx.astype(np.uint64) * _U64(0x9E3779B97F4A7C15) + salted)
    return (mixed >> _U64(11)).astype(np.float64) / float(1 << 53)


def keys(points: Sequence[SimPoint]) -> npt.NDArray[np.uint64]:
    """The points' keys as a vector, for :func:`uniform`."""
    return np.fromiter((p.key for p in points), dtype=np.uint64, count=len(points))


def sweep_times_us(site: SimSite, sweeps: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Each sweep's shared timestamp in µs: 30–50 s into its 5-minute slot, sub-ms jitter."""
    jitter = uniform(site.key, sweeps, salt=1)
    return sweeps * (SWEEP_MS * 1000) + 30_000_000 + (jitter * 20_000_000).astype(np.int64)


def present(site: SimSite, point: SimPoint, sweeps: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Whether the point reported in each sweep: rare per-point lost hours and site outages.

    A point with collection disabled never reports (on every read path alike).
    """
    if not point.collect:
        return np.zeros(sweeps.shape, dtype=np.bool_)
    lost_hour = uniform(point.key, sweeps // 12, salt=2) < 0.003
    reported = ~(lost_hour | site_outage(site, sweeps))
    if point.kind in building.DEADBANDS:
        deadband = building.DEADBANDS[point.kind]
        reported &= building.cov_reports(sweeps, deadband, lambda s: values(site, point, s))
    elif point.kind == "stale_rh":
        reported &= ~building.stale(point.key, sweeps, uniform)
    return reported


def site_outage(site: SimSite, sweeps: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """The sweeps in the site's own outages: half an hour on about one day in fifty."""
    days = sweeps // 288
    outage_day = uniform(site.key, days, salt=3) < 0.02
    slot = (uniform(site.key, days, salt=4) * 280).astype(np.int64)
    in_outage: npt.NDArray[np.bool_] = (
        outage_day & (sweeps % 288 >= slot) & (sweeps % 288 < slot + 6)
    )
    return in_outage


@dataclass(frozen=True)
class _Context:
    """Shared drivers of every signal at a set of sweeps."""

    occupied: npt.NDArray[np.bool_]
    occ: npt.NDArray[np.float64]
    diurnal: npt.NDArray[np.float64]
    oat: npt.NDArray[np.float64]
    load: npt.NDArray[np.float64]
    noise: npt.NDArray[np.float64]
    bias: float | npt.NDArray[np.float64]


Signal = Callable[[_Context], npt.NDArray[np.float64]]

_SIGNALS: dict[str, Signal] = {
    "zone_temp": lambda c: (
        np.where(c.occupied, 72.0, 66.5) + 0.8 * c.diurnal + 0.6 * c.bias + 1.2 * c.noise
    ),
    "zone_setpoint": lambda c: np.where(c.occupied, 72.0, 65.0) + np.round(c.bias),
    "damper": lambda c: np.clip(100 * c.load + 5 * c.bias, 0, 100),
    "airflow": lambda c: np.clip((150 + 40 * c.bias) + 650 * c.load + 25 * c.noise, 0, None),
    "discharge_temp": lambda c: 55 + 8 * (1 - c.occ) + 1.5 * c.noise + 0.3 * c.bias,
    "supply_temp": lambda c: 55 + 8 * (1 - c.occ) + 1.5 * c.noise + 0.3 * c.bias,
    "return_temp": lambda c: 71 + 2 * c.diurnal + c.noise,
    "fan_status": lambda c: np.where(c.occupied | (c.noise > 0.46), 1.0, 0.0),
    "occupancy": lambda c: np.where(c.occupied | (c.noise > 0.46), 1.0, 0.0),
    "fan_speed": lambda c: np.where(c.occupied, 45 + 40 * c.load, 0.0),
    "static_pressure": lambda c: np.where(c.occupied, 1.5 + 0.2 * c.noise, 0.1 + 0.05 * c.noise),
    "co2": lambda c: 420 + 500 * c.occ * c.load + 30 * c.noise,
    "power": lambda c: np.clip(
        20 + 60 * c.load * (0.5 + c.occ) + 5 * c.noise + 3 * c.bias, 0, None
    ),
    "outside_air_temp": lambda c: c.oat + 2 * c.noise,
    "outside_rh": lambda c: np.clip(55 - 15 * c.diurnal + 10 * c.noise, 5, 100),
    "chw_temp": lambda c: 44 + 2 * c.load + 0.5 * c.noise,
}


@dataclass(frozen=True)
class Drivers:
    """What every point's signal at a set of sweeps shares: the site's clock and weather.

    1-D over the sweeps; :meth:`as_column` makes each a column for sweeps × points blocks.
    """

    local_h: npt.NDArray[np.float64]
    day: npt.NDArray[np.float64]  # the local day number
    occupied: npt.NDArray[np.bool_]
    occ: npt.NDArray[np.float64]
    diurnal: npt.NDArray[np.float64]
    oat: npt.NDArray[np.float64]
    base_load: npt.NDArray[np.float64]  # the load before each point's noise is added

    def as_column(self) -> Drivers:
        return Drivers(*(getattr(self, f.name)[:, None] for f in fields(self)))


def drivers(site: SimSite, sweeps: npt.NDArray[np.int64]) -> Drivers:
    """The site's drivers at each sweep (the same for every point of the site)."""
    t_s = sweeps.astype(np.float64) * (SWEEP_MS / 1000)
    offset_h = site.utc_offset_h if site.zone is None else building.utc_offsets_h(site.zone, sweeps)
    local_h = ((t_s / 3600 + offset_h) % 24 + 24) % 24
    day = np.floor((t_s / 3600 + offset_h) / 24)
    weekday = ((day + 3) % 7) < 5  # 1970-01-01 was a Thursday
    occupied = weekday & (local_h >= 6.5) & (local_h < 19)
    season = np.sin(2 * np.pi * (t_s / 86400 % 365.25 - 110) / 365.25)
    diurnal = np.sin(2 * np.pi * (local_h - 9) / 24)
    oat = 55 + 22 * season + 9 * diurnal
    occ = occupied.astype(np.float64)
    base_load = 0.35 + 0.02 * (oat - 55) + 0.3 * occ
    return Drivers(local_h, day, occupied, occ, diurnal, oat, base_load)


def values(
    site: SimSite, point: SimPoint, sweeps: npt.NDArray[np.int64]
) -> npt.NDArray[np.float64]:
    """The point's signal at each sweep, rounded as a controller reports it."""
    d = drivers(site, sweeps)
    noise = uniform(point.key, sweeps) - 0.5
    return signal(point.kind, d, key=point.key, sweeps=sweeps, noise=noise, bias=point.bias)


def signal(
    kind: str,
    d: Drivers,
    *,
    key: building.Key,
    sweeps: npt.NDArray[np.int64],
    noise: npt.NDArray[np.float64],
    bias: float | npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """The rounded signal of points of ``kind``: of one point (1-D over the sweeps), or of
    many (``d`` and ``sweeps`` as columns, ``key`` and ``bias`` rows, ``noise`` sweeps ×
    points; a signal the points share comes back as a column)."""
    load = np.clip(d.base_load + 0.3 * noise, 0, 1)
    ctx = _Context(d.occupied, d.occ, d.diurnal, d.oat, load, noise, bias)
    if kind in building.KINDS:
        base = _SIGNALS[building.RESEMBLES.get(kind, "zone_temp")](ctx)
        found = building.signal(
            kind,
            key=key,
            sweeps=sweeps,
            local=(d.local_h, d.day, d.occupied),
            load=load,
            noise=noise,
            base=base,
            uniform=uniform,
        )
    else:
        found = _SIGNALS[kind](ctx)
    rounded: npt.NDArray[np.float64] = np.round(found, 2)
    return rounded
