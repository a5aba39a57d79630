"""The simulator's HTTP plumbing, as a Flask-RESTX server answers: replies other than
200, request-parser refusals (``{"errors": {param: why}, "message": …}``), files,
the 308 to a collection's declared spelling and the 404 of an unknown route."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tsgate.errors import BadParameter
from tsgate.wire.ace import parse_bool

INVALID = "Input payload validation failed"


class Reply(Exception):
    """An answer other than 200, raised by a handler: ``{"message"}`` (and Flask-RESTX's
    ``errors`` for a refused parameter)."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: Mapping[str, str] | None = None,
        *,
        errors: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})
        self.body: dict[str, Any] = {"message": message}
        if errors:
            # Flask-RESTX's request-parser refusal: {"errors": {param: why}, "message": …}
            self.body = {"errors": dict(errors), "message": message}


def json_response(obj: Any, status: int, headers: Mapping[str, str] | None = None) -> Response:
    return Response(
        msgspec.json.encode(obj), status, headers=dict(headers or {}), media_type="application/json"
    )


def bool_param(request: Request, name: str, *, default: bool) -> bool:
    raw = request.query_params.get(name)
    try:
        return parse_bool(name, raw, default=default)
    except BadParameter as exc:
        raise Reply(400, INVALID, errors={name: f"{raw!r} is not a valid boolean"}) from exc


def required_param(request: Request, name: str) -> str:
    raw = request.query_params.get(name)
    if not raw:
        raise Reply(400, INVALID, errors={name: "Missing required parameter in the query string"})
    return raw


def int_param(
    request: Request, name: str, help_text: str, default: int, choices: Collection[int] = ()
) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        reason = f"{help_text} invalid literal for int() with base 10: {raw!r}"
        raise Reply(400, INVALID, errors={name: reason}) from exc
    if choices and value not in choices:
        reason = f"{help_text} The value '{value}' is not a valid choice for '{name}'."
        raise Reply(400, INVALID, errors={name: reason})
    return value


def file_response(content: bytes, name: str) -> Response:
    filename = name.rsplit("/", 1)[-1]
    return Response(
        content,
        200,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def redirect_308(target: str) -> Callable[[Request], Awaitable[Response]]:
    """Werkzeug's answer to the undeclared spelling: 308 to the declared one, query kept."""

    async def redirect(request: Request) -> Response:
        location = str(request.url.replace(path=target))
        body = (
            "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n"
            "<h1>Redirecting...</h1>\n<p>You should be redirected automatically to the target"
            f' URL: <a href="{location}">{location}</a>. If not, click the link.\n'
        )
        return Response(body, 308, headers={"Location": location}, media_type="text/html")

    return redirect


async def no_route(scope: Scope, receive: Receive, send: Send) -> None:
    message = (
        "The requested URL was not found on the server. If you entered the URL manually"
        " please check your spelling and try again."
    )
    await json_response({"message": message}, 404)(scope, receive, send)
