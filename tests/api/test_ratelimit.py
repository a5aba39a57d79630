"""Rate limits per caller and route class: headers, 429 problems, exemptions."""

from __future__ import annotations

import dataclasses

import pytest

from tests.asgi import api_client
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator

pytestmark = pytest.mark.anyio
A = {"Authorization": "Bearer token-a"}
B = {"X-ACE-Token": "token-b"}


@pytest.fixture
def sim() -> Simulator:
    return create_simulator(seed=1)


@pytest.fixture
def limited(settings: Settings) -> Settings:
    return dataclasses.replace(settings, rate_limit_per_min=60, rate_limit_burst=3)


async def test_burst_then_429_problem_with_retry_after(limited: Settings, sim: Simulator) -> None:
    async with api_client(limited, sim) as api:
        # upstream accepts the token: from then on it draws from its own budget
        await api.get("/api/sites", headers=A)
        answers = [await api.get("/api/sites", headers=A) for _ in range(3)]
        answers.append(await api.get("/api/sites", headers={**A, "Origin": "http://chart"}))
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers["RateLimit-Remaining"] for r in answers] == ["2", "1", "0", "0"]
    assert all(r.headers["RateLimit-Limit"] == "3" for r in answers)
    refused = answers[-1]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 429 and "60 requests per minute" in refused.json()["detail"]
    assert refused.headers["Retry-After"] == "1"  # one token per second
    assert refused.headers["RateLimit-Reset"] == "3"
    assert "RateLimit-Remaining" in refused.headers["access-control-expose-headers"]


async def test_budgets_are_per_caller_and_per_route_class(
    limited: Settings, sim: Simulator
) -> None:
    async with api_client(limited, sim) as api:
        # a token draws from its address's budget until upstream has accepted it
        first = await api.get("/api/sites", headers=A)
        assert first.headers["RateLimit-Remaining"] == "2"
        for _ in range(3):
            assert (await api.get("/api/sites", headers=A)).status_code == 200
        assert (await api.get("/api/sites", headers=A)).status_code == 429
        assert (await api.get("/api/sites", headers=B)).status_code == 200
        # the same token as Bearer or X-ACE-Token is one caller
        assert (await api.get("/api/sites", headers={"X-ACE-Token": "token-a"})).status_code == 429
        other_class = await api.get("/api/jobs/none", headers=A)
        assert other_class.headers["RateLimit-Remaining"] == "2"
        # anonymous callers are counted by address: A's and B's first requests took two
        anonymous = [await api.get("/api/sites") for _ in range(3)]
        assert [r.status_code for r in anonymous] == [401, 429, 429]


async def test_health_is_never_limited(limited: Settings, sim: Simulator) -> None:
    async with api_client(limited, sim) as api:
        answers = [await api.get("/api/health") for _ in range(6)]
    assert all(r.status_code == 200 for r in answers)
    assert all("RateLimit-Limit" not in r.headers for r in answers)


async def test_zero_disables_limits(settings: Settings, sim: Simulator) -> None:
    off = dataclasses.replace(settings, rate_limit_per_min=0, rate_limit_burst=1)
    async with api_client(off, sim) as api:
        answers = [await api.get("/api/sites", headers=A) for _ in range(3)]
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert "RateLimit-Limit" not in answers[0].headers


async def test_limits_are_on_by_default(settings: Settings, sim: Simulator) -> None:
    async with api_client(settings, sim) as api:
        answer = await api.get("/api/sites", headers=A)
    assert answer.headers["RateLimit-Limit"] == "100"
    assert answer.headers["RateLimit-Remaining"] == "99"


async def test_cache_down_lets_requests_through(limited: Settings, sim: Simulator) -> None:
    down = dataclasses.replace(limited, cache_url="redis://127.0.0.1:1/0")
    async with api_client(down, sim) as api:
        answers = [await api.get("/api/sites", headers=A) for _ in range(5)]
    assert all(r.status_code == 200 for r in answers)


def test_limit_settings_from_env() -> None:
    env = {"TSGATE_RATE_LIMIT_PER_MIN": "0", "TSGATE_RATE_LIMIT_BURST": "7"}
    s = Settings.from_env(env)
    assert (s.rate_limit_per_min, s.rate_limit_burst) == (0, 7)
