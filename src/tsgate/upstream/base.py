"""The upstream seam: what tsgate needs from an ACE API.

Adapters raise only ``tsgate.errors`` (``Unauthorized``, ``Forbidden``, ``NotFound``,
``BadParameter``, ``UpstreamUnavailable`` (``UpstreamCircuitOpen`` when failing fast),
``UpstreamTimeout``); a short or broken answer is an error, never a silently short result.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tsgate.errors import (
    BadParameter,
    Forbidden,
    NotFound,
    RequestError,
    Unauthorized,
    UpstreamError,
    UpstreamUnavailable,
)
from tsgate.samples import Series


def upstream_error(status: int, message: str, path: str) -> UpstreamError | RequestError:
    """The error for upstream's refusal ``status`` of ``path``, carrying its ``message``:
    401, 403, 404 and 400/422 are the caller's (passed on as such), the rest upstream's."""
    error: UpstreamError | RequestError
    if status == 401:
        error = Unauthorized(f"upstream rejected the token: {message}")
    elif status == 403:
        error = Forbidden(f"upstream refused access: {message}")
    elif status == 404:
        error = NotFound(f"upstream: {message}")
    elif status in (400, 422):
        error = BadParameter("upstream", message)
    else:
        error = UpstreamUnavailable(f"upstream {path}: HTTP {status}: {message}")
    error.upstream_message = message
    return error


@dataclass(frozen=True)
class Forwarded:
    """An upstream answer passed through unchanged (for paths tsgate does not model)."""

    status: int
    content: bytes
    content_type: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class UpstreamCounters:
    """What was asked of upstream, for stats and for tests that assert zero calls."""

    requests: int = 0
    retries: int = 0
    samples: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class Page:
    """One page of an upstream listing (``/sites``, a site's ``configured_points``): its
    objects (only those that are JSON objects) and the total upstream claims, if any."""

    items: list[dict[str, Any]]
    total: int | None


@dataclass(frozen=True)
class SitePage:
    """One page of a site's paginated stream, parsed into per-point series."""

    series: dict[str, Series]
    has_more: bool
    next_cursor: str | None


class AceReads(Protocol):
    """The adapter's side of the seam: typed reads of one upstream request each (after
    the adapter's own retries), nothing more. ``upstream.guarded.GuardedUpstream`` wraps
    it with the circuit breaker, the counters and the fan-out of long reads; an adapter
    reports each HTTP request, retry and sample row it makes to ``upstream.metering``."""

    async def sites_page(self, page: int, per_page: int, *, token: str) -> Page: ...

    async def site(self, site: str, *, token: str) -> dict[str, Any]:
        """The site's object (a ``NotFound``, ``Forbidden`` or ``Unauthorized`` when the
        token may not see it)."""
        ...

    async def point(self, name: str, *, token: str) -> dict[str, Any]: ...

    async def configured_points_page(
        self, site: str, page: int, per_page: int, *, token: str
    ) -> Page: ...

    async def point_window(self, name: str, start_ms: int, end_ms: int, *, token: str) -> Series:
        """One point's raw samples in ``[start_ms, end_ms)`` (at most a month)."""
        ...

    async def points_batch(
        self, names: Sequence[str], start_ms: int, end_ms: int, *, token: str
    ) -> dict[str, Series]:
        """Raw samples of a few points over a short span, in one request."""
        ...

    async def site_page(
        self,
        site: str,
        start_ms: int,
        end_ms: int,
        *,
        token: str,
        raw: bool,
        page_size: int,
        cursor: str | None,
    ) -> SitePage: ...

    async def forward(
        self,
        method: str,
        path: str,
        *,
        token: str,
        query: str = "",
        body: bytes = b"",
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Forwarded:
        """Pass a request through (path relative to the API base, query already encoded);
        ``headers`` are the caller's, of which the end-to-end ones are passed on."""
        ...

    async def aclose(self) -> None: ...


class Upstream(Protocol):
    """What the domain reads from upstream: typed reads only (no path a feature builds),
    long reads fanned out. Failing fast while upstream is down is the implementation's
    business (``UpstreamCircuitOpen``)."""

    async def sites_page(self, page: int, per_page: int, *, token: str) -> Page: ...

    async def site(self, site: str, *, token: str) -> dict[str, Any]: ...

    async def point(self, name: str, *, token: str) -> dict[str, Any]: ...

    async def configured_points_page(
        self, site: str, page: int, per_page: int, *, token: str
    ) -> Page: ...

    def site_pages(
        self, site: str, start_ms: int, end_ms: int, *, token: str, raw: bool, page_size: int
    ) -> AsyncIterator[dict[str, Series]]:
        """The site's paginated stream, one dict of per-point series per upstream page."""
        ...

    async def points_series(
        self, names: Sequence[str], start_ms: int, end_ms: int, *, token: str
    ) -> dict[str, Series]:
        """Raw samples of the named points (per-point reads in parallel, bounded)."""
        ...

    async def points_request(
        self, names: Sequence[str], start_ms: int, end_ms: int, *, token: str
    ) -> dict[str, Series]:
        """Raw samples of the named points in ONE upstream request: one point's window
        (at most a month), or one batch of several points."""
        ...

    async def forward(
        self,
        method: str,
        path: str,
        *,
        token: str,
        query: str = "",
        body: bytes = b"",
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Forwarded:
        """Pass a request through; its answers never count as upstream's health."""
        ...

    async def aclose(self) -> None: ...
