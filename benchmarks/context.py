"""What every scenario shares: the two servers, an HTTP client, the points and the clock."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from benchmarks.plan import SITE, Plan

MS_PER_DAY = 86_400_000
TOKEN = "bench"


@dataclass(frozen=True)
class SimCounts:
    requests: int
    samples: int
    data_requests: int = 0  # of ``requests``, those for samples (the rest: catalog, access)

    def __sub__(self, other: SimCounts) -> SimCounts:
        return SimCounts(
            self.requests - other.requests,
            self.samples - other.samples,
            self.data_requests - other.data_requests,
        )


@dataclass
class Bench:
    plan: Plan
    gateway_url: str  # http://127.0.0.1:P (paths start with /api)
    sim_url: str  # http://127.0.0.1:P (paths start with /api)
    http: httpx.AsyncClient
    collecting: list[str]  # collecting points of SITE, in the simulator's order

    @property
    def sim_api(self) -> str:
        return self.sim_url + "/api"

    def pick(self, count: int) -> list[str]:
        """``count`` collecting points spread evenly over the site (different kinds)."""
        if count >= len(self.collecting):
            return list(self.collecting)
        step = len(self.collecting) / count
        return [self.collecting[int(i * step)] for i in range(count)]

    def window(self, days: int) -> tuple[int, int]:
        """``days`` whole UTC days ending ``plan.end_days_ago`` days before today."""
        today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        end = today - dt.timedelta(days=self.plan.end_days_ago)
        end_ms = int(end.timestamp() * 1000)
        return end_ms - days * MS_PER_DAY, end_ms

    async def sim_counts(self) -> SimCounts:
        resp = await self.http.get(self.sim_url + "/_sim/stats", headers={"Accept": "*/*"})
        resp.raise_for_status()
        body = resp.json()
        return SimCounts(int(body["requests"]), int(body["samples"]), int(body["data_requests"]))


def iso(ms: int) -> str:
    """Epoch ms to ISO 8601 without zone (UTC, as ACE writes it)."""
    stamp = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + (f".{ms % 1000:03d}" if ms % 1000 else "")


def chart_params(
    names: Sequence[str], start_ms: int, end_ms: int, **extra: str | int
) -> dict[str, str | int]:
    return {
        "site": SITE,
        "points": ",".join(names),
        "start": iso(start_ms),
        "end": iso(end_ms),
        **extra,
    }


async def collecting_points(http: httpx.AsyncClient, sim_url: str, site: str = SITE) -> list[str]:
    resp = await http.get(
        f"{sim_url}/api/sites/{site}/configured_points",
        params={"page": 1, "per_page": 5000},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    resp.raise_for_status()
    return [p["name"] for p in resp.json()["items"] if p.get("collect_enabled")]


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:,.0f} ms" if ms >= 100 else f"{ms:.1f} ms"


def fmt_s(seconds: float) -> str:
    return f"{seconds:,.1f} s" if seconds >= 1 else fmt_ms(seconds)


def fmt_mib(value: int | None) -> str:
    return "–" if value is None else f"{value / 2**20:,.0f} MiB"
