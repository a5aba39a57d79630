"""Request limits: body size, points per request and range length, as 413 problems."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import msgspec
import pytest

from tests.asgi import api_client
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator

pytestmark = pytest.mark.anyio
AUTH = {"X-ACE-Token": "t"}
DAY = {"start_time": "2025-10-01T00:00:00", "end_time": "2025-10-02T00:00:00"}


@pytest.fixture
def sim() -> Simulator:
    return create_simulator(seed=1)


@pytest.fixture
def tight(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings, max_body_bytes=2000, max_points_per_request=2, max_range_days=3
    )


def names_of(sim: Simulator, n: int) -> list[str]:
    return [p.name for p in sim.sites[2].collecting[:n]]


async def test_body_over_the_limit_is_413_naming_it(tight: Settings, sim: Simulator) -> None:
    big = msgspec.json.encode({"points": ["x" * 100] * 30})
    async with api_client(tight, sim) as api:
        declared = await api.post(
            "/api/points/get_timeseries", params=DAY, content=big, headers=AUTH
        )

        async def stream() -> AsyncIterator[bytes]:
            for start in range(0, len(big), 500):
                yield big[start : start + 500]

        streamed = await api.post(
            "/api/points/get_timeseries", params=DAY, content=stream(), headers=AUTH
        )
    for answer in (declared, streamed):
        assert answer.status_code == 413
        assert answer.headers["content-type"] == "application/problem+json"
        assert (
            answer.json()["limit"] == "max_body_bytes" and "2000 bytes" in answer.json()["detail"]
        )
    assert "content-length" not in streamed.request.headers


async def test_points_over_the_limit(tight: Settings, sim: Simulator) -> None:
    names = names_of(sim, 3)
    async with api_client(tight, sim) as api:
        by_body = await api.post(
            "/api/points/get_timeseries", params=DAY, json={"points": names}, headers=AUTH
        )
        by_query = await api.get(
            "/api/sites/elm_school/timeseries/paginated",
            params={**DAY, "page_size": 1000, "point_names": ",".join(names)},
            headers=AUTH,
        )
        within = await api.post(
            "/api/points/get_timeseries", params=DAY, json={"points": names[:2]}, headers=AUTH
        )
    assert by_body.status_code == by_query.status_code == 413
    assert by_body.json()["limit"] == by_query.json()["limit"] == "max_points_per_request"
    assert by_body.json()["detail"] == "points: 3 points; at most 2 per request"
    assert by_query.json()["detail"].startswith("point_names: 3 points")
    assert within.status_code == 200


async def test_range_over_the_limit(tight: Settings, sim: Simulator) -> None:
    name = names_of(sim, 1)[0]
    long = {"start_time": "2025-10-01T00:00:00", "end_time": "2025-10-05T00:00:00"}
    async with api_client(tight, sim) as api:
        answer = await api.post(
            "/api/points/get_timeseries", params=long, json={"points": [name]}, headers=AUTH
        )
    assert answer.status_code == 413 and answer.json()["limit"] == "max_range_days"
    assert "4.0 days; at most 3 days" in answer.json()["detail"]


async def test_chart_queries_parsed_once_still_meet_each_servers_limits(
    settings: Settings, tight: Settings, sim: Simulator
) -> None:
    """The chart API remembers parsed query strings; the limits and bad input still hold."""
    names = names_of(sim, 3)
    query = {
        "site": "elm_school",
        "points": ",".join(names),
        "start": "2025-10-01T00:00:00Z",
        "end": "2025-10-01T06:00:00Z",
    }
    async with api_client(settings, sim) as api:
        roomy = [await api.get("/api/timeseries", params=query, headers=AUTH) for _ in range(2)]
        bad = [
            await api.get("/api/timeseries", params={**query, "layout": "rows"}, headers=AUTH)
            for _ in range(2)
        ]
    async with api_client(tight, sim) as api:
        narrow = await api.get("/api/timeseries", params=query, headers=AUTH)
    assert [a.status_code for a in roomy] == [200, 200]
    assert [len(a.json()["series"]) for a in roomy] == [3, 3]
    assert [a.status_code for a in bad] == [400, 400]
    assert all(a.json()["param"] == "layout" for a in bad)
    assert narrow.status_code == 413 and narrow.json()["limit"] == "max_points_per_request"


def test_limit_settings_from_env() -> None:
    s = Settings.from_env(
        {
            "TSGATE_MAX_POINTS_PER_REQUEST": "50",
            "TSGATE_MAX_RANGE_DAYS": "30",
            "TSGATE_MAX_BODY_BYTES": "4096",
        }
    )
    assert (s.max_points_per_request, s.max_range_days, s.max_body_bytes) == (50, 30, 4096)
    defaults = Settings.from_env({})
    assert (defaults.max_points_per_request, defaults.max_range_days) == (500, 1100)
