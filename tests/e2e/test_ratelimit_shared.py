"""Two server processes on one Redis draw from one rate-limit budget per caller."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.asgi import free_port
from tests.conftest import service_url
from tsgate.cache import open_cache

pytestmark = [pytest.mark.redis, pytest.mark.slow]
TOKEN = {"Authorization": "Bearer shared-caller"}


@contextlib.contextmanager
def serve(env: dict[str, str], workdir: Path) -> Iterator[str]:
    """``python -m tsgate serve`` as its own process; yields its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tsgate", "serve", "--port", str(port), "--workers", "1"],
        env={
            **os.environ,
            **env,
            "TSGATE_DATABASE_URL": f"sqlite:///{workdir}/t.db",
            "TSGATE_OBJECTS_URL": f"file://{workdir}/objects",
        },
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/api/health", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


async def _purge(cache_url: str) -> None:
    cache = open_cache(cache_url)
    await cache.delete_prefix("")
    await cache.aclose()


@pytest.fixture
def cache_url() -> Iterator[str]:
    url = f"{service_url('redis')}?prefix=tsgate-test-{uuid.uuid4().hex}:"
    yield url
    asyncio.run(_purge(url))


def test_two_servers_share_one_budget(tmp_path: Path, cache_url: str) -> None:
    env = {
        "TSGATE_CACHE_URL": cache_url,
        "TSGATE_RATE_LIMIT_PER_MIN": "30",
        "TSGATE_RATE_LIMIT_BURST": "30",
        "TSGATE_TOKEN_SALT": "one-deployment",
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with (
        serve(env, tmp_path / "a") as a,
        serve(env, tmp_path / "b") as b,
        httpx.Client(timeout=10) as client,
    ):
        # warm both (health is unlimited) so the 40 requests below take well under the
        # two seconds in which the bucket would refill one token
        for url in (a, b):
            client.get(f"{url}/api/health")
            # each process learns that upstream accepts the token (until then the caller
            # is limited by its address): from here on the token has its own budget
            client.get(f"{url}/api/sites", headers=TOKEN)
        started = time.monotonic()
        answers = [client.get(f"{(a, b)[i % 2]}/api/sites", headers=TOKEN) for i in range(40)]
        elapsed_s = time.monotonic() - started
    statuses = [r.status_code for r in answers]
    assert elapsed_s < 2.0
    assert statuses.count(200) == 30 and statuses.count(429) == 10
    assert statuses[:30] == [200] * 30  # served by both processes, counted once
    for refused in answers[30:]:
        assert int(refused.headers["Retry-After"]) >= 1
        assert refused.headers["RateLimit-Remaining"] == "0"
    assert [r.headers["RateLimit-Remaining"] for r in answers[:30]] == [
        str(n) for n in range(29, -1, -1)
    ]
