"""Hostile PromQL and parameters: whatever arrives, the answer is Prometheus's envelope
with a 2xx/4xx status, never a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.asgi import api_client
from tests.clock import NOW, Clock
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator

pytestmark = pytest.mark.anyio
API = "/prometheus/api/v1"
AUTH = {"Authorization": "Bearer t"}
SMALL = 'ace{site="elm_school",tags=~".*,ahu,.*"}'

FRAGMENTS = st.sampled_from(
    [SMALL, "1", "-2.5", "0", "NaN", "Inf", "time()", "(", ")", "[5m]", "[1h]", "[0s]",
     " offset 1w", " offset -1h", " @ 0", " @ start()", " @ 1e12", "+", "-", "*", "/", "%",
     "^", " > ", " == bool ", " and ", "sum", "avg", "by (site)", "without (point)",
     "avg_over_time(", "last_over_time(", "count_over_time(", "rate(", "abs(", "clamp(",
     "scalar(", "vector(", ",", "{", "}", '"', "=~", "!~", "ace", "{__name__=~\".+\"}",
     "[5m:1m]", "topk(2,", "\x00", "é", "1e309"]
)  # fmt: skip


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def api(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    folder = tmp_path_factory.mktemp("fuzz")
    conf = Settings(
        database_url=f"sqlite:///{folder}/tsgate.db",
        objects_url=f"file://{folder}/objects",
        max_points_per_request=20,
        max_inline_samples=50_000,
        rate_limit_per_min=0,
    )
    sim = create_simulator(seed=5, now_ms=lambda: NOW)
    async with api_client(conf, sim, clock_ms=Clock(NOW)) as client:
        yield client


def _check(r: httpx.Response) -> None:
    assert r.status_code in (200, 400, 404, 422, 503), r.text
    body = r.json()
    assert body["status"] in ("success", "error")
    if body["status"] == "error":
        assert body["errorType"] and body["error"]


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(parts=st.lists(FRAGMENTS, max_size=8))
async def test_random_queries_never_fail_the_server(
    api: httpx.AsyncClient, parts: list[str]
) -> None:
    query = "".join(parts)
    t = NOW / 1000 - 30 * 86_400
    _check(await api.get(f"{API}/query", params={"query": query, "time": t}, headers=AUTH))
    r = await api.get(
        f"{API}/query_range",
        params={"query": query, "start": t - 86_400, "end": t, "step": 3600},
        headers=AUTH,
    )
    _check(r)


@settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    name=st.sampled_from(["time", "start", "end", "step", "match[]", "limit"]),
    value=st.text(max_size=20) | st.sampled_from(["-1", "1e400", "nan", "inf", "0", "9" * 40]),
)
async def test_random_parameters_never_fail_the_server(
    api: httpx.AsyncClient, name: str, value: str
) -> None:
    base = {
        "query": SMALL,
        "start": "1759300000",
        "end": "1759400000",
        "step": "3600",
        "match[]": SMALL,
    }
    params = {**base, name: value}
    for path in ("query", "query_range", "series", "labels", "label/site/values"):
        _check(await api.get(f"{API}/{path}", params=params, headers=AUTH))
