"""The object store seam: where chunks, rollup blobs and job results are kept.

``open_object_store(url)`` picks the adapter by URL scheme; drivers are imported only
when their scheme is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

from tsgate._backends import Adapter, load_adapter
from tsgate.object_store.base import InvalidKey, ObjectInfo, ObjectStore, validate_key

if TYPE_CHECKING:
    from tsgate.object_store.local import LocalObjectStore
    from tsgate.object_store.memory import MemoryObjectStore
    from tsgate.object_store.s3 import S3ObjectStore

    # mypy proves here that every adapter satisfies the Protocol.
    def _conforms(a: LocalObjectStore, b: MemoryObjectStore, c: S3ObjectStore) -> None:
        stores: tuple[ObjectStore, ...] = (a, b, c)
        del stores


__all__ = ["TABLE", "InvalidKey", "ObjectInfo", "ObjectStore", "open_object_store", "validate_key"]

TABLE = {
    "file": Adapter("tsgate.object_store.local:LocalObjectStore"),
    "memory": Adapter("tsgate.object_store.memory:MemoryObjectStore"),
    "s3": Adapter("tsgate.object_store.s3:S3ObjectStore", extra="s3"),
}


class _ObjectStoreClass(Protocol):
    def from_url(self, url: str) -> ObjectStore: ...


def open_object_store(url: str) -> ObjectStore:
    """The object store for ``url`` (``file://``, ``memory://``, ``s3://``); close it with
    ``aclose()``. Raises ``ConfigError`` for an unknown scheme or bad settings and
    ``MissingDependency`` when the scheme's driver is not installed."""
    cls = cast(_ObjectStoreClass, load_adapter("objects", url, TABLE))
    return cls.from_url(url)
