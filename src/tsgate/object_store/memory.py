"""An in-process object store (``memory://``): for tests and single-process demos."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import IO, Self

from tsgate.object_store.base import (
    ObjectInfo,
    check_range,
    validate_key,
    validate_prefix,
)


class MemoryObjectStore:
    """Objects in a dict; each ``from_url`` call gives a new, empty store."""

    def __init__(self) -> None:
        self._objects: dict[str, bytes] = {}

    @classmethod
    def from_url(cls, url: str) -> Self:
        return cls()

    async def get(self, key: str) -> bytes | None:
        return self._objects.get(validate_key(key))

    async def get_range(self, key: str, start: int, end: int) -> bytes | None:
        check_range(start, end)
        data = self._objects.get(validate_key(key))
        return None if data is None else data[start:end]

    async def put(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        validate_key(key)
        # No await between the check and the store, so concurrent tasks cannot both win.
        if if_absent and key in self._objects:
            return False
        self._objects[key] = bytes(data)
        return True

    async def put_many(self, items: Sequence[tuple[str, bytes]], *, durable: bool = True) -> None:
        for key, data in items:
            await self.put(key, data)

    async def put_file(self, key: str, file: IO[bytes]) -> int:
        file.seek(0)
        data = file.read()  # memory:// holds everything in memory anyway
        await self.put(key, data)
        return len(data)

    async def delete(self, key: str) -> None:
        self._objects.pop(validate_key(key), None)

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        validate_prefix(prefix)
        # Snapshot first: callers may put or delete while iterating.
        matches = sorted(
            (key, len(data)) for key, data in self._objects.items() if key.startswith(prefix)
        )
        for key, size in matches:
            yield ObjectInfo(key, size)

    async def aclose(self) -> None:
        self._objects.clear()
