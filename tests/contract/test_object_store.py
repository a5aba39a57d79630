"""Every ObjectStore adapter honours the same contract (memory, local files, S3)."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from tests.seaweedfs import SeaweedFS
from tsgate.errors import ConfigError, StorageError
from tsgate.object_store import InvalidKey, ObjectInfo, ObjectStore, open_object_store
from tsgate.object_store.local import LocalObjectStore
from tsgate.object_store.memory import MemoryObjectStore
from tsgate.object_store.s3 import S3ObjectStore

pytestmark = pytest.mark.anyio

INVALID_KEYS = ["../x", "/abs", "a//b", "a\\b", "a/../b", "", ".", "a/.", "a/", "a\x00b", "a b"]


@pytest.fixture(params=["memory", "file", pytest.param("s3", marks=pytest.mark.s3)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "file":
        return f"file://{tmp_path / 'objects'}"
    server: SeaweedFS = request.getfixturevalue("seaweedfs")
    # A fresh prefix per test keeps tests independent on the shared server.
    return server.url(f"contract-{uuid.uuid4().hex}")


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[ObjectStore]:
    opened = open_object_store(store_url)
    yield opened
    await opened.aclose()


def _names_in(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


async def _keys(store: ObjectStore, prefix: str = "") -> list[str]:
    return [info.key async for info in store.list(prefix)]


async def test_round_trip_and_miss(store: ObjectStore) -> None:
    assert isinstance(store, ObjectStore)
    assert await store.get("site/a/chunk.bin") is None
    assert await store.put("site/a/chunk.bin", b"\x00\x01payload") is True
    assert await store.get("site/a/chunk.bin") == b"\x00\x01payload"
    assert await store.get("site/a/other.bin") is None


async def test_overwrite_replaces_the_bytes(store: ObjectStore) -> None:
    await store.put("k", b"first version")
    assert await store.put("k", b"second") is True
    assert await store.get("k") == b"second"


async def test_if_absent_keeps_the_first_bytes(store: ObjectStore) -> None:
    assert await store.put("sealed/day=2025-01-01", b"first", if_absent=True) is True
    assert await store.put("sealed/day=2025-01-01", b"second", if_absent=True) is False
    assert await store.get("sealed/day=2025-01-01") == b"first"


async def test_concurrent_if_absent_puts_have_exactly_one_winner(store: ObjectStore) -> None:
    results: dict[int, bool] = {}

    async def writer(index: int) -> None:
        results[index] = await store.put("race", f"writer-{index}".encode(), if_absent=True)

    async with anyio.create_task_group() as tasks:
        for index in range(20):
            tasks.start_soon(writer, index)
    winners = [index for index, won in results.items() if won]
    assert len(winners) == 1
    assert await store.get("race") == f"writer-{winners[0]}".encode()


async def test_range_get(store: ObjectStore) -> None:
    await store.put("r", b"0123456789")
    assert await store.get_range("r", 2, 5) == b"234"
    assert await store.get_range("r", 0, 10) == b"0123456789"
    assert await store.get_range("r", 7, 100) == b"789"  # clipped to the object
    assert await store.get_range("r", 10, 20) == b""  # past the end
    assert await store.get_range("r", 4, 4) == b""
    assert await store.get_range("missing", 0, 4) is None
    assert await store.get_range("missing", 0, 0) is None
    with pytest.raises(ValueError, match="start"):
        await store.get_range("r", 5, 2)


async def test_delete_is_idempotent(store: ObjectStore) -> None:
    await store.put("gone", b"x")
    await store.delete("gone")
    assert await store.get("gone") is None
    await store.delete("gone")
    await store.delete("never/existed")


async def test_list_by_prefix_is_sorted_with_sizes(store: ObjectStore) -> None:
    for key, data in [
        ("s1/p2/d2", b"ccc"),
        ("s1/p1/d1", b"a"),
        ("s1/p10/d1", b"bb"),
        ("s2/p1/d1", b"dddd"),
        ("s1x", b"eeeee"),
    ]:
        await store.put(key, data)
    listed = [info async for info in store.list("s1/")]
    assert listed == [
        ObjectInfo("s1/p1/d1", 1),
        ObjectInfo("s1/p10/d1", 2),
        ObjectInfo("s1/p2/d2", 3),
    ]
    assert await _keys(store, "s1/p1") == ["s1/p1/d1", "s1/p10/d1"]  # a string prefix
    assert await _keys(store, "s1") == ["s1/p1/d1", "s1/p10/d1", "s1/p2/d2", "s1x"]
    assert await _keys(store) == ["s1/p1/d1", "s1/p10/d1", "s1/p2/d2", "s1x", "s2/p1/d1"]
    assert await _keys(store, "nothing/") == []


async def test_empty_object(store: ObjectStore) -> None:
    assert await store.put("empty", b"") is True
    assert await store.get("empty") == b""
    assert [info async for info in store.list("empty")] == [ObjectInfo("empty", 0)]


async def test_five_megabyte_object(store: ObjectStore) -> None:
    data = os.urandom(5 * 1024 * 1024)
    await store.put("big/object", data)
    assert await store.get("big/object") == data
    assert await store.get_range("big/object", 4_000_000, 4_000_016) == data[4_000_000:4_000_016]
    assert [info async for info in store.list("big/")] == [ObjectInfo("big/object", len(data))]


async def test_put_file_streams_a_file_larger_than_one_upload_part(store: ObjectStore) -> None:
    # 12 MiB: more than two S3 multipart parts of obstore's 5 MiB default
    data = os.urandom(12 * 1024 * 1024 + 123)
    with tempfile.TemporaryFile() as file:
        file.write(data)  # left at its end: put_file must start from the beginning
        assert await store.put_file("exports/file.bin", file) == len(data)
    assert await store.get("exports/file.bin") == data
    assert [i async for i in store.list("exports/")] == [ObjectInfo("exports/file.bin", len(data))]
    with tempfile.TemporaryFile() as smaller:
        smaller.write(b"replaced")
        assert await store.put_file("exports/file.bin", smaller) == 8
    assert await store.get("exports/file.bin") == b"replaced"


@pytest.mark.parametrize("key", INVALID_KEYS)
async def test_invalid_keys_are_rejected(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidKey):
        await store.get(key)
    with pytest.raises(InvalidKey):
        await store.get_range(key, 0, 1)
    with pytest.raises(InvalidKey):
        await store.put(key, b"x")
    with pytest.raises(InvalidKey):
        await store.delete(key)
    assert await _keys(store) == []


@pytest.mark.parametrize("prefix", ["../", "/abs", "a//", "a\\b"])
async def test_invalid_list_prefixes_are_rejected(store: ObjectStore, prefix: str) -> None:
    with pytest.raises(InvalidKey):
        await _keys(store, prefix)


def test_invalid_key_is_a_storage_error() -> None:
    assert issubclass(InvalidKey, StorageError)


async def test_file_store_never_writes_outside_its_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    outside.mkdir()
    store = open_object_store(f"file://{root}")
    for key in ["../escape", "a/../../escape", "/tmp/escape", "..", "a\\..\\escape"]:
        with pytest.raises(InvalidKey):
            await store.put(key, b"x")
    # A symlink planted inside the root must not become a way out either.
    root.mkdir(exist_ok=True)
    (root / "link").symlink_to(outside, target_is_directory=True)
    (outside / "secret").write_bytes(b"outside")
    with pytest.raises(InvalidKey):
        await store.put("link/escape", b"x")
    with pytest.raises(InvalidKey):
        await store.put("link/deeper/escape", b"x")
    with pytest.raises(InvalidKey):
        await store.get("link/secret")
    assert _names_in(outside) == ["secret"]
    assert _names_in(tmp_path) == ["outside", "root"]
    await store.aclose()


async def test_file_store_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = open_object_store(f"file://{tmp_path}")
    await store.put("a/b", b"1")
    await store.put("a/b", b"2")
    assert await store.put("a/b", b"3", if_absent=True) is False
    assert await store.put("a/c", b"4", if_absent=True) is True
    await store.put_many([("a/d", b"5"), ("a/b", b"6")], durable=False)
    (tmp_path / "a" / "e").mkdir()  # a name taken by a folder: the replace fails
    with pytest.raises(StorageError):
        await store.put("a/e", b"7")
    assert _names_in(tmp_path / "a") == ["b", "c", "d", "e"]
    assert [await store.get(k) for k in ("a/b", "a/c", "a/d")] == [b"6", b"4", b"5"]
    await store.aclose()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("memory://", MemoryObjectStore),
        ("file:///tmp/tsgate-objects-never-created", LocalObjectStore),
        ("file://./var/objects", LocalObjectStore),
        ("s3://bucket/prefix?endpoint=http://127.0.0.1:1&region=us-east-1", S3ObjectStore),
    ],
)
def test_open_object_store_picks_the_adapter_by_scheme(url: str, expected: type) -> None:
    assert type(open_object_store(url)) is expected


def test_file_urls_resolve_relative_and_absolute_roots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    relative = open_object_store("file://./var/objects")
    assert isinstance(relative, LocalObjectStore)
    assert relative.root == tmp_path.resolve() / "var" / "objects"
    absolute = open_object_store(f"file://{tmp_path}/abs")
    assert isinstance(absolute, LocalObjectStore)
    assert absolute.root == tmp_path.resolve() / "abs"


def test_unknown_scheme_names_the_supported_ones() -> None:
    with pytest.raises(ConfigError, match=r"file://.*memory://.*s3://"):
        open_object_store("gcs://bucket/prefix")


def test_s3_url_with_unknown_parameter_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="endpiont"):
        open_object_store("s3://bucket/prefix?endpiont=http://127.0.0.1:1")


@pytest.mark.s3
async def test_s3_with_a_wrong_secret_is_a_storage_error(seaweedfs: SeaweedFS) -> None:
    prefix = f"auth-{uuid.uuid4().hex}"
    good = open_object_store(seaweedfs.url(prefix))
    bad = open_object_store(seaweedfs.url(prefix, secret_access_key="not-the-secret"))
    await good.put("k", b"secret data")
    with pytest.raises(StorageError) as read_error:
        await bad.get("k")
    with pytest.raises(StorageError):
        await bad.put("k", b"overwritten")
    assert "not-the-secret" not in str(read_error.value)
    assert await good.get("k") == b"secret data"
    await good.aclose()
    await bad.aclose()


@pytest.mark.parametrize("durable", [True, False])
async def test_put_many_stores_each_object_as_put_would(store: ObjectStore, durable: bool) -> None:
    items = [(f"batch/{i % 3}/obj-{i}", bytes([i]) * (i + 1)) for i in range(10)]
    await store.put_many(items, durable=durable)
    for key, data in items:
        assert await store.get(key) == data
    await store.put_many([("batch/0/obj-0", b"new")], durable=durable)  # replaces
    assert await store.get("batch/0/obj-0") == b"new"
    await store.put_many([], durable=durable)
    assert len(await _keys(store, "batch/")) == 10
    with pytest.raises(InvalidKey):
        await store.put_many([("ok/key", b"x"), ("../escape", b"x")])


async def test_file_store_batches_stay_inside_the_root_and_survive_removed_dirs(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    outside.mkdir()
    store = open_object_store(f"file://{root}")
    await store.put_many([("a/b/c", b"1")], durable=False)
    # the folder vanishes behind the store's back (an operator's cleanup): still written
    for path in sorted((root / "a").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (root / "a").rmdir()
    assert await store.get("a/b/c") is None
    await store.put_many([("a/b/c", b"2")], durable=False)
    assert await store.get("a/b/c") == b"2"
    (root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(InvalidKey):
        await store.put_many([("link/escape", b"x")], durable=False)
    assert _names_in(outside) == []
    assert sorted(p.name for p in (root / "a" / "b").iterdir()) == ["c"]  # no temporaries
    await store.aclose()


async def test_file_store_follows_links_that_stay_inside_and_refuses_files_as_dirs(
    tmp_path: Path,
) -> None:
    root = tmp_path / "root"
    store = open_object_store(f"file://{root}")
    await store.put("real/a", b"1")
    (root / "alias").symlink_to(root / "real", target_is_directory=True)
    assert await store.get("alias/a") == b"1"
    await store.put("alias/deeper/b", b"2")
    assert (root / "real" / "deeper" / "b").read_bytes() == b"2"
    (root / "dangling").symlink_to(root / "nowhere", target_is_directory=True)
    assert await store.get("dangling/a") is None
    (root / "afile").write_bytes(b"x")
    assert await store.get("afile/c") is None
    with pytest.raises(StorageError):
        await store.put("afile/c", b"3")
    with pytest.raises(StorageError):
        await store.put_many([("dangling/c", b"3")], durable=False)
    assert (root / "afile").read_bytes() == b"x" and not (root / "nowhere").exists()
    await store.aclose()
