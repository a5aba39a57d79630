"""Data versions in the object store: what one server process bumps, another reads."""

from __future__ import annotations

import asyncio
import time

import pytest

from tsgate.cache.memory import MemoryCache
from tsgate.object_store.memory import MemoryObjectStore
from tsgate.series.reader import Generations
from tsgate.series.versions import StoredGenerations

pytestmark = pytest.mark.anyio


async def test_a_bump_in_one_process_is_read_by_another() -> None:
    objects = MemoryObjectStore()
    one, other = StoredGenerations(objects), StoredGenerations(objects)
    assert await one.get("elm_school") == await other.get("elm_school") == "0"
    await one.bump("elm_school")
    moved = await one.get("elm_school")
    assert moved != "0"
    assert await other.get("elm_school") == "0"  # its one-second copy
    other._local.clear()  # the second has passed
    assert await other.get("elm_school") == moved
    assert await other.get("oak_hospital") == "0"  # per site


async def test_damaged_or_unreadable_versions_still_name_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    objects = MemoryObjectStore()
    versions = StoredGenerations(objects)
    await objects.put(StoredGenerations._key("s"), b"\xff\xfe junk")
    assert await versions.get("s")  # a version, not an error
    versions._local["s"] = (time.monotonic() - 5, "old")
    assert await versions.get("s") != "old"


class CountingStore(MemoryObjectStore):
    """An object store whose reads take a while (what they read, they read at once) and
    are counted."""

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.release = asyncio.Event()

    async def get(self, key: str) -> bytes | None:
        self.reads += 1
        value = await super().get(key)
        await self.release.wait()
        return value


async def _published(version: bytes) -> tuple[CountingStore, StoredGenerations]:
    """Versions over a counting store in which site ``s`` has ``version`` published."""
    objects = CountingStore()
    await objects.put(StoredGenerations._key("s"), version)
    return objects, StoredGenerations(objects)


async def test_many_requests_finding_the_copy_expired_make_one_read() -> None:
    objects, versions = await _published(b"v1")
    waiting = [asyncio.create_task(versions.get("s")) for _ in range(500)]
    await asyncio.sleep(0.01)
    assert objects.reads == 1  # one read, however many asked
    objects.release.set()
    assert set(await asyncio.gather(*waiting)) == {"v1"}
    assert await versions.get("s") == "v1" and objects.reads == 1  # the copy, fresh
    versions._local["s"] = (time.monotonic() - 5, "v1")  # a second later
    await objects.put(StoredGenerations._key("s"), b"v2")
    assert await versions.get("s") == "v2" and objects.reads == 2


async def test_a_caller_that_leaves_does_not_cancel_the_read_the_others_await() -> None:
    objects, versions = await _published(b"v1")
    first = asyncio.create_task(versions.get("s"))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(versions.get("s"))
    await asyncio.sleep(0.01)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    objects.release.set()
    assert await second == "v1"
    assert objects.reads == 1


async def test_a_bump_during_a_read_wins_over_what_the_read_brings_back() -> None:
    objects, versions = await _published(b"old")
    reading = asyncio.create_task(versions.get("s"))
    await asyncio.sleep(0.01)
    await versions.bump("s")  # while the read is in flight
    moved = await versions.get("s")
    objects.release.set()
    assert moved not in {"old", "0"}
    assert await reading == moved  # the bump's value, not the older one the read brought
    assert await versions.get("s") == moved
    assert (await objects.get(StoredGenerations._key("s"))) == moved.encode()


async def test_the_cache_backed_versions_refresh_once_too() -> None:
    cache = MemoryCache()
    reads = 0
    real_get = cache.get

    async def counted(key: str) -> bytes | None:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.01)
        return await real_get(key)

    cache.get = counted  # type: ignore[method-assign]
    one, other = Generations(cache), Generations(cache)
    await one.bump("s")
    got = await asyncio.gather(*(other.get("s") for _ in range(200)))
    assert set(got) == {await one.get("s")} and reads == 1
