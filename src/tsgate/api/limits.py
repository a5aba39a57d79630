"""Request limits in one place: body size, points per request and range length.

The ACE drop-in paths and the chart API call the same checks, so a limit is named and
worded the same everywhere (413 problems with ``limit`` naming the setting).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tsgate.api.files import upload_limit_bytes
from tsgate.api.problems import tsgate_error
from tsgate.errors import BadParameter, TooLarge
from tsgate.series.chart import ChartQuery, estimate_samples
from tsgate.series.options import ReadLimits
from tsgate.services import Services

DAY_MS = 86_400_000
SAMPLE_MS = 300_000  # the 5-minute cadence that sample estimates assume
# the times an ISO 8601 parameter can name (years 1 to 9999), as epoch milliseconds
MIN_TIME_MS = -62_135_596_800_000
MAX_TIME_MS = 253_402_300_799_999


def over_points_limit(limits: ReadLimits, count: int) -> int | None:
    """The points-per-request limit when ``count`` points pass it; ``None`` within it."""
    limit = limits.max_points_per_request
    return limit if 0 < limit < count else None


def check_points(limits: ReadLimits, names: Sequence[str], param: str) -> None:
    limit = over_points_limit(limits, len(names))
    if limit is not None:
        raise TooLarge(
            "max_points_per_request",
            f"{param}: {len(names)} points; at most {limit} per request",
        )


def check_range(limits: ReadLimits, start_ms: int, end_ms: int, param: str = "end_time") -> None:
    limit = limits.max_range_days
    if limit > 0 and end_ms - start_ms > limit * DAY_MS:
        days = (end_ms - start_ms) / DAY_MS
        raise TooLarge(
            "max_range_days",
            f"{param}: the range spans {days:.1f} days; at most {limit} days per request",
        )


def check_time_ms(param: str, ms: int) -> int:
    """An epoch-ms time within the years an ISO time can name, else a 400 naming ``param``."""
    if not MIN_TIME_MS <= ms <= MAX_TIME_MS:
        raise BadParameter(param, f"{ms} is outside the years 1 to 9999 (epoch milliseconds)")
    return ms


def check_samples(limits: ReadLimits, q: ChartQuery) -> None:
    """Raw answers larger than ``max_inline_samples`` are refused with suggestions."""
    if q.interval != "raw" or q.max_points is not None:
        return
    estimated = estimate_samples(q)
    if estimated > limits.max_inline_samples:
        raise TooLarge(
            "max_inline_samples",
            f"about {estimated:,} raw samples; "
            f"at most {limits.max_inline_samples:,} inline — add max_points=N "
            "(downsampled), interval=1h|1d (aggregated), or submit a job (POST /api/jobs)",
        )


def check_drop_in_samples(limits: ReadLimits, points: int, start_ms: int, end_ms: int) -> None:
    """The chart API's sample budget for an unpaged drop-in read (``max_inline_samples``)."""
    estimated = (end_ms - start_ms) // SAMPLE_MS * points
    if estimated > limits.max_inline_samples:
        raise TooLarge(
            "max_inline_samples",
            f"about {estimated:,} samples; at most {limits.max_inline_samples:,} in one "
            "answer — ask for a shorter range or fewer points, or page through "
            "/api/sites/{site}/timeseries/paginated",
        )


# what a refused drop-in read can do instead (other readers that cannot become a job say
# their own)
FETCH_BUDGET_HINT = "ask for a shorter range, or submit a job (POST /api/jobs)"


async def check_fetch_budget(
    services: Services,
    site: str,
    names: Sequence[str],
    start_ms: int,
    end_ms: int,
    token: str,
    *,
    hint: str = FETCH_BUDGET_HINT,
) -> None:
    """The chart API's inline fetch budget (``inline_fetch_samples``) for a read that
    cannot become a job (a drop-in page, quality, an image, a live stream): too much to
    fetch from upstream now is a 413 saying ``hint``."""
    budget = services.settings.inline_fetch_samples
    if budget <= 0:
        return
    missing = await services.reader.missing_samples(site, names, start_ms, end_ms, token=token)
    refuse_over_fetch_budget(services.settings, missing, hint=hint)


def refuse_over_fetch_budget(
    limits: ReadLimits, missing: int, *, hint: str = FETCH_BUDGET_HINT
) -> None:
    """A 413 when ``missing`` samples to fetch now exceed ``inline_fetch_samples``."""
    budget = limits.inline_fetch_samples
    if budget > 0 and missing > budget:
        raise TooLarge(
            "inline_fetch_samples",
            f"about {missing:,} samples must first be fetched from upstream; at most "
            f"{budget:,} inline — {hint}",
        )


_CONTROL = re.compile(rb"%[01][0-9a-f]|%7f|[\x00-\x1f\x7f]", re.IGNORECASE)


class UrlGuardMiddleware:
    """Refuses API URLs holding control characters (``%00``…``%1F``, ``%7F``) with a 400: no
    site, point, id or parameter has them, and databases refuse NUL in text."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/api/"):
            raw = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
            where = "path" if _CONTROL.search(raw) else None
            if where is None and _CONTROL.search(scope.get("query_string", b"")):
                where = "query"
            if where is not None:
                refusal = BadParameter(where, "holds a control character (such as NUL)")
                response = await tsgate_error(Request(scope), refusal)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _body_limit(services: Services | None, scope: Scope) -> int:
    if services is None:
        return 0
    settings = services.settings
    if scope.get("path") == "/api/files" and scope.get("method") == "POST":
        return upload_limit_bytes(settings.max_file_bytes)  # uploads have their own bound
    return settings.max_body_bytes


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Refuses request bodies over ``max_body_bytes`` with a 413 naming the limit:
    at once by ``Content-Length``, or as soon as a streamed body passes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        services: Services | None = scope.get("state", {}).get("services")
        limit = _body_limit(services, scope)
        if scope["type"] != "http" or limit <= 0:
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send, limit)
            return
        if b"transfer-encoding" not in headers:
            # no body, or one framed by a Content-Length already checked: nothing to count
            await self.app(scope, receive, send)
            return
        received = 0
        started = False

        async def receive_counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise _BodyTooLarge
            return message

        async def send_tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_counted, send_tracked)
        except _BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send, limit)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        refusal = TooLarge("max_body_bytes", f"the request body is over the limit of {limit} bytes")
        response = await tsgate_error(Request(scope), refusal)
        await response(scope, receive, send)
