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
import logging
import time

from tsgate.errors import StorageError
from tsgate.object_store.base import ObjectStore
from tsgate.series.reader import Generations

PREFIX = "_system/versions/"
log = logging.getLogger(__name__)


class StoredGenerations(Generations):
    def __init__(self, objects: ObjectStore) -> None:
        super().__init__(None)
        self._objects = objects

    @staticmethod
    def _key(site: str) -> str:
        return PREFIX + hashlib.blake2b(site.encode(), digest_size=16).hexdigest()

    async def get(self, site: str) -> str:
        hit = self._local.get(site)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self._LOCAL_S:
            return hit[1]
        try:
            raw = await self._objects.get(self._key(site))
        except StorageError:
            raw = None
        value = raw.decode("utf-8", "replace") if raw else "0"  # any bytes name a version
        self._local[site] = (now, value)
        return value

    async def bump(self, site: str) -> None:
        value = f"{time.time_ns():x}"
        self._local[site] = (time.monotonic(), value)
        try:
            await self._objects.put(self._key(site), value.encode())
        except StorageError as exc:
            log.warning("could not publish the new data version of %s: %s", site, exc)
