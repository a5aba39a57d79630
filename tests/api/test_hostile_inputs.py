"""Inputs a fuzzer or an attacker sends: each gets a 4xx problem naming what is wrong
(or a 503 with Retry-After for upstream trouble), never a 500 or a misleading 503."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from tests.api.test_jobs_api import body as job_body
from tests.asgi import api_client
from tests.conftest import postgres_schema
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator

pytestmark = pytest.mark.anyio
AUTH = {"Authorization": "Bearer t"}
ADMIN = {"X-Admin-Key": "k"}
NESTED = b'{"a":' * 5_000 + b"1" + b"}" * 5_000


def _problem(response: httpx.Response, status: int, param: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    if param is not None:
        assert body["param"] == param, body
    return body


@pytest.fixture
def sim() -> Simulator:
    return create_simulator(seed=3)


@pytest.fixture
async def api(settings: Settings, sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    conf = dataclasses.replace(settings, admin_key="k", inline_worker=False)
    async with api_client(conf, sim) as client:
        yield client


def points(sim: Simulator, n: int, site: int = 2) -> list[str]:
    return [p.name for p in sim.sites[site].collecting[:n]]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/jobs", NESTED),
        ("/api/charts", NESTED),
        ("/api/cache/invalidate", NESTED),
        ("/api/jobs", b'{"points": ' + b"[" * 40 + b"]" * 40 + b"}"),
        ("/api/charts", b'{"config": ' + b"[" * 40 + b"]" * 40 + b"}"),
    ],
)
async def test_deeply_nested_bodies_are_a_400(
    api: httpx.AsyncClient, path: str, body: bytes
) -> None:
    answer = await api.post(path, content=body, headers={**AUTH, **ADMIN})
    assert "nested deeper" in _problem(answer, 400, "body")["detail"]


async def test_deeply_nested_get_timeseries_body_is_a_400(api: httpx.AsyncClient) -> None:
    answer = await api.post(
        "/api/points/get_timeseries?start_time=2025-10-01&end_time=2025-10-02",
        content=NESTED,
        headers=AUTH,
    )
    _problem(answer, 400, "body")


@pytest.mark.parametrize(
    "path", ["/api/sites", "/api/sites/elm_school/points", "/api/sites/elm_school"]
)
async def test_head_on_pass_through_routes(api: httpx.AsyncClient, path: str) -> None:
    answer = await api.head(path, headers=AUTH)
    got = await api.get(path, headers=AUTH)
    assert answer.status_code == got.status_code == 200
    assert answer.content == b""


@pytest.mark.parametrize("fmt", [5, [], {}, True])
async def test_a_job_format_that_is_no_string_is_a_400(api: httpx.AsyncClient, fmt: Any) -> None:
    _problem(await api.post("/api/jobs", json=job_body(format=fmt), headers=AUTH), 400, "format")


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com:99999/hook",
        "http://" + "a" * 70_000 + ".example/hook",
        "http://[::127.0.0.1]/hook",
        "http://[64:ff9b::7f00:1]/hook",
        "http://[2002:7f00:1::]/hook",
    ],
)
async def test_hostile_notify_urls_are_a_400(api: httpx.AsyncClient, url: str) -> None:
    answer = await api.post("/api/jobs", json=job_body(notify_url=url), headers=AUTH)
    _problem(answer, 400, "notify_url")


@pytest.mark.parametrize(
    ("changes", "status", "param", "limit"),
    [
        ({"start": -1180591620717411303424}, 400, "start", None),
        ({"end": 2**70}, 400, "end", None),
        ({"start": -1}, 413, None, "max_range_days"),  # a 56-year export
        (
            {"start": "0001-01-01T00:00:00", "end": "9999-01-01T00:00:00"},
            413,
            None,
            "max_range_days",
        ),
        ({"max_points": 10**30}, 400, "max_points", None),
    ],
)
async def test_job_ranges_are_bounded_like_the_chart_api(
    api: httpx.AsyncClient,
    changes: dict[str, Any],
    status: int,
    param: str | None,
    limit: str | None,
) -> None:
    answer = await api.post("/api/jobs", json=job_body(**changes), headers=AUTH)
    body = _problem(answer, status, param)
    if limit is not None:
        assert body["limit"] == limit
    listed = await api.get("/api/jobs", headers={**AUTH, "Accept": "application/x-msgpack"})
    assert listed.status_code == 200 and msgspec.msgpack.decode(listed.content)["total"] == 0


async def test_job_limits_are_the_chart_apis(api: httpx.AsyncClient, sim: Simulator) -> None:
    many = points(sim, 501, site=0)
    too_many = await api.post(
        "/api/jobs", json=job_body(site="demo_campus", points=many), headers=AUTH
    )
    chart = await api.get(
        "/api/timeseries",
        params={"site": "demo_campus", "points": ",".join(many), "start": "2025-10-01"}
        | {"end": "2025-10-02"},
        headers=AUTH,
    )
    assert _problem(too_many, 413)["limit"] == _problem(chart, 413)["limit"]
    assert too_many.json()["detail"] == chart.json()["detail"]
    # a raw query job carries what a chart answer would: the same sample limit
    raw = job_body(kind="query", points=points(sim, 60), start="2024-01-01", end="2025-06-01")
    assert _problem(await api.post("/api/jobs", json=raw, headers=AUTH), 413)["limit"] == (
        "max_inline_samples"
    )


async def test_a_search_with_hundreds_of_tags_is_a_400(api: httpx.AsyncClient) -> None:
    tags = ",".join(f"t{i}" for i in range(600))
    answer = await api.get(
        "/api/points/search", params={"site": "elm_school", "tags": tags}, headers=AUTH
    )
    _problem(answer, 400, "tags")


async def test_drop_in_reads_have_the_chart_apis_sample_budget(
    api: httpx.AsyncClient, sim: Simulator
) -> None:
    names = points(sim, 300, site=0)
    huge = await api.post(
        "/api/points/get_timeseries?start_time=2025-01-01&end_time=2025-03-01",
        json={"points": names},
        headers=AUTH,
    )
    assert _problem(huge, 413)["limit"] == "max_inline_samples"
    cold = await api.post(
        "/api/points/get_timeseries?start_time=2025-01-01&end_time=2025-01-20",
        json={"points": names},
        headers=AUTH,
    )
    assert _problem(cold, 413)["limit"] == "inline_fetch_samples"
    assert sim.stats.by_route["get_timeseries"] == 0  # refused before fetching


async def test_upstream_retry_after_reaches_the_caller(settings: Settings, sim: Simulator) -> None:
    sim.faults.fail_next["429"] = 10
    sim.faults.retry_after_s = 60
    async with api_client(settings, sim) as api:
        answer = await api.get(
            "/api/timeseries",
            params={"site": "elm_school", "points": points(sim, 1)[0]}
            | {"start": "2025-10-01", "end": "2025-10-02"},
            headers=AUTH,
        )
    body = _problem(answer, 503)
    assert answer.headers["Retry-After"] == "60" and "429" in body["detail"]
    assert sim.stats.by_route["point_timeseries"] == 1  # it did not wait 60 s inline


@pytest.fixture(params=["sqlite", "postgres"])
def db_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    base = Settings(objects_url=f"file://{tmp_path}/objects", inline_worker=False)
    if request.param == "sqlite":
        yield dataclasses.replace(base, database_url=f"sqlite:///{tmp_path}/t.db")
        return
    with postgres_schema() as url:
        yield dataclasses.replace(base, database_url=url)


async def test_nul_bytes_are_bad_input_on_every_database(
    db_settings: Settings, sim: Simulator
) -> None:
    async with api_client(db_settings, sim) as api:
        answers = [
            await api.get("/api/jobs/abc%00def", headers=AUTH),
            await api.get("/api/charts/abc%00def", headers=AUTH),
            await api.get(
                "/api/timeseries?site=elm_school&points=a%00b&start=2025-10-01&end=2025-10-02",
                headers=AUTH,
            ),
            await api.get("/api/points/search?site=elm%00school", headers=AUTH),
            await api.post(
                "/api/charts",
                json={"name": "a\u0000b", "config": {"site": "elm_school", "points": ["p"]}},
                headers=AUTH,
            ),
            await api.post(
                "/api/jobs", json=job_body(points=["ses/elm_school/a\u0000b"]), headers=AUTH
            ),
            await api.post(
                "/api/points/get_timeseries?start_time=2025-10-01&end_time=2025-10-02",
                json={"points": ["ses/elm_school/a\u0000b"]},
                headers=AUTH,
            ),
        ]
    assert [a.status_code for a in answers] == [400, 400, 400, 400, 400, 400, 400]
    assert all(a.headers["content-type"] == "application/problem+json" for a in answers)
