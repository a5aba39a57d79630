"""The drop-in ACE API: same paths, parameters and shapes; msgpack and compression."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from urllib.parse import quote

import brotli
import httpx
import msgspec
import pytest
import zstandard

from tests.asgi import api_client
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator

pytestmark = pytest.mark.anyio
DAY = {"start_time": "2025-10-01T00:00:00", "end_time": "2025-10-02T00:00:00"}
AUTH = {"Authorization": "Bearer t"}


@pytest.fixture
def sim() -> Simulator:
    return create_simulator(seed=1)


@pytest.fixture
async def api(sim: Simulator, settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings, sim) as client:
        yield client


def names_of(sim: Simulator, n: int) -> list[str]:
    return [p.name for p in sim.sites[2].collecting[:n]]


async def test_sites_and_points_keep_upstream_shapes_with_correct_pages(
    api: httpx.AsyncClient, sim: Simulator
) -> None:
    sim.faults.wrong_pages = True  # upstream miscounts pages; we must not
    sites = (await api.get("/api/sites", headers=AUTH)).json()
    assert {"page", "pages", "per_page", "total", "items"} <= sites.keys()
    points = (
        await api.get(
            "/api/sites/demo_campus/configured_points", params={"per_page": 1000}, headers=AUTH
        )
    ).json()
    assert points["pages"] == -(-points["total"] // 1000) == 3
    site = (await api.get("/api/sites/demo_campus", headers=AUTH)).json()
    assert site["name"] == "demo_campus"


async def test_paginated_passthrough_and_msgpack_is_the_same_object(api: httpx.AsyncClient) -> None:
    params = {**DAY, "page_size": "1000"}
    as_json = await api.get(
        "/api/sites/elm_school/timeseries/paginated", params=params, headers=AUTH
    )
    as_pack = await api.get(
        "/api/sites/elm_school/timeseries/paginated",
        params=params,
        headers={**AUTH, "Accept": "application/x-msgpack"},
    )
    by_query = await api.get(
        "/api/sites/elm_school/timeseries/paginated",
        params={**params, "format": "msgpack"},
        headers=AUTH,
    )
    assert as_pack.headers["content-type"] == "application/x-msgpack"
    decoded = msgspec.msgpack.decode(as_pack.content)
    assert decoded == as_json.json() == msgspec.msgpack.decode(by_query.content)
    assert len(decoded["point_samples"]) == 1000 and decoded["has_more"] is True
    assert len(as_pack.content) < len(as_json.content)


async def test_point_names_filter_pages_with_stable_cursors(
    api: httpx.AsyncClient, sim: Simulator
) -> None:
    names = names_of(sim, 3)
    params = {**DAY, "page_size": "100", "raw_data": "true", "point_names": ",".join(names)}
    rows: list[dict[str, str]] = []
    for _ in range(100):
        body = (
            await api.get("/api/sites/elm_school/timeseries/paginated", params=params, headers=AUTH)
        ).json()
        rows.extend(body["point_samples"])
        if not body["has_more"]:
            break
        params["cursor"] = body["next_cursor"]
    assert {r["name"] for r in rows} == set(names)
    assert len(rows) == len({(r["name"], r["time"]) for r in rows}) > 800
    assert [r["time"] for r in rows] == sorted(r["time"] for r in rows)


@pytest.mark.parametrize("spelling", ["false", "False", "0", None])
async def test_raw_data_false_gives_five_minute_buckets(
    api: httpx.AsyncClient, sim: Simulator, spelling: str | None
) -> None:
    params = {**DAY, "page_size": "500", "point_names": names_of(sim, 1)[0]}
    if spelling is not None:
        params["raw_data"] = spelling
    rows = (
        await api.get("/api/sites/elm_school/timeseries/paginated", params=params, headers=AUTH)
    ).json()["point_samples"]
    assert rows and all(r["time"][14:] in {f"{m:02d}:00" for m in range(0, 60, 5)} for r in rows)


async def test_point_timeseries_with_encoded_slashes(
    api: httpx.AsyncClient, sim: Simulator
) -> None:
    name = names_of(sim, 1)[0]
    r = await api.get(f"/api/points/{quote(name, safe='')}/timeseries", params=DAY, headers=AUTH)
    assert r.status_code == 200, r.text
    rows = r.json()["point_samples"]
    assert {row["name"] for row in rows} == {name} and len(rows) > 250
    post = await api.post(
        "/api/points/get_timeseries", params=DAY, json={"points": [name]}, headers=AUTH
    )
    assert post.json()["point_samples"] == rows


async def test_both_auth_headers_and_bearer_bearer(api: httpx.AsyncClient, sim: Simulator) -> None:
    seen: list[str] = []
    for headers in (
        {"Authorization": "Bearer abc"},
        {"X-ACE-Token": "abc"},
        {"Authorization": "Bearer Bearer abc"},
    ):
        r = await api.get("/api/sites", headers=headers)
        assert r.status_code == 200
        seen.append(str(sim.stats.requests))
    missing = await api.get("/api/sites")
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"


async def test_upstream_rejecting_a_token_is_401(settings: Settings) -> None:
    sim = create_simulator(tokens={"good": ["elm_school"]})
    async with api_client(settings, sim) as api:
        r = await api.get(
            "/api/sites/elm_school/configured_points", headers={"Authorization": "Bearer bad"}
        )
        assert r.status_code == 401 and "JWT Signature Invalid" in r.json()["detail"]
        r = await api.get(
            f"/api/points/{quote(names_of(sim, 1)[0], safe='')}/timeseries",
            params=DAY,
            headers={"X-ACE-Token": "bad"},
        )
        assert r.status_code == 401
        ok = await api.get(
            "/api/sites/elm_school/configured_points", headers={"Authorization": "Bearer good"}
        )
        assert ok.status_code == 200
        denied = await api.get(
            "/api/sites/demo_campus/configured_points", headers={"Authorization": "Bearer good"}
        )
        assert denied.status_code == 403


async def test_other_paths_pass_through_with_the_token_converted(api: httpx.AsyncClient) -> None:
    r = await api.get("/api/sites/elm_school/weather", headers={"X-ACE-Token": "abc"})
    assert r.status_code == 200
    assert r.json()["weather"]["temp"]["name"] == "weather/elm_school/temp"
    packed = await api.get(
        "/api/sites/elm_school/weather", params={"format": "msgpack"}, headers=AUTH
    )
    assert msgspec.msgpack.decode(packed.content) == r.json()
    unknown = await api.get("/api/nothing/here", headers=AUTH)
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    ("encoding", "decode"),
    [
        ("zstd", lambda b: zstandard.ZstdDecompressor().decompress(b, max_output_size=1 << 26)),
        ("br", brotli.decompress),
        ("gzip", gzip.decompress),
    ],
)
async def test_compression_by_accept_encoding(
    api: httpx.AsyncClient, encoding: str, decode: object
) -> None:
    params = {**DAY, "page_size": "1000"}
    plain = await api.get(
        "/api/sites/elm_school/timeseries/paginated",
        params=params,
        headers={**AUTH, "Accept-Encoding": "identity"},
    )
    # read the raw bytes: httpx would transparently decode gzip/br/zstd
    async with api.stream(
        "GET",
        "/api/sites/elm_school/timeseries/paginated",
        params=params,
        headers={**AUTH, "Accept-Encoding": encoding},
    ) as r:
        raw = b"".join([chunk async for chunk in r.aiter_raw()])
        assert r.headers["content-encoding"] == encoding
    assert callable(decode)
    assert decode(raw) == plain.content
    assert len(raw) * 4 < len(plain.content)


async def test_cors_exposes_the_custom_headers(api: httpx.AsyncClient) -> None:
    r = await api.get("/api/sites", headers={**AUTH, "Origin": "http://dashboard.example"})
    exposed = r.headers["access-control-expose-headers"]
    for header in ("X-Cache-Status", "X-Cache-Source", "X-Data-Samples", "Server-Timing", "ETag"):
        assert header in exposed


BAD_INPUTS = [
    (
        "/api/sites/elm_school/timeseries/paginated",
        {"end_time": DAY["end_time"]},
        400,
        "start_time",
    ),
    (
        "/api/sites/elm_school/timeseries/paginated",
        {**DAY, "start_time": "soon"},
        400,
        "start_time",
    ),
    (
        "/api/sites/elm_school/timeseries/paginated",
        {"start_time": DAY["end_time"], "end_time": DAY["start_time"]},
        400,
        "end_time",
    ),
    ("/api/sites/elm_school/timeseries/paginated", {**DAY, "page_size": "7"}, 400, "page_size"),
    ("/api/sites/elm_school/timeseries/paginated", {**DAY, "cursor": "%%%"}, 400, "cursor"),
    ("/api/sites/elm_school/timeseries/paginated", {**DAY, "raw_data": "perhaps"}, 400, "raw_data"),
    ("/api/sites/elm_school/timeseries/paginated", {**DAY, "format": "xml"}, 400, "format"),
    ("/api/sites/no_such_site/timeseries/paginated", DAY, 404, "site"),
    ("/api/sites/no_such_site/configured_points", {}, 404, "site"),
    ("/api/points/x/timeseries", {"start_time": "2025-10-01"}, 400, "end_time"),
]


@pytest.mark.parametrize(("path", "params", "status", "param"), BAD_INPUTS)
async def test_bad_input_is_a_clear_problem(
    api: httpx.AsyncClient, path: str, params: dict[str, str], status: int, param: str
) -> None:
    r = await api.get(path, params=params, headers=AUTH)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["status"] == status and body["param"] == param and param in body["detail"]


@pytest.mark.parametrize(
    "body", [b"not json", b'{"points": "a"}', b'{"points": [1]}', b'{"points": [{}]}', b"{}"]
)
async def test_bad_get_timeseries_bodies(api: httpx.AsyncClient, body: bytes) -> None:
    r = await api.post("/api/points/get_timeseries", params=DAY, content=body, headers=AUTH)
    assert r.status_code == 400
    assert r.json()["param"] in {"body", "points", "points[0]"}


async def test_no_data_is_404_like_upstream(api: httpx.AsyncClient, sim: Simulator) -> None:
    future = {"start_time": "2099-01-01T00:00:00", "end_time": "2099-01-02T00:00:00"}
    r = await api.get(
        f"/api/points/{quote(names_of(sim, 1)[0], safe='')}/timeseries", params=future, headers=AUTH
    )
    assert r.status_code == 404 and r.json()["message"] == "No data for time period"


async def test_health_answers(api: httpx.AsyncClient) -> None:
    r = await api.get("/api/health")
    assert r.status_code == 200 and r.json()["status"] == "healthy"


async def test_unfiltered_pages_come_from_the_cache_and_match_upstream(
    api: httpx.AsyncClient, sim: Simulator
) -> None:
    params = {
        "start_time": "2025-10-01T00:00:00",
        "end_time": "2025-10-01T06:00:00",
        "page_size": "500",
        "raw_data": "true",
    }

    async def page_all(client: httpx.AsyncClient, url: str) -> list[dict[str, str]]:
        rows: list[dict[str, str]] = []
        query = dict(params)
        for _ in range(200):
            body = (await client.get(url, params=query, headers=AUTH)).json()
            rows.extend(body["point_samples"])
            if not body["has_more"]:
                return rows
            query["cursor"] = body["next_cursor"]
        raise AssertionError("paging did not end")

    ours = await page_all(api, "/api/sites/elm_school/timeseries/paginated")
    transport = httpx.ASGITransport(app=sim)
    async with httpx.AsyncClient(transport=transport, base_url="http://sim") as upstream:
        theirs = await page_all(upstream, "/api/sites/elm_school/timeseries/paginated")
    key = lambda r: (r["time"][:23], r["name"], float(r["value"]))  # noqa: E731 - ms precision
    assert sorted(map(key, ours)) == sorted(map(key, theirs))
    assert [r["time"] for r in ours] == sorted(r["time"] for r in ours)
    requests = sim.stats.requests
    assert await page_all(api, "/api/sites/elm_school/timeseries/paginated") == ours
    assert sim.stats.requests == requests  # the second pass is all cache
