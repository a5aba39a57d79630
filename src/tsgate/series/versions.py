"""The sites' data versions kept in the object store, for server processes that share
no cache: each ``tsgate serve --workers N`` process on the embedded ``memory://`` cache
must see a repair another process made, or it would serve answers kept from before it.

Read through the same one-second local copy as :class:`~tsgate.series.reader.Generations`;
one small object per site (``_system/versions/<site hash>``), written whole and atomically.
If the objects are emptied, versions start again from ``0``: answers kept from before are
still bounded by their time to live.
"""

from __future__ import annotations

import hashlib

from tsgate.errors import StorageError
from tsgate.object_store.base import ObjectStore
from tsgate.series.reader import Generations

PREFIX = "_system/versions/"


class StoredGenerations(Generations):
    def __init__(self, objects: ObjectStore) -> None:
        super().__init__(None)
        self._objects = objects

    @staticmethod
    def _key(site: str) -> str:
        return PREFIX + hashlib.blake2b(site.encode(), digest_size=16).hexdigest()

    async def _read(self, site: str) -> str:
        try:
            raw = await self._objects.get(self._key(site))
        except StorageError:
            raw = None
        return raw.decode("utf-8", "replace") if raw else "0"  # any bytes name a version

    async def _publish(self, site: str, value: str) -> None:
        await self._objects.put(self._key(site), value.encode())
