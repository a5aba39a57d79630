"""The fast path of a cached chart answer: ``GET /api/timeseries`` served before routing.

When the chart endpoint serves or stores an answer of the response cache it also keeps
it here, in this process, as the headers and bytes ready to send, under what decides
those bytes in the request as it arrives: the raw query string, the caller's scope (the
salted token hash), the ``Accept`` and ``Accept-Encoding`` headers. The entry records
the site and its data generation; a request takes the fast path only when

- the method is ``GET`` (a cross-origin request gets the CORS headers the full path
  gives it, from the same :class:`~tsgate.api.cors.CorsPolicy`),
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
from tsgate.api.cors import CorsPolicy, add_vary
from tsgate.api.metrics import Metrics
from tsgate.api.ratelimit import admit_cached
from tsgate.api.responses import CachedResponse
from tsgate.api.telemetry import Telemetry, header_count, request_id_of
from tsgate.errors import Unauthorized
from tsgate.lru import LRU
from tsgate.series.access import UNKNOWN_SITE, token_hash
from tsgate.services import Services

PATH = "/api/timeseries"
MAX_BYTES = 64 << 20  # bodies kept in this process; the oldest entries go first
_Key = tuple[bytes, str, bytes, bytes]  # query string, scope, Accept, Accept-Encoding


@dataclass(frozen=True, slots=True)
class _Entry:
    site: str
    generation: str
    until_ms: int
    etag: bytes
    body: bytes
    samples: int  # as its X-Data-Samples says, for telemetry
    headers: list[tuple[bytes, bytes]]  # 200, without the per-request ones
    not_modified: list[tuple[bytes, bytes]]  # 304, likewise
    # the same as a request without ``Origin`` gets them (``Vary`` names ``Origin``)
    headers_same_origin: list[tuple[bytes, bytes]]
    not_modified_same_origin: list[tuple[bytes, bytes]]


@dataclass(frozen=True, slots=True)
class _Request:
    key: _Key
    if_none_match: bytes
    origin: bytes | None


def _request_of(scope: Scope, fallback: str | None) -> _Request | None:
    """The fast-path view of a request's headers; ``None`` if it cannot take the path."""
    authorization = ace_token = accept = encodings = origin = None
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
            origin = origin if origin is not None else value
    try:
        token = token_from(
            None if authorization is None else authorization.decode("latin-1"),
            None if ace_token is None else ace_token.decode("latin-1"),
            fallback,
        )
    except Unauthorized:
        return None
    key = (scope["query_string"], token, accept or b"", encodings or b"")
    return _Request(key, if_none_match, origin)


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
        if hit.packed or hit.until_ms <= services.clock_ms() or site == UNKNOWN_SITE:
            return
        view = _request_of(scope, services.settings.upstream_token)
        if view is None or len(hit.body) > self.max_bytes // 8:
            return
        stored = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in hit.headers.items()
        ]
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
        same_origin, not_modified_same_origin = list(headers), list(not_modified)
        add_vary(same_origin)
        add_vary(not_modified_same_origin)
        entry = _Entry(
            site,
            generation,
            hit.until_ms,
            etag,
            hit.body,
            header_count(next((v for k, v in stored if k == b"x-data-samples"), None)),
            headers,
            not_modified,
            same_origin,
            not_modified_same_origin,
        )
        self._entries.put(_scoped(view.key, services), entry)

    def clear(self) -> None:
        self._entries.clear()

    def lookup(self, view: _Request, services: Services) -> tuple[_Key, _Entry] | None:
        key = _scoped(view.key, services)
        entry = self._entries.peek(key)
        if entry is None:
            return None
        if entry.until_ms <= services.clock_ms():
            self._entries.pop(key)
            return None
        return key, entry


def _scoped(key: _Key, services: Services) -> _Key:
    """The key with the token replaced by its salted hash (the scope)."""
    return (key[0], token_hash(key[1], services.salt), key[2], key[3])


class FastPathMiddleware:
    """Answers ``GET /api/timeseries`` from :class:`FastAnswers` when it may (see above).

    It is the outermost middleware: an answer it serves passes through nothing else, and
    it tells :class:`~tsgate.api.telemetry.Telemetry` of it itself (request id, metrics,
    access line, request statistics) with what the entry already knows."""

    def __init__(self, app: ASGIApp, cors: CorsPolicy, metrics: Metrics) -> None:
        self.app = app
        self.cors = cors
        self.telemetry = Telemetry(metrics)

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
            or await services.reader.generation(entry.site) != entry.generation
        ):
            await self.app(scope, receive, send)
            return
        limits = await admit_cached(services, caller)
        if limits is None:
            await self.app(scope, receive, send)  # refused: the full path answers the 429
            return
        answers.hits += 1
        request_id = request_id_of(scope["headers"])
        status, bytes_out = 500, 0
        try:
            elapsed = f"{(time.perf_counter() - started) * 1000:.2f}".encode()
            timing = [
                (b"x-cache-status", b"HIT"),
                (b"x-cache-source", b"MEMORY"),
                (b"x-processing-time", elapsed),
                (b"server-timing", b"cache;dur=" + elapsed),
                (b"x-request-id", request_id.encode()),
            ]
            not_modified = bool(entry.etag) and entry.etag in view.if_none_match
            if view.origin is None:
                base = entry.not_modified_same_origin if not_modified else entry.headers_same_origin
                headers = [*base, *timing, *limits]
            else:
                headers = [*(entry.not_modified if not_modified else entry.headers), *timing,
                           *limits]  # fmt: skip
                self.cors.apply(headers, view.origin)
            body = b"" if not_modified else entry.body
            await send({"type": "http.response.start", "status": 304 if not_modified else 200,
                        "headers": headers})  # fmt: skip
            status = 304 if not_modified else 200
            await send({"type": "http.response.body", "body": body})
            bytes_out = len(body)
        finally:
            self.telemetry.finished(
                scope, request_id, PATH, status, time.perf_counter() - started, bytes_out,
                entry.samples, "HIT", "MEMORY",
            )  # fmt: skip
