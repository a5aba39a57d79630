"""The fast path of a cached chart answer: ``GET /api/timeseries`` served before routing.

When the chart endpoint serves or stores an answer of the response cache it also keeps
it here, in this process, as the headers and bytes ready to send, under what decides
those bytes in the request as it arrives: the raw query string, the caller's scope (the
salted token hash), the ``Accept`` and ``Accept-Encoding`` headers. The entry records
the site and its data generation; a request takes the fast path only when

- the method is ``GET`` and no ``Origin`` is sent (cross-origin requests get their CORS
  headers on the full path),
- an entry for exactly that request is kept, not past the expiry of the response-cache
  entry it copies (so never longer than the token's access grant, ``access_ttl_s``),
- the site's data generation is still the entry's (a repair or invalidation moves it),
- upstream accepted the token and let it read the site within ``access_ttl_s`` in this
  process, and has not refused it since (a revoked token is not served here once
  upstream refused it, nor after its grant runs out), and
- the caller's ``read`` rate limit lets it in.

Everything else (a miss, another route, an expired grant, a refused limit) goes down
the full middleware stack unchanged. ``ETag``/``If-None-Match`` answer 304 as the
endpoint does; the cache headers are the endpoint's. Query strings with ``tz=site`` are
never kept here (their zone is resolved per site on the full path).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from tsgate.api.auth import token_from
from tsgate.api.ratelimit import admit_cached
from tsgate.api.responses import CachedResponse
from tsgate.errors import Unauthorized
from tsgate.lru import LRU
from tsgate.series.access import UNKNOWN_SITE, token_hash
from tsgate.services import Services

PATH = "/api/timeseries"
MAX_BYTES = 64 << 20  # bodies kept in this process; the oldest entries go first
_Key = tuple[bytes, str, bytes, bytes]  # query string, scope, Accept, Accept-Encoding


@dataclass(frozen=True, slots=True)
class _Route:
    """What telemetry labels the request with (the router never sees it)."""

    path: str = PATH


_ROUTE = _Route()


@dataclass(frozen=True, slots=True)
class _Entry:
    site: str
    generation: str
    until_ms: int
    etag: bytes
    body: bytes
    headers: list[tuple[bytes, bytes]]  # 200, without the per-request ones
    not_modified: list[tuple[bytes, bytes]]  # 304, likewise


@dataclass(frozen=True, slots=True)
class _Request:
    key: _Key
    if_none_match: bytes


def _request_of(scope: Scope, fallback: str | None) -> _Request | None:
    """The fast-path view of a request's headers; ``None`` if it cannot take the path."""
    authorization = ace_token = accept = encodings = None
    if_none_match = b""
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = authorization if authorization is not None else value
        elif name == b"x-ace-token":
            ace_token = ace_token if ace_token is not None else value
        elif name == b"accept":
            accept = accept if accept is not None else value
        elif name == b"accept-encoding":
            encodings = encodings if encodings is not None else value
        elif name == b"if-none-match":
            if_none_match = if_none_match or value
        elif name == b"origin":
            return None
    try:
        token = token_from(
            None if authorization is None else authorization.decode("latin-1"),
            None if ace_token is None else ace_token.decode("latin-1"),
            fallback,
        )
    except Unauthorized:
        return None
    key = (scope["query_string"], token, accept or b"", encodings or b"")
    return _Request(key, if_none_match)


class FastAnswers:
    """The ready answers of this process, bounded by ``max_bytes`` of bodies."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        # dropped oldest kept first (a lookup does not count as a use)
        self._entries: LRU[_Key, _Entry] = LRU(
            max_bytes, lambda entry: len(entry.body), largest=max_bytes // 8
        )
        self.hits = 0

    def __len__(self) -> int:
        return len(self._entries)

    def keep(
        self, scope: Scope, services: Services, site: str, generation: str, hit: CachedResponse
    ) -> None:
        """Keep ``hit`` (as the endpoint just served it) for requests like this one."""
        if hit.packed or hit.until_ms <= services.reader.clock_ms() or site == UNKNOWN_SITE:
            return
        view = _request_of(scope, services.settings.upstream_token)
        if view is None or len(hit.body) > self.max_bytes // 8:
            return
        stored = _with_cors_vary(
            [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in hit.headers.items()]
        )
        etag = next((v for k, v in stored if k == b"etag"), b"")
        media_type = hit.media_type
        if media_type.startswith("text/") and "charset=" not in media_type.lower():
            media_type += "; charset=utf-8"  # as a Starlette response says it
        headers = [
            *stored,
            (b"content-length", str(len(hit.body)).encode()),
            (b"content-type", media_type.encode("latin-1")),
        ]
        not_modified = [(k, v) for k, v in stored if k != b"content-encoding"]
        entry = _Entry(site, generation, hit.until_ms, etag, hit.body, headers, not_modified)
        self._entries.put(_scoped(view.key, services), entry)

    def clear(self) -> None:
        self._entries.clear()

    def lookup(self, view: _Request, services: Services) -> tuple[_Key, _Entry] | None:
        key = _scoped(view.key, services)
        entry = self._entries.peek(key)
        if entry is None:
            return None
        if entry.until_ms <= services.reader.clock_ms():
            self._entries.pop(key)
            return None
        return key, entry


def _with_cors_vary(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The headers as the CORS middleware leaves them on an answer to a request without
    ``Origin``: ``Vary`` gains ``Origin`` (the fast path serves no other requests)."""
    varies = [v for k, v in headers if k == b"vary"]
    rest = [(k, v) for k, v in headers if k != b"vary"]
    return [*rest, (b"vary", b", ".join([*varies, b"Origin"]))]


def _scoped(key: _Key, services: Services) -> _Key:
    """The key with the token replaced by its salted hash (the scope)."""
    return (key[0], token_hash(key[1], services.salt), key[2], key[3])


class FastPathMiddleware:
    """Answers ``GET /api/timeseries`` from :class:`FastAnswers` when it may (see above)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        state = scope.get("state") or {}
        services: Services | None = state.get("services")
        answers: FastAnswers | None = state.get("fast_answers")
        if services is None or answers is None or not len(answers):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        view = _request_of(scope, services.settings.upstream_token)
        found = None if view is None else answers.lookup(view, services)
        if view is None or found is None:
            await self.app(scope, receive, send)
            return
        key, entry = found
        caller = key[1]
        if (
            not services.access.granted(caller, entry.site)
            or await services.reader.generations.get(entry.site) != entry.generation
        ):
            await self.app(scope, receive, send)
            return
        limits = await admit_cached(services, caller)
        if limits is None:
            await self.app(scope, receive, send)  # refused: the full path answers the 429
            return
        answers.hits += 1
        scope["route"] = _ROUTE
        elapsed = f"{(time.perf_counter() - started) * 1000:.2f}".encode()
        timing = [
            (b"x-cache-status", b"HIT"),
            (b"x-cache-source", b"MEMORY"),
            (b"x-processing-time", elapsed),
            (b"server-timing", b"cache;dur=" + elapsed),
        ]
        if entry.etag and entry.etag in view.if_none_match:
            start = {"type": "http.response.start", "status": 304}
            start["headers"] = [*entry.not_modified, *timing, *limits]
            await send(start)
            await send({"type": "http.response.body", "body": b""})
            return
        start = {"type": "http.response.start", "status": 200}
        start["headers"] = [*entry.headers, *timing, *limits]
        await send(start)
        await send({"type": "http.response.body", "body": entry.body})
