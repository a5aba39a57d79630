"""Content negotiation: JSON or MessagePack by ``Accept``/``?format``, compression by
``Accept-Encoding`` (zstd, then br, then gzip)."""

from __future__ import annotations

import gzip
from collections.abc import Mapping
from typing import Any

import brotli
import msgspec
import zstandard
from starlette.requests import Request
from starlette.responses import Response

from tsgate.errors import BadParameter

MSGPACK = "application/x-msgpack"
JSON = "application/json"
COMPRESS_MIN_BYTES = 1024  # without an app lifespan (TSGATE_COMPRESS_MIN_BYTES sets it)
_ENCODINGS = ("zstd", "br", "gzip")


def wants_msgpack(request: Request) -> bool:
    return msgpack_for(
        checked_format(request.query_params.get("format")), request.headers.get("accept", "")
    )


def checked_format(fmt: str | None) -> str | None:
    """``?format=``, lower-cased: ``json``, ``msgpack`` or ``None`` (then ``Accept`` decides)."""
    if fmt is None:
        return None
    lowered = fmt.lower()
    if lowered not in ("msgpack", "json"):
        raise BadParameter("format", f"{fmt!r} is not one of json, msgpack")
    return lowered


def msgpack_for(fmt: str | None, accept: str) -> bool:
    if fmt is not None:
        return fmt == "msgpack"
    return MSGPACK in accept or "application/msgpack" in accept


def choose_encoding(accept_encoding: str) -> str | None:
    """The best encoding the client accepts (q=0 excludes one)."""
    offered: dict[str, float] = {}
    for part in accept_encoding.split(","):
        token, _, params = part.strip().partition(";")
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        if token:
            offered[token.strip().lower()] = q
    for name in _ENCODINGS:
        if offered.get(name, offered.get("*", 0.0)) > 0:
            return name
    return None


def compress_min_bytes(request: Request) -> int:
    """Bodies shorter than this go uncompressed: the app's lifespan state sets it."""
    value = getattr(request.state, "compress_min_bytes", None)
    return COMPRESS_MIN_BYTES if value is None else int(value)


def compress(body: bytes, encoding: str) -> bytes:
    if encoding == "zstd":
        return zstandard.ZstdCompressor(level=3).compress(body)
    if encoding == "br":
        result: bytes = brotli.compress(body, quality=5)
        return result
    return gzip.compress(body, compresslevel=6)


def encode_body(obj: Any, msgpack: bool) -> tuple[bytes, str]:
    if msgpack:
        return msgspec.msgpack.encode(obj), MSGPACK
    return msgspec.json.encode(obj), JSON


def respond(
    request: Request,
    obj: Any,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Encode ``obj`` as the client asked and compress it when worth it."""
    body, media_type = encode_body(obj, wants_msgpack(request))
    return compressed(request, body, media_type, status=status, headers=headers)


def compressed(
    request: Request,
    body: bytes,
    media_type: str,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    out = dict(headers or {})
    out["Vary"] = "Accept, Accept-Encoding"
    encoding = None
    if len(body) >= compress_min_bytes(request):
        encoding = choose_encoding(request.headers.get("accept-encoding", ""))
    if encoding is not None:
        body = compress(body, encoding)
        out["Content-Encoding"] = encoding
    return Response(body, status, headers=out, media_type=media_type)
