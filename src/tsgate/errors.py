"""One error tree for tsgate.

    TsgateError
    ├── ConfigError               bad TSGATE_* setting or unknown URL scheme
    ├── MissingDependency         an optional driver is not installed (names the extra)
    ├── RequestError              the caller asked for something wrong (4xx)
    │   ├── BadParameter          a query/body parameter is missing or invalid (names it)
    │   ├── Unauthorized          no token, or a token upstream rejects
    │   ├── Forbidden             a token without access to what it asks for
    │   ├── NotFound              unknown site, point, job or path
    │   ├── TooLarge              the request exceeds a limit (names the limit)
    │   └── RateLimited           too many requests (carries retry_after_s)
    │       └── QuotaExceeded     the caller keeps too many things (names the limit)
    ├── UpstreamError             the ACE API failed us (5xx towards the caller)
    │   ├── UpstreamUnavailable   connection refused, 5xx after retries, truncated bodies
    │   │   ├── UpstreamCircuitOpen   failing fast: upstream failed too often (retry_after_s)
    │   │   └── UpstreamRateLimited   upstream still answers 429 after retries (retry_after_s)
    │   └── UpstreamTimeout       no answer in time
    ├── UpstreamBadAnswer         upstream answered, but not what the request needs (HTML, empty)
    └── StorageError              an object store, database, cache or queue backend failed

HTTP status codes are assigned in one table, ``tsgate.api.problems``; code raising
these errors never chooses a status.
"""

from __future__ import annotations


class TsgateError(Exception):
    """Base of every error tsgate raises on purpose."""

    # upstream's own error text, kept as the problem's `message` on drop-in paths
    upstream_message: str | None = None

    def __init__(self, detail: str, *, param: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.param = param  # the request parameter at fault, when there is one


class ConfigError(TsgateError):
    """A setting is missing or invalid, or a URL names an unsupported scheme."""


class MissingDependency(TsgateError):
    """An optional backend driver is not installed."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"the {package!r} package is needed for this backend: pip install 'tsgate[{extra}]'"
        )
        self.package = package
        self.extra = extra


class RequestError(TsgateError):
    """The caller's request cannot be served as asked."""


class BadParameter(RequestError):
    """A parameter is missing or invalid; ``param`` names it."""

    def __init__(self, param: str, detail: str) -> None:
        super().__init__(f"{param}: {detail}", param=param)


class Unauthorized(RequestError):
    """No token was given, or upstream rejected it."""


class Forbidden(RequestError):
    """The token is valid but may not read what it asked for."""


class NotFound(RequestError):
    """The site, point, job or path does not exist."""


class TooLarge(RequestError):
    """The request exceeds a configured limit; ``limit`` names it."""

    def __init__(self, limit: str, detail: str) -> None:
        super().__init__(detail)
        self.limit = limit


class RateLimited(RequestError):
    """The caller exceeded its request budget."""

    def __init__(self, detail: str, retry_after_s: float) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class QuotaExceeded(RateLimited):
    """The caller already keeps as many saved charts or open jobs as allowed."""

    def __init__(self, limit: str, detail: str, retry_after_s: float = 60.0) -> None:
        super().__init__(detail, retry_after_s)
        self.limit = limit


class UpstreamError(TsgateError):
    """The upstream ACE API failed."""


class UpstreamUnavailable(UpstreamError):
    """Upstream refused, failed with 5xx/429 after retries, or sent a broken body."""


class UpstreamCircuitOpen(UpstreamUnavailable):
    """Upstream failed too often lately: calls fail fast until ``retry_after_s`` passes."""

    def __init__(self, detail: str, retry_after_s: float) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class UpstreamRateLimited(UpstreamUnavailable):
    """Upstream kept answering 429; ``retry_after_s`` is what it asked for (uncapped)."""

    def __init__(self, detail: str, retry_after_s: float | None) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class UpstreamTimeout(UpstreamError):
    """Upstream did not answer within the deadline."""


class UpstreamBadAnswer(TsgateError):
    """Upstream answered, but not with what the request needs (not JSON, empty, an
    off-origin redirect). Not an ``UpstreamError``: upstream is alive, so the circuit
    breaker does not count it, and retrying would get the same answer."""


class StorageError(TsgateError):
    """A storage backend (objects, database, cache, queue) failed."""
