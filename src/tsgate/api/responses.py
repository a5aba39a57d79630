"""The response cache: hot chart answers kept whole, encoded and compressed.

Keyed by the caller's scope (a salted token hash) and the normalised query, so one
caller's answer never reaches another. An entry lives no longer than the token's access
grant (``access_ttl_s``) and, for ranges still changing, no longer than ``open_ttl_s``.
Failures of the cache backend never fail a request: the answer is computed instead.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field

import msgspec

from tsgate.cache.base import Cache, Namespace
from tsgate.errors import StorageError
from tsgate.series.chart import ChartQuery
from tsgate.wire import chart as chart_wire

RESPONSES = Namespace("resp:")  # every cached answer, dropped whole on invalidation
MAX_BYTES = 8 << 20  # larger answers are cheaper to recompute than to hold
log = logging.getLogger("tsgate.responses")


class CachedResponse(msgspec.Struct):
    body: bytes
    media_type: str
    headers: dict[str, str] = field(default_factory=dict)
    packed: bool = False  # ``body`` is kept zstd-compressed; undone before it is sent
    until_ms: int = 0  # kept until then, on the services' clock (0: not told)


@dataclass(frozen=True)
class ResponseKey:
    scope: str
    query: ChartQuery
    layout: str
    msgpack: bool
    encoding: str | None
    generation: str = "0"  # the site's data version (series.reader.Generations)

    def __str__(self) -> str:
        q = self.query
        text = "\x1f".join(
            map(
                str,
                (
                    self.scope,
                    self.generation,
                    q.site,
                    ",".join(q.points),
                    q.start_ms,
                    q.end_ms,
                    q.interval,
                    q.max_points,
                    q.agg,
                    q.tz,  # a local day is not a UTC day
                    q.compare_ms,  # a comparison carries more series
                    self.layout,
                    self.msgpack,
                    chart_wire.REVISION,  # a kept answer of older encodings is not served
                    self.encoding,
                ),
            )
        )
        return RESPONSES.key(hashlib.blake2b(text.encode(), digest_size=20).hexdigest())


def page_key(*parts: object) -> str:
    """A cache key for any other answer kept whole (the drop-in pages): the parts that
    decide its bytes, the caller's scope and the site's data version among them."""
    text = "\x1f".join(map(str, parts))
    return RESPONSES.key("page:" + hashlib.blake2b(text.encode(), digest_size=20).hexdigest())


async def load(cache: Cache, key: ResponseKey | str) -> CachedResponse | None:
    try:
        raw = await cache.get(str(key))
    except StorageError as exc:
        log.warning("response cache unavailable: %s", exc)
        return None
    if raw is None:
        return None
    try:
        return msgspec.msgpack.decode(raw, type=CachedResponse)
    except msgspec.DecodeError:
        return None


async def store(
    cache: Cache,
    key: ResponseKey | str,
    entry: CachedResponse,
    ttl_s: float,
    *,
    max_bytes: int = MAX_BYTES,
) -> bool:
    """Keep ``entry`` for ``ttl_s``; whether it was kept."""
    if ttl_s <= 0 or len(entry.body) > max_bytes:
        return False
    try:
        await cache.set(str(key), msgspec.msgpack.encode(entry), ttl_s=ttl_s)
    except StorageError as exc:
        log.warning("response cache unavailable: %s", exc)
        return False
    return True
