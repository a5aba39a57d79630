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
from tsgate.series.model import Series
from tsgate.upstream.breaker import CircuitBreaker


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


class Upstream(Protocol):
    counters: UpstreamCounters
    breaker: CircuitBreaker  # open: calls fail fast with UpstreamCircuitOpen

    async def get_json(
        self, path: str, *, token: str, params: Mapping[str, str | int] | None = None
    ) -> Any:
        """GET an upstream JSON document (``path`` relative to the API base, e.g. ``/sites``)."""

    def site_pages(
        self, site: str, start_ms: int, end_ms: int, *, token: str, raw: bool, page_size: int
    ) -> AsyncIterator[dict[str, Series]]:
        """The site's paginated stream, one dict of per-point series per upstream page."""

    async def points_series(
        self, names: Sequence[str], start_ms: int, end_ms: int, *, token: str
    ) -> dict[str, Series]:
        """Raw samples of the named points (per-point reads in parallel, bounded)."""

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

    async def aclose(self) -> None: ...
