"""The object store seam: named blobs of bytes under one root.

Keys are ``/``-separated relative paths whose segments use only ``[A-Za-z0-9._=-]``;
every adapter passes each key through :func:`validate_key`, so no key can name
anything outside the store's root (no ``..``, no absolute paths, no backslashes).
Listing prefixes are plain string prefixes: ``"a/b"`` matches ``a/b/c`` and ``a/bc``.
Backend failures surface as :class:`~tsgate.errors.StorageError`, never driver errors.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import IO, Protocol, runtime_checkable

from tsgate.errors import StorageError

_SEGMENT = re.compile(r"[A-Za-z0-9._=-]+")
# Keys are derived from hashes, so a generous bound catches bugs without limiting use;
# 1024 bytes is also S3's own key limit.
MAX_KEY_BYTES = 1024


class InvalidKey(StorageError):
    """A key or prefix is not a safe relative path of allowed characters."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One listed object: its key relative to the store root and its size in bytes."""

    key: str
    size: int


@runtime_checkable
class ObjectStore(Protocol):
    """Bytes in and out by key; ``None`` on a miss; ``StorageError`` on failure."""

    async def get(self, key: str) -> bytes | None:
        """The whole object, or ``None`` when it does not exist."""
        ...

    async def get_range(self, key: str, start: int, end: int) -> bytes | None:
        """Bytes ``[start, end)`` clipped to the object's size, or ``None`` on a miss.

        A range past the end gives ``b""``; a negative ``start`` or ``end < start``
        raises ``ValueError``.
        """
        ...

    async def put(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        """Store ``data`` atomically (readers see old or new bytes, never a mix).

        With ``if_absent`` the write happens only when the key does not exist, and of
        concurrent writers exactly one wins; returns ``False`` only for the losers.
        """
        ...

    async def put_many(self, items: Sequence[tuple[str, bytes]], *, durable: bool = True) -> None:
        """Store each ``(key, data)`` as ``put`` would, as one batch.

        With ``durable=False`` the store may skip forcing the bytes to stable storage: a
        crash can then lose or truncate objects of the batch, never mix them up. Only for
        data that can be told damaged and fetched again (checksummed cache objects).
        """
        ...

    async def put_file(self, key: str, file: IO[bytes]) -> int:
        """Store the whole of the open binary ``file`` (from its start) as ``put`` would,
        without reading it into memory at once; returns the size stored. For results
        and exports, which can be far larger than anything kept in memory."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; deleting a missing key is not an error."""
        ...

    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, sorted by key."""
        ...

    async def aclose(self) -> None:
        """Release connections; the store must not be used afterwards."""
        ...


def file_size(file: IO[bytes]) -> int:
    """The size of a seekable ``file``, left positioned at its start."""
    size = file.seek(0, 2)
    file.seek(0)
    return size


def validate_key(key: str) -> str:
    """Return ``key`` unchanged when it is a safe relative key, else raise ``InvalidKey``."""
    if not isinstance(key, str) or not key:
        raise InvalidKey(f"object key must be a non-empty string, got {key!r}")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidKey(f"object key is longer than {MAX_KEY_BYTES} bytes")
    for segment in key.split("/"):
        if segment in {".", ".."} or _SEGMENT.fullmatch(segment) is None:
            raise InvalidKey(
                f"invalid object key {key!r}: segments must be non-empty, not '.' or '..',"
                " and use only A-Z a-z 0-9 . _ = -"
            )
    return key


def validate_prefix(prefix: str) -> str:
    """Return ``prefix`` when it is ``""`` or the start of a valid key, else raise.

    A trailing ``/`` is allowed so callers can list one "directory" exactly.
    """
    if prefix == "":
        return prefix
    try:
        validate_key(prefix.removesuffix("/"))
    except InvalidKey as exc:
        raise InvalidKey(f"invalid list prefix {prefix!r}: {exc.detail}") from exc
    return prefix


def prefix_parent(prefix: str) -> str:
    """The deepest whole-segment path containing every key that starts with ``prefix``."""
    return prefix.rpartition("/")[0]


def check_range(start: int, end: int) -> None:
    if start < 0 or end < start:
        raise ValueError(f"byte range [{start}, {end}) must have 0 <= start <= end")
