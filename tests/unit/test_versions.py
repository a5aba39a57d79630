"""Data versions in the object store: what one server process bumps, another reads."""

from __future__ import annotations

import time

import pytest

from tsgate.object_store.memory import MemoryObjectStore
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
