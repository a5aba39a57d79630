"""Rate limiting: a token bucket per caller and route class, as pure ASGI middleware.

The caller is its token's salted hash once upstream has accepted that token, else its
client address (so rotating unvalidated tokens all draw from one address's bucket).

What is charged is the work a request makes tsgate ask of upstream, not the request:
a request is let in while the bucket holds a whole token, and an answer from the cache
costs ``REQUEST_COST`` (1/128 of one; a whole one for a caller counted by its address).
When the answer starts (and again when it ends, for streamed ones) the caller pays
``UPSTREAM_REQUEST_COST`` per upstream HTTP request made for it and ``UPSTREAM_MIB_COST``
per MiB upstream sent back beyond 64 KiB an answer, less what it paid on entry; the
bucket may go into debt and refuses until it has refilled. A caller whose every request
reaches upstream once is limited exactly as one token a request would limit it, while a
client paging a cached site-day at ``page_size=3`` never meets a 429.

Each route class (``read``, ``jobs``, ``files``, ``admin``) has its own bucket, kept in the
cache seam:
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
from tsgate.services import Services
from tsgate.upstream.metering import Meter, metered

log = logging.getLogger("tsgate.ratelimit")

UNLIMITED_PATHS = frozenset({"/api/health"})
REQUEST_COST = 1 / 128  # an answer from the cache costs (almost) nothing; exact in binary
_STORING = frozenset({"files"})  # route classes whose every request costs a whole token
UPSTREAM_REQUEST_COST = 1.0  # each upstream HTTP request made for the caller
UPSTREAM_MIB_COST = 1.0  # each MiB of upstream body fetched for the caller …
FREE_BYTES_PER_REQUEST = 64 << 10  # … beyond the first 64 KiB of each answer
_WARN_EVERY_S = 60.0


def route_class(path: str) -> str | None:
    """Which budget a path draws from; ``None`` for paths that are never limited."""
    if path.startswith("/prometheus/api/"):
        return "read"  # the Prometheus query API reads like the chart API
    if not path.startswith("/api/") or path in UNLIMITED_PATHS:
        return None
    if path == "/api/jobs" or path.startswith("/api/jobs/"):
        return "jobs"
    if path == "/api/files" or path.startswith("/api/files/"):
        return "files"
    if path in ("/api/stats", "/api/monitor", "/api/monitor/report") or path.startswith(
        "/api/cache/"
    ):
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
        hashed = services.access.scope(token)
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


async def admit_cached(services: Services, scope_hash: str) -> list[tuple[bytes, bytes]] | None:
    """The limit on an answer served whole from the cache to a caller whose token upstream
    has accepted (``scope_hash`` validated): a ``read`` request costing ``REQUEST_COST``
    with no upstream work to bill after. The headers to send when let in; ``None`` when
    refused (the caller then takes the full path, which answers the 429)."""
    settings = services.settings
    if settings.rate_limit_per_min <= 0:
        return []
    try:
        bucket = await services.cache.take(
            "ratelimit:read:t:" + scope_hash,
            settings.rate_limit_per_min / 60.0,
            settings.rate_limit_burst,
            cost=REQUEST_COST,
            need=1.0,
        )
    except StorageError as exc:
        _WARNING.warn(exc)
        return []
    return limit_headers(bucket, settings.rate_limit_burst) if bucket.allowed else None


class _Warning:
    """One warning a minute while the cache fails, not one per request."""

    def __init__(self) -> None:
        self._warned_at = -math.inf

    def warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY_S:
            self._warned_at = now
            log.warning("rate limiting is off while the cache fails: %s", exc)


_WARNING = _Warning()


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services: Services | None = scope.get("state", {}).get("services")
        kind = route_class(scope["path"]) if scope["type"] == "http" else None
        if kind is None or services is None or services.settings.rate_limit_per_min <= 0:
            await self.app(scope, receive, send)
            return
        settings = services.settings
        key = f"ratelimit:{kind}:{caller_of(scope, services)}"
        rate_per_s = settings.rate_limit_per_min / 60.0
        # a caller counted by its address (no validated token) pays a whole token a request;
        # so does every upload (it stores bytes whoever makes it)
        validated = key.split(":", 2)[2].startswith("t:")
        cost = REQUEST_COST if validated and kind not in _STORING else 1.0
        try:
            bucket = await services.cache.take(
                key, rate_per_s, settings.rate_limit_burst, cost=cost, need=1.0
            )
        except StorageError as exc:
            _WARNING.warn(exc)
            await self.app(scope, receive, send)
            return
        headers = limit_headers(bucket, settings.rate_limit_burst)
        if not bucket.allowed:
            refusal = RateLimited(
                f"rate limit of {settings.rate_limit_per_min} requests per minute "
                f"(burst {settings.rate_limit_burst}) for {kind} requests exceeded; a request "
                "answered from the cache costs 1/128 of one, one that reaches upstream "
                "costs one per upstream request and MiB",
                retry_after_s=bucket.retry_after_s,
            )
            response = await tsgate_error(Request(scope), refusal)
            response.raw_headers.extend(headers)
            await response(scope, receive, send)
            return

        with metered() as meter:
            bill = _Bill(services, key, rate_per_s, meter, paid=cost)

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    # the answer's upstream work is done: the headers show the bucket after it
                    after = await bill.settle()
                    shown = headers if after is None else limit_headers(after, bill.burst)
                    message["headers"] = [*message.get("headers", []), *shown]
                await send(message)

            try:
                await self.app(scope, receive, send_with_headers)
            finally:
                await bill.settle()  # what a streamed answer fetched after its start


class _Bill:
    """The upstream work of one request, charged to its caller as it becomes known."""

    def __init__(
        self,
        services: Services,
        key: str,
        rate_per_s: float,
        meter: Meter,
        *,
        paid: float,
    ) -> None:
        self.services, self.key, self.meter = services, key, meter
        self.rate_per_s = rate_per_s
        self.burst = services.settings.rate_limit_burst
        self.charged = paid  # what the caller paid on entry counts towards the work

    async def settle(self) -> Bucket | None:
        """Charge what the work so far costs beyond what was charged; the bucket after."""
        m = self.meter
        extra_bytes = max(0, m.bytes - m.requests * FREE_BYTES_PER_REQUEST)
        work = m.requests * UPSTREAM_REQUEST_COST + extra_bytes / 2**20 * UPSTREAM_MIB_COST
        due = work - self.charged
        if due <= 0:
            return None
        self.charged = work
        try:
            return await self.services.cache.take(
                self.key, self.rate_per_s, self.burst, cost=due, force=True
            )
        except StorageError as exc:
            _WARNING.warn(exc)
            return None
