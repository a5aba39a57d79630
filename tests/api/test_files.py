"""User files through the API: upload (raw and multipart), download with ranges and
ETags, listing by site and chart, deletion, and every hostile case of the brief —
disguised types, oversized and slow bodies, path tricks in names, other callers' files,
revoked tokens — over the local-file and the S3 object stores."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.asgi import api_client
from tests.seaweedfs import SeaweedFS, running_seaweedfs
from tests.unit.test_file_content import ELF_BYTES, PDF_BYTES, png_bytes
from tsgate.object_store import open_object_store
from tsgate.settings import Settings
from tsgate.upstream.simulator import Simulator, create_simulator

pytestmark = pytest.mark.anyio
NOW = 1_763_208_000_000
ALICE = {"Authorization": "Bearer alice"}
BOB = {"Authorization": "Bearer bob"}
CAROL = {"X-ACE-Token": "carol"}  # reads elm_school only
CSV_BYTES = b"time,point,value\n2025-10-01T00:00:00,a,1.5\n2025-10-01T00:05:00,a,1.75\n"


def simulator() -> Simulator:
    sites = ["demo_campus", "office_tower", "elm_school"]
    return create_simulator(
        seed=1,
        tokens={"alice": sites, "bob": sites, "carol": ["elm_school"]},
        now_ms=lambda: NOW,
    )


@pytest.fixture(scope="module")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    with running_seaweedfs(tmp_path_factory.mktemp("seaweedfs-files")) as server:
        yield server


@pytest.fixture(params=["file", pytest.param("s3", marks=pytest.mark.s3)])
def conf(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    if request.param == "file":
        return settings
    server: SeaweedFS = request.getfixturevalue("seaweedfs")
    return dataclasses.replace(settings, objects_url=server.url(f"files-{uuid.uuid4().hex}"))


@pytest.fixture
async def api(conf: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(conf, simulator(), clock_ms=lambda: NOW) as client:
        yield client


async def _upload(
    api: httpx.AsyncClient,
    data: bytes,
    name: str,
    headers: dict[str, str] = ALICE,
    **params: str,
) -> httpx.Response:
    return await api.post(
        "/api/files",
        files={"file": (name, data, "application/octet-stream")},
        params=params,
        headers=headers,
    )


async def _uploaded(api: httpx.AsyncClient, data: bytes, name: str, **params: str) -> Any:
    answer = await _upload(api, data, name, **params)
    assert answer.status_code == 201, answer.text
    return answer.json()


async def _object_keys(conf: Settings) -> list[str]:
    store = open_object_store(conf.objects_url)
    try:
        return [info.key async for info in store.list("files/")]
    finally:
        await store.aclose()


async def test_multipart_upload_round_trips_the_bytes(
    api: httpx.AsyncClient, conf: Settings
) -> None:
    plan = png_bytes(64, 48)
    body = await _uploaded(api, plan, "floor plan L2.png", site="demo_campus")
    assert body["mediaType"] == "image/png" and body["size"] == len(plan)
    assert body["sha256"] == hashlib.sha256(plan).hexdigest()
    assert body["name"] == "floor plan L2.png" and body["site"] == "demo_campus"

    got = await api.get(body["url"], headers=ALICE)
    assert got.status_code == 200 and got.content == plan
    assert got.headers["content-type"] == "image/png"
    assert got.headers["content-disposition"].startswith('attachment; filename="floor plan L2.png"')
    assert got.headers["x-content-type-options"] == "nosniff"
    assert got.headers["accept-ranges"] == "bytes"
    # the object is where tsgate put it: under files/, named by the id, not the name
    assert await _object_keys(conf) == [f"files/{body['id'][:2]}/{body['id']}"]


async def test_raw_body_upload_with_the_name_in_the_query(api: httpx.AsyncClient) -> None:
    answer = await api.post(
        "/api/files",
        content=CSV_BYTES,
        params={"name": "meters.csv", "site": "elm_school"},
        headers={**ALICE, "Content-Type": "text/csv"},
    )
    assert answer.status_code == 201, answer.text
    assert answer.headers["location"] == answer.json()["url"]
    got = await api.get(answer.json()["url"], headers=ALICE)
    assert got.content == CSV_BYTES and got.headers["content-type"].startswith("text/csv")


async def test_ranges_and_etags(api: httpx.AsyncClient) -> None:
    data = CSV_BYTES * 200
    body = await _uploaded(api, data, "big.csv")
    url = body["url"]
    whole = await api.get(url, headers=ALICE)
    etag = whole.headers["etag"]
    assert etag == f'"{hashlib.sha256(data).hexdigest()[:32]}"'

    part = await api.get(url, headers={**ALICE, "Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    assert part.headers["content-range"] == f"bytes 10-19/{len(data)}"
    tail = await api.get(url, headers={**ALICE, "Range": "bytes=-7"})
    assert tail.status_code == 206 and tail.content == data[-7:]
    several = await api.get(url, headers={**ALICE, "Range": "bytes=0-1,4-5"})
    assert several.status_code == 200 and several.content == data
    stale = await api.get(url, headers={**ALICE, "Range": "bytes=0-3", "If-Range": '"other"'})
    assert stale.status_code == 200 and stale.content == data
    past = await api.get(url, headers={**ALICE, "Range": f"bytes={len(data)}-"})
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{len(data)}"
    assert past.headers["content-type"] == "application/problem+json"

    cached = await api.get(url, headers={**ALICE, "If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b"" and cached.headers["etag"] == etag
    changed = await api.get(url, headers={**ALICE, "If-None-Match": '"nope"'})
    assert changed.status_code == 200


@pytest.mark.parametrize(
    ("data", "name", "declared", "says"),
    [
        (png_bytes(), "readings.csv", "text/csv", "'.csv' says CSV, but the bytes are PNG"),
        (ELF_BYTES, "report.pdf", "application/pdf", "not a file of the allowed kinds"),
        (ELF_BYTES, "tool", "application/octet-stream", "not a file of the allowed kinds"),
        (PDF_BYTES, "plan.png", "image/png", "'.png' says PNG, but the bytes are PDF"),
        (PDF_BYTES, "plan", "image/png", "'image/png' was declared, but the bytes are PDF"),
        (CSV_BYTES, "run.exe", "text/csv", "'.exe' is not allowed"),
        (b"<html><script>alert(1)</script>", "x.csv", "text/csv", "not a file of the allowed"),
    ],
)
async def test_disguised_types_are_refused(
    api: httpx.AsyncClient, conf: Settings, data: bytes, name: str, declared: str, says: str
) -> None:
    answer = await api.post("/api/files", files={"file": (name, data, declared)}, headers=ALICE)
    assert answer.status_code == 415, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert says in answer.json()["detail"]
    assert await _object_keys(conf) == []  # nothing kept


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("../../../etc/passwd.csv", "passwd.csv"),
        ("..\\..\\windows\\system.ini.csv", "system.ini.csv"),
        ("/var/objects/chunks/x.csv", "x.csv"),
        ("%2e%2e%2fescape.csv", "%2e%2e%2fescape.csv"),
    ],
)
async def test_path_tricks_in_names_stay_names(
    api: httpx.AsyncClient, conf: Settings, name: str, safe: str
) -> None:
    body = await _uploaded(api, CSV_BYTES, name)
    assert body["name"] == safe
    got = await api.get(body["url"], headers=ALICE)
    assert f'filename="{safe}"' in got.headers["content-disposition"]
    assert await _object_keys(conf) == [f"files/{body['id'][:2]}/{body['id']}"]


async def test_raw_header_name_tricks(api: httpx.AsyncClient) -> None:
    # control characters (a CR LF to inject a header) never get past the URL guard
    refused = await api.post(
        "/api/files",
        content=CSV_BYTES,
        params={"name": 'a";\r\nSet-Cookie: x=1.csv'},
        headers={**ALICE, "Content-Type": "text/csv"},
    )
    assert refused.status_code == 400 and refused.json()["param"] == "query"
    answer = await api.post(
        "/api/files",
        content=CSV_BYTES,
        params={"name": 'a"; Set-Cookie: x=1.csv'},
        headers={**ALICE, "Content-Type": "text/csv"},
    )
    assert answer.status_code == 201
    got = await api.get(answer.json()["url"], headers=ALICE)
    assert "set-cookie" not in got.headers
    assert answer.json()["name"] == "a'; Set-Cookie: x=1.csv"
    assert got.headers["content-disposition"].startswith(
        "attachment; filename=\"a'; Set-Cookie: x=1.csv\"; filename*=UTF-8''a%27%3B%20Set"
    )


async def test_oversized_bodies_are_refused(settings: Settings) -> None:
    conf = dataclasses.replace(settings, max_file_bytes=10_000)
    async with api_client(conf, simulator(), clock_ms=lambda: NOW) as api:
        big = CSV_BYTES * 200  # ~14 kB
        multipart = await _upload(api, big, "big.csv")
        raw = await api.post("/api/files", content=big, params={"name": "big.csv"}, headers=ALICE)

        async def streamed() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
            for _ in range(200):
                yield CSV_BYTES

        chunked = await api.post("/api/files", content=streamed(), headers=ALICE)
        fits = await _upload(api, CSV_BYTES, "small.csv")
        listed = (await api.get("/api/files", headers=ALICE)).json()
    assert [multipart.status_code, raw.status_code, chunked.status_code] == [413] * 3
    assert {a.json()["limit"] for a in (multipart, raw, chunked)} <= {
        "max_file_bytes",
        "max_body_bytes",
    }
    assert raw.json()["limit"] == "max_file_bytes"
    assert fits.status_code == 201 and listed["total"] == 1


async def test_a_slow_upload_times_out(settings: Settings) -> None:
    conf = dataclasses.replace(settings, upload_timeout_s=0.3)
    async with api_client(conf, simulator(), clock_ms=lambda: NOW) as api:

        async def trickle() -> AsyncIterator[bytes]:
            for line in CSV_BYTES.splitlines(keepends=True):
                yield line
                await asyncio.sleep(0.2)

        slow = await api.post(
            "/api/files", content=trickle(), params={"name": "s.csv"}, headers=ALICE
        )
        listed = (await api.get("/api/files", headers=ALICE)).json()
    assert slow.status_code == 408, slow.text
    assert "0.3 s" in slow.json()["detail"]
    assert listed["total"] == 0


async def test_another_callers_files_are_404(api: httpx.AsyncClient) -> None:
    private = await _uploaded(api, CSV_BYTES, "mine.csv")  # no site: Alice's alone
    shared = await _uploaded(api, CSV_BYTES, "school.csv", site="elm_school")
    tower = await _uploaded(api, CSV_BYTES, "tower.csv", site="office_tower")

    assert (await api.get(private["url"], headers=BOB)).status_code == 404
    assert (await api.get(f"{private['url']}/meta", headers=BOB)).status_code == 404
    assert (await api.delete(private["url"], headers=BOB)).status_code == 404
    # a site's file: every token that reads the site reads it, only its owner deletes it
    assert (await api.get(shared["url"], headers=CAROL)).status_code == 200
    assert (await api.delete(shared["url"], headers=CAROL)).status_code == 404
    assert (await api.get(tower["url"], headers=CAROL)).status_code == 404  # not her site
    assert (await api.get("/api/files", headers=BOB)).json()["total"] == 0
    by_site = (await api.get("/api/files", params={"site": "elm_school"}, headers=CAROL)).json()
    assert [f["id"] for f in by_site["items"]] == [shared["id"]]
    refused = await api.get("/api/files", params={"site": "office_tower"}, headers=CAROL)
    assert refused.status_code in (403, 404)
    assert (await api.get(private["url"], headers=ALICE)).status_code == 200
    unknown = await api.get("/api/files/0123456789abcdef01234567", headers=ALICE)
    assert unknown.status_code == 404 and unknown.json()["param"] == "file_id"
    junk_id = await api.get("/api/files/..%2F..%2Fsecret", headers=ALICE)
    assert junk_id.status_code == 404


async def test_junk_and_revoked_tokens(conf: Settings) -> None:
    sim = simulator()
    now = [NOW]
    async with api_client(conf, sim, clock_ms=lambda: now[0]) as api:
        junk = await _upload(api, CSV_BYTES, "x.csv", {"Authorization": "Bearer junk"})
        nobody = await api.post("/api/files", files={"file": ("x.csv", CSV_BYTES)})
        mine = await _uploaded(api, CSV_BYTES, "mine.csv")
        site = await _uploaded(api, CSV_BYTES, "site.csv", site="demo_campus")
        assert sim.tokens is not None
        del sim.tokens["alice"]  # upstream revokes the token
        now[0] += int(conf.access_ttl_s * 1000) + 1000
        after = [
            (await api.get(mine["url"], headers=ALICE)).status_code,
            (await api.get(site["url"], headers=ALICE)).status_code,
            (await api.get("/api/files", headers=ALICE)).status_code,
            (await api.delete(mine["url"], headers=ALICE)).status_code,
            (await _upload(api, CSV_BYTES, "again.csv")).status_code,
        ]
        still = await api.get(site["url"], headers=BOB)  # the site's file outlives Alice's access
    assert junk.status_code == 401 and nobody.status_code == 401
    assert after == [401] * 5
    assert still.status_code == 200


async def test_chart_attachments(api: httpx.AsyncClient, conf: Settings) -> None:
    config = {"site": "demo_campus", "points": ["ses/demo_campus/a"], "view": "line"}
    chart = await api.post("/api/charts", json={"name": "c", "config": config}, headers=ALICE)
    assert chart.status_code == 201
    chart_id = chart.json()["id"]
    report = await _uploaded(api, PDF_BYTES, "commissioning.pdf", chart=chart_id)
    assert report["chart"] == chart_id and report["site"] == "demo_campus"

    listed = await api.get("/api/files", params={"chart": chart_id}, headers=ALICE)
    assert [f["id"] for f in listed.json()["items"]] == [report["id"]]
    # an attachment is its chart owner's, not the site's
    assert (await api.get(report["url"], headers=BOB)).status_code == 404
    assert (await api.get("/api/files", params={"chart": chart_id}, headers=BOB)).status_code == 404
    site_files = await api.get("/api/files", params={"site": "demo_campus"}, headers=BOB)
    assert site_files.json()["total"] == 0
    other_site = await _upload(api, PDF_BYTES, "x.pdf", chart=chart_id, site="elm_school")
    assert other_site.status_code == 400 and other_site.json()["param"] == "site"
    no_chart = await _upload(api, PDF_BYTES, "x.pdf", chart="AAAAAAAAAAAA")
    assert no_chart.status_code == 404 and no_chart.json()["param"] == "chart"

    # the chart goes: its attachment is unreadable at once and deleted by maintenance
    assert (await api.delete(f"/api/charts/{chart_id}", headers=ALICE)).status_code == 204
    assert (await api.get(report["url"], headers=ALICE)).status_code == 404
    stats = (await api.get("/api/stats", headers=ALICE)).json()["store"]
    assert stats["files"] == 1 and stats["file_bytes"] == len(PDF_BYTES)


async def test_delete_removes_the_row_and_the_object(
    api: httpx.AsyncClient, conf: Settings
) -> None:
    body = await _uploaded(api, png_bytes(), "p.png")
    stats = (await api.get("/api/stats", headers=ALICE)).json()["store"]
    assert stats["files"] == 1 and stats["file_bytes"] == body["size"]
    metrics = (await api.get("/metrics")).text
    assert f"tsgate_store_file_bytes {float(body['size'])}" in metrics
    assert (await api.delete(body["url"], headers=ALICE)).status_code == 204
    assert (await api.get(body["url"], headers=ALICE)).status_code == 404
    assert (await api.delete(body["url"], headers=ALICE)).status_code == 404
    assert await _object_keys(conf) == []
    assert (await api.get("/api/stats", headers=ALICE)).json()["store"]["files"] == 0


async def test_quotas(settings: Settings, tmp_path: Path) -> None:
    conf = dataclasses.replace(settings, max_files_per_caller=2, max_file_bytes_per_caller=10**9)
    async with api_client(conf, simulator(), clock_ms=lambda: NOW) as api:
        codes = [(await _upload(api, CSV_BYTES, f"{i}.csv")).status_code for i in range(3)]
        third = await _upload(api, CSV_BYTES, "3.csv")
        bob = await _upload(api, CSV_BYTES, "b.csv", BOB)
    assert codes == [201, 201, 429] and bob.status_code == 201
    assert third.json()["limit"] == "max_files_per_caller"
    conf = dataclasses.replace(
        settings,
        database_url=f"sqlite:///{tmp_path}/second.db",
        objects_url=f"file://{tmp_path}/second",
        max_file_bytes_per_caller=len(CSV_BYTES) * 2,
    )
    async with api_client(conf, simulator(), clock_ms=lambda: NOW) as api:
        codes = [(await _upload(api, CSV_BYTES, f"{i}.csv")).status_code for i in range(3)]
        last = await _upload(api, CSV_BYTES, "x.csv")
    assert codes == [201, 201, 429] and last.json()["limit"] == "max_file_bytes_per_caller"


async def test_uploads_are_rate_limited(settings: Settings) -> None:
    conf = dataclasses.replace(settings, rate_limit_per_min=1, rate_limit_burst=3)
    async with api_client(conf, simulator(), clock_ms=lambda: NOW) as api:
        codes = [(await _upload(api, CSV_BYTES, "r.csv")).status_code for _ in range(5)]
        charts = await api.get("/api/charts", headers=ALICE)  # another budget
    assert codes[:2] == [201, 201] and codes[-1] == 429
    assert charts.status_code == 200


async def test_bad_requests_name_what_is_wrong(api: httpx.AsyncClient) -> None:
    no_part = await api.post(
        "/api/files", data={"site": "demo_campus"}, files={"other": b"x"}, headers=ALICE
    )
    two = await api.post(
        "/api/files",
        files=[("file", ("a.csv", CSV_BYTES)), ("file", ("b.csv", CSV_BYTES))],
        headers=ALICE,
    )
    bad_site = await _upload(api, CSV_BYTES, "a.csv", site="../etc")
    both = await api.get("/api/files", params={"site": "demo_campus", "chart": "x"}, headers=ALICE)
    assert no_part.status_code == 400 and no_part.json()["param"] == "file"
    assert two.status_code == 400
    assert bad_site.status_code == 404 and bad_site.json()["param"] == "site"
    assert both.status_code == 400
    for answer in (no_part, two, bad_site, both):
        assert answer.headers["content-type"] == "application/problem+json"


async def test_a_disconnecting_upload_leaves_nothing(settings: Settings, tmp_path: Path) -> None:
    """A real server: the client sends half its body and goes; no row, no object."""
    import socket

    from tests.asgi import live_server, sim_client
    from tsgate.app import create_app

    app = create_app(settings, upstream=sim_client(simulator()), clock_ms=lambda: NOW)
    with live_server(app) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            head = (
                "POST /api/files?name=half.csv HTTP/1.1\r\nHost: x\r\n"
                "Authorization: Bearer alice\r\nContent-Type: text/csv\r\n"
                "Content-Length: 100000\r\n\r\n"
            )
            sock.sendall(head.encode() + CSV_BYTES)
            await asyncio.sleep(0.3)
        await asyncio.sleep(0.3)
        async with httpx.AsyncClient(base_url=url) as client:
            listed = (await client.get("/api/files", headers=ALICE)).json()
            fine = await client.post(
                "/api/files", content=CSV_BYTES, params={"name": "ok.csv"}, headers=ALICE
            )
    assert listed["total"] == 0 and fine.status_code == 201
    assert await _object_keys(settings) == [f"files/{fine.json()['id'][:2]}/{fine.json()['id']}"]
