"""Rate limiting: a token bucket per caller and route class, as pure ASGI middleware.

The caller is its token's salted hash once upstream has accepted that token, else its
client address (so rotating unvalidated tokens all draw from one address's bucket). Each
route class (``read``, ``jobs``, ``admin``) has its own bucket, kept in the cache seam:
in this process for ``memory://``, shared by every server for ``redis://``. Limited
responses carry ``RateLimit-Limit``, ``RateLimit-Remaining`` and ``RateLimit-Reset``;
a refusal is a 429 problem with ``Retry-After``. If the cache is down the limiter lets
requests through (and health reports the cache as degraded) rather than refusing all.
"""

from __future__ import annotations

import logging
import math
import time

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tsgate.api.auth import token_of
from tsgate.api.problems import tsgate_error
from tsgate.cache import Bucket
from tsgate.errors import RateLimited, StorageError, Unauthorized
from tsgate.series.access import token_hash
from tsgate.wiring import Services

log = logging.getLogger("tsgate.ratelimit")

UNLIMITED_PATHS = frozenset({"/api/health"})
_WARN_EVERY_S = 60.0


def route_class(path: str) -> str | None:
    """Which budget a path draws from; ``None`` for paths that are never limited."""
    if path.startswith("/prometheus/api/"):
        return "read"  # the Prometheus query API reads like the chart API
    if not path.startswith("/api/") or path in UNLIMITED_PATHS:
        return None
    if path == "/api/jobs" or path.startswith("/api/jobs/"):
        return "jobs"
    if path == "/api/stats" or path.startswith("/api/cache/"):
        return "admin"
    return "read"


def caller_of(scope: Scope, services: Services) -> str:
    """``t:<hash>`` for a token upstream has accepted lately, else ``ip:<address>``.

    A token not (yet) validated shares its address's bucket: minting fresh junk tokens
    gains nothing. The address is the peer's, or with ``TSGATE_TRUSTED_PROXY_HEADER`` the
    last entry the trusted proxy wrote into that header.
    """
    try:
        token = token_of(Request(scope), None)
    except Unauthorized:
        token = None
    if token is not None:
        hashed = token_hash(token, services.salt)
        if services.access.validated(hashed):
            return "t:" + hashed
    return "ip:" + client_address(scope, services.settings.trusted_proxy_header)


def client_address(scope: Scope, trusted_header: str | None) -> str:
    if trusted_header:
        wanted = trusted_header.lower().encode()
        values = [v for k, v in scope.get("headers", []) if k == wanted]
        if values:
            last = values[-1].decode("latin-1").split(",")[-1].strip()
            if last:
                return str(last[:100])
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def limit_headers(bucket: Bucket, burst: int) -> list[tuple[bytes, bytes]]:
    return [
        (b"ratelimit-limit", str(burst).encode()),
        (b"ratelimit-remaining", str(max(0, bucket.remaining)).encode()),
        (b"ratelimit-reset", str(math.ceil(bucket.reset_s)).encode()),
    ]


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._warned_at = -math.inf

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services: Services | None = scope.get("state", {}).get("services")
        kind = route_class(scope["path"]) if scope["type"] == "http" else None
        if kind is None or services is None or services.settings.rate_limit_per_min <= 0:
            await self.app(scope, receive, send)
            return
        settings = services.settings
        key = f"ratelimit:{kind}:{caller_of(scope, services)}"
        try:
            bucket = await services.cache.take(
                key, settings.rate_limit_per_min / 60.0, settings.rate_limit_burst
            )
        except StorageError as exc:
            self._warn(exc)
            await self.app(scope, receive, send)
            return
        headers = limit_headers(bucket, settings.rate_limit_burst)
        if not bucket.allowed:
            refusal = RateLimited(
                f"rate limit of {settings.rate_limit_per_min} requests per minute "
                f"(burst {settings.rate_limit_burst}) for {kind} requests exceeded",
                retry_after_s=bucket.retry_after_s,
            )
            response = await tsgate_error(Request(scope), refusal)
            response.raw_headers.extend(headers)
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY_S:
            self._warned_at = now
            log.warning("rate limiting is off while the cache fails: %s", exc)
