"""The one least-recently-used map of this process, bounded by the bytes of its values
(or by any other measure ``size_of`` gives: a count, with ``lambda _: 1``)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """Values by key, the least recently used going first once ``max_bytes`` is passed;
    a value larger than ``largest`` (a quarter of the whole unless given) is never kept."""

    def __init__(
        self, max_bytes: int, size_of: Callable[[V], int], *, largest: int | None = None
    ) -> None:
        self.max_bytes = max_bytes
        self.largest = max_bytes // 4 if largest is None else largest
        self.bytes = 0
        self._size_of = size_of
        self._items: OrderedDict[K, V] = OrderedDict()

    @classmethod
    def counted(cls, max_items: int) -> LRU[K, V]:
        """An LRU of at most ``max_items`` entries, whatever their size."""
        return cls(max_items, _one, largest=1)

    def __len__(self) -> int:
        return len(self._items)

    def values(self) -> list[V]:
        """Every value, least recently used first."""
        return list(self._items.values())

    def get(self, key: K) -> V | None:
        """The value of ``key``, now the most recently used; ``None`` when absent."""
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def peek(self, key: K) -> V | None:
        """The value of ``key`` without counting as a use."""
        return self._items.get(key)

    def put(self, key: K, value: V) -> bool:
        """Keep ``value`` as the most recently used (dropping the least recently used
        beyond the bound); False when it is larger than ``largest`` and was not kept
        (what ``key`` held before stays)."""
        size = self._size_of(value)
        if size > self.largest:
            return False
        self.pop(key)
        self._items[key] = value
        self.bytes += size
        while self.bytes > self.max_bytes and self._items:
            _, dropped = self._items.popitem(last=False)
            self.bytes -= self._size_of(dropped)
        return True

    def pop(self, key: K) -> V | None:
        """Drop ``key``; return what it held."""
        old = self._items.pop(key, None)
        if old is not None:
            self.bytes -= self._size_of(old)
        return old

    def drop_where(self, doomed: Callable[[K], bool]) -> int:
        """Drop every key ``doomed`` says; return how many went."""
        keys = [k for k in self._items if doomed(k)]
        for key in keys:
            self.pop(key)
        return len(keys)

    def clear(self) -> None:
        self._items.clear()
        self.bytes = 0


def _one(_: object) -> int:
    return 1
