"""Who may read what: cached data is shared only with tokens upstream lets read the site.

A token's access to a site is asked of upstream (a cheap ``GET /sites/{site}``) and the
answer cached for ``ttl_ms`` under a salted hash of the token, never the token itself.
A token upstream rejects gets 401 even when everything it asks for is cached.

Denials (401, 403, 404) are cached too, for ``deny_ttl_ms``, per token hash and
subject: a dashboard polling with a bad token costs upstream one call per
``deny_ttl_ms``, not one per request. Site names that cannot be a site (empty, too long,
with ``/``, whitespace or control characters) are refused here without asking upstream.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

from tsgate.clock import wall_clock_ms
from tsgate.errors import Forbidden, NotFound, RequestError, Unauthorized
from tsgate.upstream.base import Upstream

UNKNOWN_SITE = "_"
MAX_SITE_CHARS = 200
MAX_ENTRIES = 100_000  # bounded: grants and denials beyond this forget the oldest
_NOT_IN_SITE_NAMES = frozenset("/\\?#%")
# the subject of "is this token known upstream at all" (any site, the sites listing)
_ANY = "*"
K = TypeVar("K")
V = TypeVar("V")


def token_hash(token: str, salt: bytes) -> str:
    """A salted hash identifying a token in keys, limits and stats (the token never is)."""
    return hashlib.blake2b(token.encode(), key=salt[:64], digest_size=16).hexdigest()


def check_site_name(site: str, param: str = "site") -> None:
    """``NotFound`` (naming ``param``) for a name no site can have; nothing reaches upstream."""
    if (
        not site
        or len(site) > MAX_SITE_CHARS
        or any(c in _NOT_IN_SITE_NAMES or not c.isprintable() or c.isspace() for c in site)
    ):
        shown = site if len(site) <= 60 else site[:60] + "…"
        raise NotFound(f"unknown site {shown!r}: not a site name", param=param)


class Access(Protocol):
    """Who a token is and which sites it may read, as handlers ask (:class:`AccessCheck`
    is it)."""

    def scope(self, token: str) -> str: ...

    def validated(self, scope: str) -> bool: ...

    def granted(self, scope: str, site: str) -> bool: ...

    def accepted(self, token: str) -> None: ...

    async def check(self, site: str, token: str, *, point: str | None = None) -> None: ...

    async def validate(self, token: str) -> None: ...


class AccessCheck:
    def __init__(
        self,
        upstream: Upstream,
        salt: bytes,
        *,
        ttl_ms: int = 300_000,
        deny_ttl_ms: int = 60_000,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self.upstream = upstream
        self.ttl_ms = ttl_ms
        self.deny_ttl_ms = deny_ttl_ms
        self._salt = salt
        self._clock = clock_ms or wall_clock_ms
        self._granted: dict[tuple[str, str], int] = {}  # (token hash, subject) -> until ms
        # (until, error type, detail, upstream's message) of a recent refusal
        self._denied: dict[tuple[str, str], tuple[int, type[RequestError], str, str | None]] = {}
        self._valid: dict[str, int] = {}  # token hash -> until ms: upstream accepted it

    def scope(self, token: str) -> str:
        """A stable, salted identity of a token (for keys, limits, job ids)."""
        return token_hash(token, self._salt)

    def validated(self, scope: str) -> bool:
        """Whether upstream accepted the token with this ``scope`` within ``ttl_ms``."""
        return self._valid.get(scope, 0) > self._clock()

    def granted(self, scope: str, site: str) -> bool:
        """Whether the token with this ``scope`` may read ``site`` on what upstream said
        within ``ttl_ms`` (and has not refused the token since)."""
        now = self._clock()
        return self._granted.get((scope, site), 0) > now and self._valid.get(scope, 0) > now

    def accepted(self, token: str) -> None:
        """Upstream answered ``token`` with a success elsewhere (a pass-through)."""
        _bounded(self._valid)[self.scope(token)] = self._clock() + self.ttl_ms

    async def check(self, site: str, token: str, *, point: str | None = None) -> None:
        """Raise ``Unauthorized``/``Forbidden``/``NotFound`` unless ``token`` may read ``site``."""
        ask: Callable[[], Awaitable[object]]
        if site != UNKNOWN_SITE:
            check_site_name(site)
            subject, ask = site, lambda: self.upstream.site(site, token=token)
        elif point is not None:
            subject, ask = f"point:{point}", lambda: self.upstream.point(point, token=token)
        else:
            raise Forbidden("cannot establish access without a site or point")
        try:
            await self._ask(subject, token, ask)
        except NotFound as exc:
            what = f"site {site!r}" if site != UNKNOWN_SITE else f"point {point!r}"
            raise NotFound(
                f"unknown {what} ({exc.detail})", param="site" if site != UNKNOWN_SITE else "point"
            ) from exc

    async def validate(self, token: str) -> None:
        """``Unauthorized`` unless upstream accepts ``token`` (for listings of own things)."""
        scope = self.scope(token)
        if self.validated(scope):
            return
        # per_page=2 is the smallest page the Swagger's enum allows
        await self._ask(_ANY, token, lambda: self.upstream.sites_page(1, 2, token=token))

    async def _ask(self, subject: str, token: str, ask: Callable[[], Awaitable[object]]) -> None:
        scope = self.scope(token)
        key = (scope, subject)
        now = self._clock()
        if self.granted(scope, subject):  # not once upstream refused the token elsewhere
            return
        denied = self._denied.get(key)
        if denied is not None and denied[0] > now:
            refusal = denied[1](denied[2])  # a fresh error: no traceback piles up on a shared one
            refusal.upstream_message = denied[3]  # upstream's own words, as the first time
            raise refusal
        try:
            await ask()
        except (Unauthorized, Forbidden, NotFound) as exc:
            self._granted.pop(key, None)
            if isinstance(exc, Unauthorized):
                self._valid.pop(scope, None)
            denial = (now + self.deny_ttl_ms, type(exc), exc.detail, exc.upstream_message)
            _bounded(self._denied)[key] = denial
            raise
        self._denied.pop(key, None)
        _bounded(self._granted)[key] = now + self.ttl_ms
        _bounded(self._valid)[scope] = now + self.ttl_ms


def _bounded(table: dict[K, V]) -> dict[K, V]:
    if len(table) >= MAX_ENTRIES:
        # forget the oldest tenth (dicts keep insertion order)
        for key in list(table)[: MAX_ENTRIES // 10]:
            del table[key]
    return table
