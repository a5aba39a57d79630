"""The simulated fleet's metadata in the ACE API's shapes: clients, sites, points,
gateways, DER events, agent configs, Hawke configs, VOLTTRON agents and packages, pcaps.

Every object is built from the campus (``campus.py``) and the seed, never stored, so
the same seed answers the same objects. Shapes follow the platform's Swagger models
as Flask-RESTX marshals them: every declared field present, ``null`` when unset, and
nothing undeclared.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from tsgate.upstream import campus
from tsgate.upstream.campus import SWEEP_MS, SimPoint, SimSite
from tsgate.wire.ace import format_time

CLIENT = "demo_health"
CLIENT_NICE = "Demo Health System"
_EPOCH = dt.datetime(1970, 1, 1)
_MICROSECOND = dt.timedelta(microseconds=1)
_CREATED = dt.datetime(2023, 3, 6, 14, 0, 0)  # when the campus was commissioned
_HOUR_MS = 3_600_000
_DAY_MS = 86_400_000
_AGENTS = (
    ("platform.driver", "platform_driver", "4.2.1"),
    ("ace.historian", "ace_historian", "2.7.0"),
    ("platform.hawke", "hawke_agent", "1.3.4"),
)
WEATHER_FIELDS = (
    "temp",
    "feels_like",
    "pressure",
    "humidity",
    "dew_point",
    "clouds",
    "wind_speed",
    "wind_deg",
    "wet_bulb",
)


def _iso(when: dt.datetime) -> str:
    return format_time(0, micros=(when - _EPOCH) // _MICROSECOND)


_at_ms = format_time


def _digest(*parts: object) -> bytes:
    return hashlib.sha256(repr(parts).encode()).digest()


def _uid(*parts: object) -> str:
    """A stable UUID-shaped id for an object of the fleet."""
    h = _digest(*parts)[:16].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def content_hash(blob: str, *, base64_hash: bool) -> str:
    """A config's hash as upstream shows it: hex, or base64 with ``use_base64_hash``."""
    digest = hashlib.sha256(blob.encode()).digest()
    return base64.b64encode(digest).decode() if base64_hash else digest.hex()


@dataclass(frozen=True)
class Gateway:
    name: str
    site: SimSite
    index: int
    archived: bool


class Fleet:
    """The metadata of one simulated campus; ``now_ms`` anchors what is upcoming or past."""

    def __init__(self, seed: int, sites: Sequence[SimSite]) -> None:
        self.seed = seed
        self.sites = tuple(sites)

    # ---- clients and sites ---------------------------------------------------------

    def client(self) -> dict[str, Any]:
        return {
            "id": 1,
            "name": CLIENT,
            "nice_name": CLIENT_NICE,
            "bus_contact": "facilities@demo-health.example",
            "tech_contact": "bms@demo-health.example",
            "address": "100 Health Way, Cincinnati, OH",
        }

    def site(self, site: SimSite) -> dict[str, Any]:
        return {
            "id": site.id,
            "name": site.name,
            "client": CLIENT_NICE,
            "address": None,
            "nice_name": site.nice_name,
            "ansible_user": None,
            "vtron_user": "volttron",
            "vtron_ip": f"10.40.{site.id}.10",
            "geo_location": None,
            "mqtt_prefix": site.name,
            "latitude": site.latitude,
            "longitude": site.longitude,
            "archived": False,
        }

    # ---- points --------------------------------------------------------------------

    def point(self, site: SimSite, p: SimPoint) -> dict[str, Any]:
        created = _CREATED + dt.timedelta(seconds=p.id * 7)
        updated = created + dt.timedelta(days=30 + p.key % 400, microseconds=p.key % 1_000_000)
        bacnet = _object_type(p) is not None
        kv_tags: dict[str, str] = {"device": p.device}
        if p.unit:
            kv_tags["unit"] = p.unit
        return {
            "id": p.id,
            "name": p.name,
            "client": CLIENT_NICE,
            "site": site.name,
            "kv_tags": kv_tags,
            "bacnet_data": self._bacnet(p) if bacnet else None,
            "marker_tags": marker_tags(p),
            "collect_config": None,
            "point_type": "bacnet" if bacnet else "niagara",
            "collect_enabled": p.collect,
            "collect_interval": 300,
            "updated": _iso(updated),
            "created": _iso(created),
        }

    def _bacnet(self, p: SimPoint) -> dict[str, Any]:
        device, _, index = p.name.split("/")[2:5]
        device_id = int(device.split("-")[-1])
        object_type = _object_type(p) or "analogValue"
        return {
            "device_address": f"192.168.96.{device_id % 250 + 2}",
            "device_id": device_id,
            "object_type": object_type,
            "object_index": int(index),
            "object_name": f"{_OBJECT_ABBREVIATIONS[object_type]}-{index}",
            "device_name": f"Device {device}",
            "object_description": p.kind.replace("_", " "),
            "device_description": None,
            "scrape_interval": 300,
            "scrape_enabled": p.collect,
            "present_value": None,
        }

    # ---- weather -------------------------------------------------------------------

    def weather(self, site: SimSite, now_ms: int) -> dict[str, Any]:
        """Last known values of the weather points, as ``{field: {name, value, time}}``."""
        sweep = np.array([now_ms // SWEEP_MS - 1], dtype=np.int64)
        stamp = campus.sweep_times_us(site, sweep)
        when = str(np.datetime_as_string(stamp.astype("datetime64[us]"), unit="us")[0])
        by_kind = {p.kind: p for p in site.points}
        temp = float(campus.values(site, by_kind["outside_air_temp"], sweep)[0])
        rh = float(campus.values(site, by_kind["outside_rh"], sweep)[0])
        noise = campus.uniform(site.key, sweep, salt=11)[0]
        values = {
            "temp": temp,
            "humidity": rh,
            "dew_point": _dew_point_f(temp, rh),
            "wet_bulb": _wet_bulb_f(temp, rh),
            "feels_like": temp - 2.0 * noise if temp < 50 else temp + 3.0 * (rh / 100) ** 2,
            "pressure": 1013.0 + 12.0 * (noise - 0.5),
            "clouds": 100.0 * noise,
            "wind_speed": 2.0 + 10.0 * noise,
            "wind_deg": 360.0 * campus.uniform(site.key, sweep, salt=12)[0],
        }
        return {
            key: {
                "name": f"weather/{site.name}/{key}",
                "value": repr(round(values[key], 2)),
                "time": when,
            }
            for key in WEATHER_FIELDS
        }

    # ---- gateways ------------------------------------------------------------------

    @cached_property
    def gateways(self) -> tuple[Gateway, ...]:
        out = [Gateway(f"gw-{s.name.replace('_', '-')}-1", s, 1, False) for s in self.sites]
        # a retired gateway, listed only with show_archived
        out.append(Gateway(f"gw-{self.sites[0].name.replace('_', '-')}-0", self.sites[0], 0, True))
        return tuple(out)

    def gateway(self, gw: Gateway) -> dict[str, Any]:
        h = _digest(self.seed, "gw", gw.name)
        mac = ":".join(f"{b:02x}" for b in h[:6])
        return {
            "name": gw.name,
            "site": gw.site.name,
            "client": CLIENT_NICE,
            "hw_type": "ace-edge-2",
            "software_type": "volttron",
            "primary_mac": mac,
            "vpn_ip": f"10.200.{gw.site.id}.{10 + gw.index}",
            "device_token": None,
            "interfaces": {"eth0": {"mac": mac, "ip": f"192.168.96.{4 + gw.index}"}},
            "deploy_config": {"bacnet_interface": "eth0", "timezone": "UTC"},
            "device_token_expires": _iso(dt.datetime(2027, 1, 1)),
            "archived": gw.archived,
            "updated": _iso(_CREATED + dt.timedelta(days=200 + gw.site.id, hours=gw.index)),
        }

    def agent_configs(self, gw: Gateway, *, base64_hash: bool) -> list[dict[str, Any]]:
        out = []
        for n, (identity, package, _) in enumerate(_AGENTS):
            for revision in (1, 2):
                blob = f'{{"agent": "{identity}", "gateway": "{gw.name}", "revision": {revision}}}'
                out.append(
                    {
                        "id": _uid(self.seed, "config", gw.name, identity, revision),
                        "agent_identity": identity,
                        "config_name": "config" if n else f"{package}.config",
                        "config_hash": content_hash(blob, base64_hash=base64_hash),
                        "blob": blob,
                        "active": revision == 2,
                        "updated": _iso(_CREATED + dt.timedelta(days=10 * revision + n)),
                        "created": _iso(_CREATED + dt.timedelta(days=10 * revision)),
                    }
                )
        return out

    def hawke_history(
        self, gw: Gateway, agent_id: str, *, base64_hash: bool
    ) -> list[dict[str, Any]]:
        """Every configuration pushed to one Hawke agent, newest first."""
        out = []
        for version in (3, 2, 1):
            blob = f"hawke:{gw.name}:{agent_id}:v{version}"
            out.append(
                {
                    "content_hash": content_hash(blob, base64_hash=base64_hash),
                    "content_blob": base64.b64encode(blob.encode()).decode(),
                    "updated": _iso(_CREATED + dt.timedelta(days=30 * version, hours=1)),
                    "created": _iso(_CREATED + dt.timedelta(days=30 * version)),
                    "hawke_identity": agent_id,
                }
            )
        return out

    def hawke_agents(self, gw: Gateway) -> tuple[str, ...]:
        return (f"hawke.{gw.site.name}.bacnet", f"hawke.{gw.site.name}.modbus")

    def volttron_agents(self, gw: Gateway) -> list[dict[str, Any]]:
        return [
            {
                "id": _uid(self.seed, "agent", gw.name, identity),
                "identity": identity,
                "package_name": package,
                "revision": revision,
                "tag": "stable",
                "active": True,
                "package_id": _uid(self.seed, "package", package),
                "updated": _iso(_CREATED + dt.timedelta(days=40 + n)),
                "created": _iso(_CREATED + dt.timedelta(days=n)),
            }
            for n, (identity, package, revision) in enumerate(_AGENTS)
        ]

    def packages(self) -> list[dict[str, Any]]:
        return [
            {
                "id": _uid(self.seed, "package", package),
                "package_name": package,
                "object_hash": hashlib.sha256(self.package_file(package)).hexdigest(),
                "object_path": f"volttron/{CLIENT}/{package}-{revision}.tar.gz",
                "description": f"{package} {revision}",
                "created": _iso(_CREATED + dt.timedelta(days=n)),
            }
            for n, (_, package, revision) in enumerate(_AGENTS)
        ]

    def package_file(self, package: str) -> bytes:
        return f"{package}: a simulated VOLTTRON agent package\n".encode() * 8

    def pcap_names(self, gw: Gateway, start_ms: int, end_ms: int) -> list[str]:
        """One capture per 6 hours of the gateway's life within ``[start, end)``."""
        step = 6 * _HOUR_MS
        first = -(-start_ms // step) * step
        return [
            f"{gw.name}_{_at_ms(t)[:19].replace(':', '').replace('-', '')}.pcap"
            for t in range(first, end_ms, step)
        ][:10_000]

    def pcap_file(self, name: str) -> bytes:
        # a pcap global header (little-endian, Ethernet) and no packets
        return bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000")

    # ---- DER events ----------------------------------------------------------------

    def der_events(self, now_ms: int, *, past: bool, group: str | None) -> list[dict[str, Any]]:
        """Daily demand-response events from a day before ``now`` to three days after:
        active and upcoming ones, and with ``past`` those that ended in the last 24 h."""
        out = []
        today = now_ms // _DAY_MS * _DAY_MS
        for day in range(-1, 4):
            start = today + day * _DAY_MS + 18 * _HOUR_MS
            for name, hours in (("peak-shave", 3), ("dr-curtail", 1)):
                end = start + hours * _HOUR_MS
                ended_recently = now_ms - _DAY_MS <= end < now_ms
                if end < now_ms and not (past and ended_recently):
                    continue
                if group is not None and group != name:
                    continue
                out.append(self._der_event(start, end, name))
        return out

    def _der_event(self, start_ms: int, end_ms: int, group: str) -> dict[str, Any]:
        return {
            "id": _uid(self.seed, "der", group, start_ms),
            "timezone": "America/New_York",
            "event_start": _at_ms(start_ms),
            "event_end": _at_ms(end_ms),
            "event_type": "demand_response",
            "group_name": group,
            "client": CLIENT,
            "created_by_user": "operator@demo-health.example",
            "cancelled": False,
            "title": f"{group} {_at_ms(start_ms)[:10]}",
            "description": "Utility demand-response window",
            "updated": _at_ms(start_ms - 2 * _DAY_MS + 60_000),
            "created": _at_ms(start_ms - 2 * _DAY_MS),
        }


_OBJECT_ABBREVIATIONS = {
    "analogValue": "AV",
    "analogInput": "AI",
    "binaryValue": "BV",
    "binaryOutput": "BO",
    "multiStateValue": "MSV",
}


def _object_type(p: SimPoint) -> str | None:
    """The BACnet object type in a BACnet point's name (``…/binaryOutput/3``), if any."""
    parts = p.name.split("/")
    return parts[3] if len(parts) == 5 and parts[3] in _OBJECT_ABBREVIATIONS else None


def marker_tags(p: SimPoint) -> list[str]:
    tags = {"point", p.kind.replace("_", "-")}
    if p.kind in (
        "zone_temp",
        "zone_setpoint",
        "discharge_temp",
        "supply_temp",
        "return_temp",
        "outside_air_temp",
        "chw_temp",
        "zone_temp_cov",
        "flatline_temp",
    ):
        tags.add("temp")
    if p.kind.endswith("status") or p.kind == "occupancy":
        tags.add("binary")
    if p.kind == "occ_schedule":
        tags |= {"schedule", "occupancy"}
    if p.device.startswith("Vav"):
        tags.add("vav")
    if p.device.startswith("Ahu"):
        tags.add("ahu")
    return sorted(tags)


def _dew_point_f(temp_f: float, rh: float) -> float:
    t_c = (temp_f - 32) / 1.8
    gamma = math.log(max(rh, 1.0) / 100) + 17.62 * t_c / (243.12 + t_c)
    return (243.12 * gamma / (17.62 - gamma)) * 1.8 + 32


def _wet_bulb_f(temp_f: float, rh: float) -> float:
    # Stull (2011), good to about 1 °C for ordinary conditions
    t = (temp_f - 32) / 1.8
    wb = (
        t * math.atan(0.151977 * math.sqrt(rh + 8.313659))
        + math.atan(t + rh)
        - math.atan(rh - 1.676331)
        + 0.00391838 * rh**1.5 * math.atan(0.023101 * rh)
        - 4.686035
    )
    return float(wb * 1.8 + 32)
