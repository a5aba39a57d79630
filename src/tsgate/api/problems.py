"""Errors to ``application/problem+json``: the one table that assigns HTTP statuses."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from tsgate import errors

log = logging.getLogger("tsgate.api")

PROBLEM_TYPE = "application/problem+json"
TROUBLE_RETRY_AFTER_S = 5.0

# most specific first: the first isinstance match wins
STATUS: tuple[tuple[type[errors.TsgateError], int, str], ...] = (
    (errors.BadParameter, 400, "Bad parameter"),
    (errors.Unauthorized, 401, "Unauthorized"),
    (errors.Forbidden, 403, "Forbidden"),
    (errors.NotFound, 404, "Not found"),
    (errors.TooLarge, 413, "Request too large"),
    (errors.QuotaExceeded, 429, "Quota exceeded"),
    (errors.RateLimited, 429, "Too many requests"),
    (errors.RequestError, 400, "Bad request"),
    (errors.UpstreamCircuitOpen, 503, "Upstream unavailable"),
    (errors.UpstreamRateLimited, 503, "Upstream rate limited"),
    (errors.UpstreamTimeout, 504, "Upstream timeout"),
    (errors.UpstreamError, 502, "Upstream failure"),
    (errors.UpstreamBadAnswer, 502, "Bad upstream answer"),
    (errors.StorageError, 503, "Storage unavailable"),
    (errors.ConfigError, 500, "Misconfigured"),
    (errors.TsgateError, 500, "Internal error"),
)


def status_of(exc: errors.TsgateError) -> tuple[int, str]:
    for cls, status, title in STATUS:
        if isinstance(exc, cls):
            return status, title
    return 500, "Internal error"  # pragma: no cover - TsgateError is the last row


def problem(status: int, title: str, detail: str, **extra: Any) -> Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
        # ACE clients read `message` from error bodies: upstream's own text when it gave one
        "message": extra.pop("message", None) or detail,
    }
    headers = {}
    retry_after = extra.pop("retry_after_s", None)
    if retry_after is not None:
        headers["Retry-After"] = str(max(1, int(retry_after + 0.999)))
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(msgspec.json.encode(body), status, headers=headers, media_type=PROBLEM_TYPE)


async def tsgate_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.TsgateError)
    status, title = status_of(exc)
    if status >= 500 and not isinstance(exc, errors.UpstreamError | errors.UpstreamBadAnswer):
        log.error("request failed: %s", exc, exc_info=exc)
    retry_after_s = getattr(exc, "retry_after_s", None)
    if retry_after_s is None and status in (502, 503, 504):
        retry_after_s = TROUBLE_RETRY_AFTER_S  # upstream or storage trouble: come back later
    return problem(
        status,
        title,
        exc.detail,
        param=getattr(exc, "param", None),
        limit=getattr(exc, "limit", None),
        retry_after_s=retry_after_s,
        message=exc.upstream_message,
    )


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if exc.status_code != 404 else f"no route for {request.url.path}"
    return problem(exc.status_code, _title(exc.status_code), str(detail))


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "Internal error", "an unexpected error occurred; it has been logged")


def _title(status: int) -> str:
    return {404: "Not found", 405: "Method not allowed"}.get(status, "Error")


HANDLERS = {
    errors.TsgateError: tsgate_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
