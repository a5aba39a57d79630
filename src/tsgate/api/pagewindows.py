"""The read windows of a site's paginated stream, kept briefly per caller.

A client paging a site reads page after page from one window (an hour of the whole
site at small page sizes: hundreds of pages at ``page_size=3``). The window's rows,
merged and ordered once, are kept for ``TTL_S`` so the next pages are slices of it
rather than new reads; so is the site's list of collecting points. Entries are keyed
by a digest of the caller's token, so one caller's window never answers another, and
live no longer than a token's access grant. A cache invalidation or a repaired period
reaches a paginator at most ``TTL_S`` late; a stream stays self-consistent meanwhile.
"""

from __future__ import annotations

import hashlib
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

from tsgate.upstream.wire import Merged

TTL_S = 30.0
MAX_ROWS = 4_000_000  # about 90 MB of merged rows at most, per process
MAX_ENTRIES = 64

Key = tuple[str, str, str, int, int, bool]


class PageWindows:
    def __init__(self, ttl_s: float = TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._items: OrderedDict[Key, tuple[float, Merged]] = OrderedDict()
        self._rows = 0
        self._names: OrderedDict[tuple[str, str], tuple[float, list[str]]] = OrderedDict()

    @staticmethod
    def _scope(token: str) -> str:
        return hashlib.blake2b(token.encode(), digest_size=16).hexdigest()

    def key(self, token: str, site: str, names: Sequence[str], lo: int, hi: int, raw: bool) -> Key:
        listed = hashlib.blake2b("\x1f".join(names).encode(), digest_size=16).hexdigest()
        return (self._scope(token), site, listed, lo, hi, raw)

    async def names(
        self, token: str, site: str, load: Callable[[], Awaitable[list[str]]]
    ) -> list[str]:
        """The site's collecting points as ``load`` gives them, kept for ``ttl_s``."""
        key, now = (self._scope(token), site), self._clock()
        found = self._names.get(key)
        if found is not None and found[0] > now:
            return found[1]
        names = await load()
        self._names[key] = (now + self.ttl_s, names)
        while len(self._names) > MAX_ENTRIES:
            self._names.popitem(last=False)
        return names

    async def get(self, key: Key, build: Callable[[], Awaitable[Merged]]) -> Merged:
        now = self._clock()
        found = self._items.get(key)
        if found is not None and found[0] > now:
            self._items.move_to_end(key)
            return found[1]
        merged = await build()
        self._put(key, now + self.ttl_s, merged)
        return merged

    def _put(self, key: Key, expires: float, merged: Merged) -> None:
        old = self._items.pop(key, None)
        if old is not None:
            self._rows -= len(old[1])
        if len(merged) > MAX_ROWS // 4:
            return
        self._items[key] = (expires, merged)
        self._rows += len(merged)
        while self._rows > MAX_ROWS or len(self._items) > MAX_ENTRIES:
            _, (_, dropped) = self._items.popitem(last=False)
            self._rows -= len(dropped)


_BY_APP: weakref.WeakKeyDictionary[object, PageWindows] = weakref.WeakKeyDictionary()


def windows_of(owner: object, ttl_s: float) -> PageWindows:
    """The window cache of one running app (``owner``: its series reader)."""
    found = _BY_APP.get(owner)
    if found is None:
        found = _BY_APP[owner] = PageWindows(min(TTL_S, ttl_s))
    return found
