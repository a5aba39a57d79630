"""The rate limit charges upstream work, not requests: cached answers cost (almost)
nothing, while a caller that makes tsgate hammer upstream is still limited."""

from __future__ import annotations

import pytest

from tests.asgi import api_client
from tsgate.api.ratelimit import REQUEST_COST
from tsgate.cache.bucket import take_token
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": "Bearer t"}
DAY = {"start_time": "2025-10-01T00:00:00", "end_time": "2025-10-02T00:00:00"}


def test_forced_takes_go_into_bounded_debt() -> None:
    tokens, bucket = take_token(3.0, 0.0, 0.0, 1.0, 3, cost=10.0, force=True)
    assert bucket.allowed and tokens == -3.0  # at most a burst deep
    tokens, bucket = take_token(tokens, 0.0, 2.0, 1.0, 3, cost=0.01)
    assert not bucket.allowed and bucket.retry_after_s == pytest.approx(1.01)
    tokens, bucket = take_token(tokens, 2.0, 3.5, 1.0, 3, cost=0.01)
    assert bucket.allowed and tokens == pytest.approx(0.49)


async def test_cached_reads_cost_almost_nothing_and_upstream_work_is_charged(
    settings: Settings,
) -> None:
    sim = create_simulator(seed=1, now_ms=lambda: 1_759_400_000_000)
    params = {**DAY, "page_size": "1000", "raw_data": "true"}
    url = "/api/sites/elm_school/timeseries/paginated"
    async with api_client(settings, sim) as api:  # default limits: 600/min, burst 100
        first = await api.get(url, params=params, headers=AUTH)  # fetched from upstream
        left = float(first.headers["RateLimit-Remaining"])
        warm = [await api.get(url, params=params, headers=AUTH) for _ in range(300)]
        assert all(r.status_code == 200 for r in warm)
        # 300 cached answers in a row cost about 3 tokens, whatever the refill
        assert int(warm[-1].headers["RateLimit-Remaining"]) >= left - 300 * REQUEST_COST - 1
        # a caller whose every request reaches upstream is limited like a direct client
        passed = [await api.get("/api/sites/", headers=AUTH) for _ in range(150)]
    refused = [r for r in passed if r.status_code == 429]
    assert refused and refused[0].headers["content-type"] == "application/problem+json"
    assert "upstream request" in refused[0].json()["detail"]


async def test_callers_without_a_token_pay_a_whole_token(settings: Settings) -> None:
    sim = create_simulator(seed=1)
    async with api_client(settings, sim) as api:
        answers = [await api.get("/api/sites/") for _ in range(3)]  # 401s: no upstream work
    assert [r.headers["RateLimit-Remaining"] for r in answers] == ["99", "98", "97"]
