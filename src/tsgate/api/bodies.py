"""Request bodies: bounded JSON objects, with a clear 400 naming what is wrong."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request

from tsgate.errors import BadParameter

MAX_DEPTH = 32  # no request body tsgate reads nests deeper


async def json_object(
    request: Request, *, max_bytes: int, shape: str = "a JSON object"
) -> dict[str, Any]:
    """The body as a JSON object; ``shape`` describes the expected object in errors."""
    raw = await request.body()
    if len(raw) > max_bytes:
        raise BadParameter("body", f"larger than {max_bytes} bytes")
    body = decode_json(raw)
    if not isinstance(body, dict):
        raise BadParameter("body", f"must be {shape}")
    return body


def decode_json(raw: bytes) -> Any:
    """JSON nested at most ``MAX_DEPTH`` deep; anything else is a 400 naming the body."""
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise BadParameter("body", f"not JSON: {exc}") from exc
    except RecursionError as exc:
        raise BadParameter("body", f"nested deeper than {MAX_DEPTH} levels") from exc
    if _depth(body) > MAX_DEPTH:
        raise BadParameter("body", f"nested deeper than {MAX_DEPTH} levels")
    return body


def _depth(value: Any) -> int:
    deepest, level = 0, [value]
    while level:
        deepest += 1
        if deepest > MAX_DEPTH:
            return deepest
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, dict | list)
        ]
    return deepest
