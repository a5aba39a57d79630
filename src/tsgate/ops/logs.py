"""Logging: one JSON object per line, each carrying the request id of the request that
caused it (or none, for background work), for tsgate's own loggers and uvicorn's.

Credentials in URLs (``redis://user:pass@host``) are replaced by ``***`` in every line.
``TSGATE_LOG_FORMAT=text`` gives plain lines for a terminal; ``TSGATE_LOG_LEVEL`` (or
``tsgate serve --log-level``) sets the level. The request id lives in a context
variable set by the telemetry middleware, so every line logged while serving a request
(and in tasks it starts) carries it without being passed around.
"""

from __future__ import annotations

import contextvars
import logging
import re
import sys
from typing import Any

import msgspec

from tsgate.clock import format_utc
from tsgate.errors import ConfigError

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "tsgate_request_id", default=None
)
FORMATS = ("json", "text")
# user:password@ (or a token@) in any URL: the credentials are never written out
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
_FIELDS = "fields"  # log.info(..., extra={"fields": {...}}): merged into the line


class RequestIdFilter(logging.Filter):
    """Stamps each record with the request id of the context it was logged in (a handler
    filter runs at the call to the logger, while that context is still current)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        return True


def redact(text: str) -> str:
    """``text`` with the credentials of every URL in it replaced by ``***``."""
    return _URL_CREDENTIALS.sub(r"\g<scheme>***@", text)


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "request_id"?, "message", …fields, "error"?}``."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": format_utc(int(record.created * 1000)),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        request_id = getattr(record, "request_id", None)
        if request_id:
            line["request_id"] = request_id
        line["message"] = record.getMessage()
        fields = getattr(record, _FIELDS, None)
        if isinstance(fields, dict):
            line.update(fields)
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        return redact(msgspec.json.encode(line).decode())


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = redact(super().format(record))
        request_id = getattr(record, "request_id", None)
        return f"{text} [{request_id}]" if request_id else text


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is logged (embedders and test
    runners swap it; a stream bound once could be closed by then)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure(*, level: str = "info", fmt: str = "json") -> None:
    """Send every log line to stderr in ``fmt`` at ``level``; calling it again replaces
    what it set up before, and leaves other handlers (a test runner's) alone."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ConfigError(f"log level {level!r}: expected debug, info, warning or error")
    if fmt not in FORMATS:
        raise ConfigError(f"TSGATE_LOG_FORMAT={fmt!r}: expected one of {', '.join(FORMATS)}")
    handler = StderrHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    # one line per upstream page is noise next to the access line (metrics count them)
    logging.getLogger("httpx").setLevel(max(numeric, logging.WARNING))
    # uvicorn's loggers keep no handlers of their own: their lines come out like ours
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
