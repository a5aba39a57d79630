"""The chart page's files: versioned URLs cached for a year, compressed by Accept-Encoding.

Every body is decoded here with the codec libraries and compared with the file on disk.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import AsyncIterator
from pathlib import Path

import brotli
import httpx
import pytest
import zstandard

from tests.asgi import api_client
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator

pytestmark = pytest.mark.anyio
STATIC = Path(__file__).resolve().parents[2] / "src" / "tsgate" / "ui" / "static"
DECODE = {
    "zstd": lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b),
    "br": brotli.decompress,
    "gzip": gzip.decompress,
}


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(settings, create_simulator(seed=1)) as client:
        yield client


async def _raw(api: httpx.AsyncClient, path: str, **headers: str) -> tuple[httpx.Response, bytes]:
    """The response and its body exactly as sent (httpx would decode it)."""
    async with api.stream("GET", path, headers=headers) as response:
        body = b"".join([chunk async for chunk in response.aiter_raw()])
    return response, body


async def _page_links(api: httpx.AsyncClient) -> list[str]:
    page, body = await _raw(api, "/", **{"accept-encoding": "identity"})
    assert page.status_code == 200 and page.headers["cache-control"] == "no-cache"
    return re.findall(r'(?:src|href)="(/ui/[^"]+)"', body.decode())


async def test_the_page_names_its_files_by_versioned_urls_cached_for_a_year(
    api: httpx.AsyncClient,
) -> None:
    links = await _page_links(api)
    assert {link.rsplit("/", 2)[-2] + "/" + link.rsplit("/", 1)[-1] for link in links} == {
        "css/app.css",
        "vendor/msgpack.min.js",
        "js/main.js",
    }
    versions = {link.split("/")[3] for link in links}
    assert len(versions) == 1 and all(link.startswith("/ui/v/") for link in links)
    for link in links:
        answer, body = await _raw(api, link, **{"accept-encoding": "identity"})
        assert answer.status_code == 200, link
        assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert "content-encoding" not in answer.headers
        assert body == (STATIC / link.split("/", 4)[4]).read_bytes()
    # the modules import each other relatively: the same prefix serves every one of them
    (version,) = versions
    chart, _ = await _raw(api, f"/ui/v/{version}/vendor/echarts.esm.min.js")
    assert chart.status_code == 200 and "javascript" in chart.headers["content-type"]


@pytest.mark.parametrize("encoding", ["zstd", "br", "gzip"])
async def test_files_are_compressed_by_accept_encoding(
    api: httpx.AsyncClient, encoding: str
) -> None:
    (link, *_) = [x for x in await _page_links(api) if x.endswith("main.js")]
    echarts = link.replace("js/main.js", "vendor/echarts.esm.min.js")
    original = (STATIC / "vendor" / "echarts.esm.min.js").read_bytes()
    answer, body = await _raw(api, echarts, **{"accept-encoding": f"{encoding}, identity;q=0.5"})
    assert answer.headers["content-encoding"] == encoding
    assert "Accept-Encoding" in answer.headers["vary"]
    assert DECODE[encoding](body) == original
    assert len(body) < len(original) * 0.4  # 1.1 MB of JavaScript compresses ~3–4×
    # each representation has its own ETag, and a revalidation answers 304 without a body
    again, empty = await _raw(
        api, echarts, **{"accept-encoding": encoding, "if-none-match": answer.headers["etag"]}
    )
    assert again.status_code == 304 and empty == b""
    plain, _ = await _raw(api, echarts, **{"accept-encoding": "identity"})
    assert plain.headers["etag"] != answer.headers["etag"]


async def test_the_page_itself_is_compressed_and_revalidated(api: httpx.AsyncClient) -> None:
    answer, body = await _raw(api, "/", **{"accept-encoding": "gzip"})
    if len((STATIC / "index.html").read_bytes()) >= 1024:
        assert answer.headers["content-encoding"] == "gzip"
        body = gzip.decompress(body)
    assert b"/ui/v/" in body and answer.headers["cache-control"] == "no-cache"


async def test_an_old_version_is_served_but_never_as_immutable(api: httpx.AsyncClient) -> None:
    answer, body = await _raw(api, "/ui/v/000000000000/js/range.js", **{"accept-encoding": ""})
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-cache"
    assert body == (STATIC / "js" / "range.js").read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/ui/..%2F__init__.py",
        "/ui/v/abc/..%2F..%2Fapp.py",
        "/ui/js/%2e%2e/%2e%2e/assets.py",
        "/ui/js",
        "/ui/js/",
        "/ui/nope.js",
        "/ui/v/abc/",
        "/ui/%00",
    ],
)
async def test_paths_outside_the_files_are_404_problems(api: httpx.AsyncClient, path: str) -> None:
    answer = await api.get(path)
    assert answer.status_code == 404, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["title"] == "Not found"


async def test_small_files_are_not_compressed_below_the_setting(tmp_path: Path) -> None:
    conf = Settings(
        database_url=f"sqlite:///{tmp_path}/t.db",
        objects_url=f"file://{tmp_path}/objects",
        compress_min_bytes=10_000,
    )
    size = len((STATIC / "js" / "range.js").read_bytes())
    assert size < 10_000
    async with api_client(conf, create_simulator(seed=1)) as api:
        small, body = await _raw(api, "/ui/js/range.js", **{"accept-encoding": "zstd"})
        big, _ = await _raw(api, "/ui/vendor/msgpack.min.js", **{"accept-encoding": "zstd"})
    assert "content-encoding" not in small.headers and len(body) == size
    assert big.headers["content-encoding"] == "zstd"
