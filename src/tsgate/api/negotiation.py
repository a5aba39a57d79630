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
    """MessagePack when ``?format=msgpack``, or when ``Accept`` rates it above zero and
    no lower than JSON (``q`` values honoured: ``application/x-msgpack;q=0`` is a no)."""
    if fmt is not None:
        return fmt == "msgpack"
    if "msgpack" not in accept:
        return False
    rated = _accept_q(accept)
    packed = max(rated.get(MSGPACK, 0.0), rated.get("application/msgpack", 0.0))
    plain = max(rated.get(JSON, 0.0), rated.get("application/*", 0.0), rated.get("*/*", 0.0))
    return packed > 0 and packed >= plain


def _accept_q(header: str) -> dict[str, float]:
    """Media ranges of an ``Accept`` or ``Accept-Encoding`` header and their ``q`` (0–1)."""
    offered: dict[str, float] = {}
    for part in header.split(","):
        token, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(1.0, max(0.0, float(value)))
                except ValueError:
                    q = 0.0
        if token:
            offered[token.lower()] = max(q, offered.get(token.lower(), 0.0))
    return offered


def choose_encoding(accept_encoding: str) -> str | None:
    """The best encoding the client accepts (q=0 excludes one)."""
    offered = _accept_q(accept_encoding)
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
