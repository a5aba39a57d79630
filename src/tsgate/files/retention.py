"""What the maintenance pass does for files: delete the attachments of saved charts that
are gone (deleted or expired), and measure what files take."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tsgate.object_store.base import ObjectStore


class _File(Protocol):
    @property
    def id(self) -> str: ...

    @property
    def object_key(self) -> str: ...


class FileIndex(Protocol):
    async def orphans(self, limit: int = 1000) -> Sequence[_File]: ...

    async def delete_many(self, ids: Sequence[str]) -> None: ...

    async def usage(self, scope: str | None = None) -> tuple[int, int]: ...


class FileRetention:
    def __init__(self, index: FileIndex, objects: ObjectStore) -> None:
        self._index = index
        self._objects = objects

    async def cleanup(self) -> int:
        """Delete orphaned attachments (object first: a row never names a lost object)."""
        removed = 0
        while orphans := await self._index.orphans():
            for file in orphans:
                await self._objects.delete(file.object_key)
            await self._index.delete_many([f.id for f in orphans])
            removed += len(orphans)
        return removed

    async def stored(self) -> tuple[int, int]:
        """``(files, bytes)`` kept in the object store."""
        return await self._index.usage()
