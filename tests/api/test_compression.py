"""``TSGATE_COMPRESS_MIN_BYTES``: API bodies below it go uncompressed, above it compressed."""

from __future__ import annotations

import dataclasses

import pytest
import zstandard

from tests.asgi import api_client
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator

pytestmark = pytest.mark.anyio
TOKEN = {"Authorization": "Bearer alice", "Accept-Encoding": "zstd"}
SITES = "/api/sites?per_page=2"  # a body under the default threshold


async def _sites(settings: Settings) -> tuple[str | None, bytes, int]:
    async with api_client(settings, create_simulator(seed=1)) as api:
        async with api.stream("GET", SITES, headers=TOKEN) as answer:
            raw = b"".join([chunk async for chunk in answer.aiter_raw()])
        plain = await api.get(SITES, headers={**TOKEN, "Accept-Encoding": "identity"})
    assert answer.status_code == 200 and plain.status_code == 200
    return answer.headers.get("content-encoding"), raw, len(plain.content)


async def test_the_threshold_is_the_setting(settings: Settings) -> None:
    encoding, raw, size = await _sites(dataclasses.replace(settings, compress_min_bytes=0))
    assert encoding == "zstd" and zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    assert size < 1024  # the default threshold would not have compressed it

    encoding, raw, size = await _sites(dataclasses.replace(settings, compress_min_bytes=size + 1))
    assert encoding is None and len(raw) == size

    encoding, _, _ = await _sites(dataclasses.replace(settings, compress_min_bytes=size))
    assert encoding == "zstd"  # at the threshold: compressed


async def test_the_variable_sets_the_threshold(settings: Settings) -> None:
    stores = {
        "TSGATE_DATABASE_URL": settings.database_url,
        "TSGATE_OBJECTS_URL": settings.objects_url,
    }
    encoding, _, size = await _sites(
        Settings.from_env({**stores, "TSGATE_COMPRESS_MIN_BYTES": "0"})
    )
    assert encoding == "zstd" and size < 1024
    encoding, _, _ = await _sites(Settings.from_env(stores))
    assert encoding is None  # the default threshold leaves it as it is
