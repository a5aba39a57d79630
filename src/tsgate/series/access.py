"""Who may read what: cached data is shared only with tokens upstream lets read the site.

A token's access to a site is asked of upstream (a cheap ``GET /sites/{site}``) and the
answer cached for ``ttl_ms`` under a salted hash of the token, never the token itself.
A token upstream rejects gets 401 even when everything it asks for is cached.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from urllib.parse import quote

from tsgate.errors import Forbidden, NotFound, Unauthorized
from tsgate.upstream.base import Upstream

UNKNOWN_SITE = "_"


def token_hash(token: str, salt: bytes) -> str:
    """A salted hash identifying a token in keys, limits and stats (the token never is)."""
    return hashlib.blake2b(token.encode(), key=salt[:64], digest_size=16).hexdigest()


class AccessCheck:
    def __init__(
        self,
        upstream: Upstream,
        salt: bytes,
        *,
        ttl_ms: int = 300_000,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self.upstream = upstream
        self.ttl_ms = ttl_ms
        self._salt = salt
        self._clock = clock_ms or (lambda: int(time.time() * 1000))
        self._granted: dict[tuple[str, str], int] = {}  # (token hash, site) -> until ms

    def scope(self, token: str) -> str:
        """A stable, salted identity of a token (for keys, limits, job ids)."""
        return token_hash(token, self._salt)

    async def check(self, site: str, token: str, *, point: str | None = None) -> None:
        """Raise ``Unauthorized``/``Forbidden``/``NotFound`` unless ``token`` may read ``site``."""
        subject = site if site != UNKNOWN_SITE else f"point:{point}"
        key = (self.scope(token), subject)
        now = self._clock()
        if self._granted.get(key, 0) > now:
            return
        if site != UNKNOWN_SITE:
            path = f"/sites/{quote(site, safe='')}"
        elif point is not None:
            path = f"/points/{quote(point, safe='')}"
        else:
            raise Forbidden("cannot establish access without a site or point")
        try:
            await self.upstream.get_json(path, token=token)
        except NotFound as exc:
            what = f"site {site!r}" if site != UNKNOWN_SITE else f"point {point!r}"
            raise NotFound(
                f"unknown {what} ({exc.detail})", param="site" if site != UNKNOWN_SITE else "point"
            ) from exc
        except (Unauthorized, Forbidden):
            self._granted.pop(key, None)
            raise
        if len(self._granted) > 100_000:  # bounded: forget the oldest grants
            self._granted.clear()
        self._granted[key] = now + self.ttl_ms
