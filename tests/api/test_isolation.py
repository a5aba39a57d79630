"""Token isolation: cached data reaches only tokens upstream lets read the site."""

from __future__ import annotations

import dataclasses

import pytest

from tests.asgi import api_client
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator

pytestmark = pytest.mark.anyio
WEEK = {"start": "2025-10-01T00:00:00", "end": "2025-10-08T00:00:00"}


async def test_a_second_token_gets_nothing_until_upstream_grants_it(settings: Settings) -> None:
    sim = create_simulator(tokens={"A": ["elm_school"], "B": ["office_tower"]})
    names = ",".join(p.name for p in sim.sites[2].collecting[:3])
    params = {"site": "elm_school", "points": names, **WEEK}
    # denials are remembered for access_deny_ttl_s; here upstream's change is seen at once
    settings = dataclasses.replace(settings, access_deny_ttl_s=0)
    async with api_client(settings, sim) as api:
        warm = await api.get(
            "/api/timeseries", params=params, headers={"Authorization": "Bearer A"}
        )
        assert warm.status_code == 200 and warm.headers["X-Cache-Status"] == "MISS"

        denied = await api.get(
            "/api/timeseries", params=params, headers={"Authorization": "Bearer B"}
        )
        assert denied.status_code == 403
        assert denied.headers["content-type"] == "application/problem+json"
        assert "series" not in denied.json() and names.split(",")[0] not in denied.text
        rejected = await api.get(
            "/api/timeseries", params=params, headers={"X-ACE-Token": "stolen"}
        )
        assert rejected.status_code == 401
        point = names.split(",")[0].replace("/", "%2F")
        acepath = await api.get(
            f"/api/points/{point}/timeseries",
            params={"start_time": WEEK["start"], "end_time": WEEK["end"]},
            headers={"Authorization": "Bearer stolen"},
        )
        assert acepath.status_code == 401

        assert sim.tokens is not None
        sim.tokens["B"] = frozenset({"office_tower", "elm_school"})  # upstream grants B the site
        samples = sim.stats.samples
        granted = await api.get(
            "/api/timeseries", params=params, headers={"Authorization": "Bearer B"}
        )
        assert granted.status_code == 200 and granted.headers["X-Cache-Status"] == "HIT"
        assert granted.json() == warm.json()
        assert sim.stats.samples == samples  # served from the cache: no new samples fetched
