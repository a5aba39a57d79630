"""Request bodies: bounded JSON objects, with a clear 400 naming what is wrong."""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request

from tsgate.errors import BadParameter


async def json_object(
    request: Request, *, max_bytes: int, shape: str = "a JSON object"
) -> dict[str, Any]:
    """The body as a JSON object; ``shape`` describes the expected object in errors."""
    raw = await request.body()
    if len(raw) > max_bytes:
        raise BadParameter("body", f"larger than {max_bytes} bytes")
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise BadParameter("body", f"not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadParameter("body", f"must be {shape}")
    return body
