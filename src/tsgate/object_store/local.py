"""Objects as files under one directory (``file://./var/objects`` or ``file:///abs/path``).

Writes go to a temporary file in the target directory and are then renamed into place,
so a reader or a crash never sees half an object. Temporary names contain ``~``, which
no valid key can, so they never collide with or show up as objects.

One difference from S3: a key cannot be both an object and a "directory" of other
keys (``a`` and ``a/b``); writing the second raises ``StorageError``.

Durability: ``put`` and ``put_file`` fsync each object before it is renamed into place.
``put_many(..., durable=False)`` (the chunk store's batches) skips the fsync: a crash can
then leave an object empty or cut short, which its checksum in the chunk index tells
apart, so the reader drops it and fetches that period again from upstream; the cache
never serves it. A directory is checked to lie inside the root (``Path.resolve``) and
created once per process, not once per object.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import secrets
import shutil
import stat
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import IO, Self, TypeVar
from urllib.parse import unquote, urlsplit

import anyio.to_thread

from tsgate.errors import ConfigError, StorageError
from tsgate.object_store.base import (
    InvalidKey,
    ObjectInfo,
    check_range,
    file_size,
    prefix_parent,
    validate_key,
    validate_prefix,
)

_T = TypeVar("_T")
# Reading a missing key can fail in all these ways once keys nest ("a" is a file, the
# caller asks for "a/b"; or "a" is a directory).
_MISS_ERRNOS = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR}
_COPY_BYTES = 1 << 20
_BATCH_THREADS = 8  # worker threads one put_many spreads its objects over
_BATCH_MIN = 64  # objects per thread at the least


class LocalObjectStore:
    """Objects as files below ``root``; blocking I/O runs in worker threads."""

    def __init__(self, root: Path) -> None:
        # Resolve once so containment checks compare real paths (symlinked roots work).
        self._root = root.expanduser().resolve()
        # directories already checked to lie inside the root and known to exist
        self._dirs: set[Path] = set()

    @classmethod
    def from_url(cls, url: str) -> Self:
        parts = urlsplit(url)
        if parts.query or parts.fragment:
            raise ConfigError(f"objects: file:// URLs take no query or fragment: {url!r}")
        path = unquote(parts.path)
        if parts.netloc in {"", "localhost"}:
            if not path:
                raise ConfigError(f"objects: {url!r} names no directory")
            return cls(Path(path))
        # file://./var/objects puts "." in the host part: a path relative to the cwd.
        return cls(Path(unquote(parts.netloc) + path))

    @property
    def root(self) -> Path:
        return self._root

    async def get(self, key: str) -> bytes | None:
        path = self._path_of(key)
        return await _run(lambda: self._read(path, 0, None))

    async def get_range(self, key: str, start: int, end: int) -> bytes | None:
        check_range(start, end)
        path = self._path_of(key)
        return await _run(lambda: self._read(path, start, end - start))

    async def put(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        path = self._path_of(key)
        return await _run(lambda: self._write(path, data, if_absent=if_absent))

    async def put_many(self, items: Sequence[tuple[str, bytes]], *, durable: bool = True) -> None:
        paths = [(self._path_of(key), data) for key, data in items]

        def write_all(part: Sequence[tuple[Path, bytes]]) -> None:
            for path, data in part:
                self._write(path, data, if_absent=False, durable=durable)

        # a few thread hops per batch, not one per object: enough to overlap the waits
        # of new directories and files, few enough to stay cheap
        step = max(_BATCH_MIN, -(-len(paths) // _BATCH_THREADS))
        parts = [paths[i : i + step] for i in range(0, len(paths), step)]
        await asyncio.gather(*(_run(functools.partial(write_all, p)) for p in parts))

    async def put_file(self, key: str, file: IO[bytes]) -> int:
        path = self._path_of(key)
        size = file_size(file)
        await _run(lambda: self._write(path, file, if_absent=False))
        return size

    async def delete(self, key: str) -> None:
        path = self._path_of(key)
        await _run(lambda: self._unlink(path))

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        validate_prefix(prefix)
        start_dir = self._root.joinpath(*prefix_parent(prefix).split("/"))
        infos = await _run(lambda: _scan(self._root, start_dir, prefix))
        for info in infos:
            yield info

    async def aclose(self) -> None:
        return None

    def _path_of(self, key: str) -> Path:
        return self._root.joinpath(*validate_key(key).split("/"))

    def _check_contained(self, path: Path) -> None:
        # Key validation already forbids "..", but a symlink inside the root could still
        # point elsewhere; never read or write through one.
        if not path.resolve().is_relative_to(self._root):
            raise InvalidKey(f"object path {path} resolves outside the store root")

    def _checked_dir(self, directory: Path, *, create: bool) -> bool:
        """Whether ``directory`` exists (made when ``create``), once checked to lie inside
        the root; the answer is remembered for directories that exist.

        Checked from the root down, each level once: below a checked directory, one that
        this call makes, or that exists and is no symlink, lies inside too (one ``lstat``
        or ``mkdir``); only a symlink has its target resolved and checked, before anything
        is made through it. Resolving every new directory's whole path cost more than
        writing the object into it."""
        if directory in self._dirs:
            return True
        if directory == self._root:
            if create:
                directory.mkdir(parents=True, exist_ok=True)
            elif not directory.is_dir():
                return False
            self._dirs.add(directory)
            return True
        parent = directory.parent
        if parent == directory or not directory.is_relative_to(self._root):
            raise InvalidKey(f"object path {directory} lies outside the store root")
        if not self._checked_dir(parent, create=create):
            return False
        mode = self._mode(directory, create=create)
        if mode is not None and stat.S_ISLNK(mode):
            self._check_contained(directory)
            mode = _followed_mode(directory)
        if mode is None or not stat.S_ISDIR(mode):
            if create:
                raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(directory))
            return False
        self._dirs.add(directory)
        return True

    def _mode(self, directory: Path, *, create: bool) -> int | None:
        """``directory``'s own mode (a symlink's, not its target's), made first when it
        is missing and ``create``; ``None`` when it is missing."""
        try:
            return os.lstat(directory).st_mode
        except FileNotFoundError:
            if not create:
                return None
        try:
            directory.mkdir()
        except FileExistsError:
            pass  # made meanwhile: looked at like any that exists
        except FileNotFoundError:  # its parent was removed behind our back: check again
            self._dirs.discard(directory.parent)
            self._checked_dir(directory.parent, create=True)
            directory.mkdir(exist_ok=True)
        return os.lstat(directory).st_mode

    def _read(self, path: Path, offset: int, length: int | None) -> bytes | None:
        try:
            if not self._checked_dir(path.parent, create=False):
                return None
            try:
                # the directory is known to be inside; the name itself must not be a link
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    raise
                self._check_contained(path)  # a symlink: allowed only if it stays inside
                fd = os.open(path, os.O_RDONLY)
            with open(fd, "rb") as file:
                if offset:
                    file.seek(offset)
                return file.read() if length is None else file.read(length)
        except OSError as exc:
            if exc.errno in _MISS_ERRNOS:
                self._dirs.discard(path.parent)  # removed behind our back: check again
                return None
            raise

    def _unlink(self, path: Path) -> None:
        # Checking the parent is enough: unlink removes a symlink itself, not its target.
        if not self._checked_dir(path.parent, create=False):
            return
        try:
            path.unlink()
        except OSError as exc:
            if exc.errno not in _MISS_ERRNOS:
                raise

    def _write(
        self, path: Path, data: bytes | IO[bytes], *, if_absent: bool, durable: bool = True
    ) -> bool:
        self._checked_dir(path.parent, create=True)
        tmp = path.with_name(f".{path.name}~{secrets.token_hex(8)}")
        try:
            tmp_file = open(tmp, "xb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            self._dirs.discard(path.parent)  # removed behind our back: check and make again
            self._checked_dir(path.parent, create=True)
            tmp_file = open(tmp, "xb")  # noqa: SIM115 - closed below
        with tmp_file:
            if isinstance(data, bytes):
                tmp_file.write(data)
            else:
                shutil.copyfileobj(data, tmp_file, _COPY_BYTES)
            tmp_file.flush()
            if durable:
                # results and exports are not fetched again: they must not survive as zeros
                os.fsync(tmp_file.fileno())
        moved = False  # a replace moves the temporary name: nothing left to remove
        try:
            if if_absent:
                # link() fails when the name exists, so of racing writers exactly one wins.
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    return False
            else:
                os.replace(tmp, path)
                moved = True
        finally:
            if not moved:
                tmp.unlink(missing_ok=True)
        return True


def _scan(root: Path, start_dir: Path, prefix: str) -> list[ObjectInfo]:
    infos: list[ObjectInfo] = []
    for dirpath, _dirnames, filenames in os.walk(start_dir, onerror=_raise_unless_missing):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        for name in filenames:
            key = name if rel_dir == "." else f"{rel_dir}/{name}"
            if not key.startswith(prefix) or not _is_key(key):
                continue  # outside the prefix, or a temporary file
            try:
                size = os.stat(os.path.join(dirpath, name)).st_size
            except FileNotFoundError:
                continue  # deleted while we walked
            infos.append(ObjectInfo(key, size))
    infos.sort(key=lambda info: info.key)
    return infos


def _raise_unless_missing(exc: OSError) -> None:
    # The prefix's directory may not exist (nothing stored there yet): an empty listing.
    if exc.errno not in _MISS_ERRNOS:
        raise exc


def _is_key(key: str) -> bool:
    try:
        validate_key(key)
    except InvalidKey:
        return False
    return True


async def _run(func: Callable[[], _T]) -> _T:
    """Run blocking file I/O in a worker thread; OS errors become ``StorageError``."""
    try:
        return await anyio.to_thread.run_sync(func)
    except OSError as exc:
        raise StorageError(f"local object store: {exc.strerror or exc}") from exc


def _followed_mode(path: Path) -> int | None:
    """The mode of what ``path`` leads to; ``None`` for a dangling link."""
    try:
        return os.stat(path).st_mode
    except FileNotFoundError:
        return None
