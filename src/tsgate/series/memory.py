"""Decoded data kept in this process, bounded by bytes: the MEMORY layer."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from tsgate.core import rollups
from tsgate.core.model import Series

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """Decoded data of this process, bounded by bytes (the MEMORY layer)."""

    def __init__(self, max_bytes: int, size_of: Callable[[V], int]) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._size_of = size_of
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def drop_where(self, doomed: Callable[[K], bool]) -> int:
        keys = [k for k in self._items if doomed(k)]
        for key in keys:
            self.bytes -= self._size_of(self._items.pop(key))
        return len(keys)

    def put(self, key: K, value: V) -> None:
        size = self._size_of(value)
        if size > self.max_bytes // 4:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.bytes -= self._size_of(old)
        self._items[key] = value
        self.bytes += size
        while self.bytes > self.max_bytes and self._items:
            _, dropped = self._items.popitem(last=False)
            self.bytes -= self._size_of(dropped)


def series_bytes(s: Series) -> int:
    return int(s.t_ms.nbytes + s.v.nbytes)


def buckets_bytes(b: rollups.Buckets) -> int:
    return int(b.start_ms.nbytes) * len(rollups.ARRAY_FIELDS)
