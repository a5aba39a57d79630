"""Large ACE sample answers (``{"point_samples": [...]}``) streamed with bounded memory.

A drop-in answer of millions of rows is about 150 bytes of JSON per sample; built whole
it needs the body several times over (rows, encoded bytes, compressed bytes, transport
buffer). Streamed, the rows are made and encoded ``BLOCK_ROWS`` at a time and compressed
incrementally, so memory beyond the samples themselves is one block. The bytes are the
same object either way: JSON (or MessagePack) of ``{"point_samples": rows}``, rows
grouped by point in the order given, each point's in time order (as upstream answers).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Sequence

import brotli
import msgspec
import numpy as np
import zstandard
from starlette.requests import Request
from starlette.responses import StreamingResponse

from tsgate.api.negotiation import JSON, MSGPACK, choose_encoding, wants_msgpack
from tsgate.core.model import Series
from tsgate.wire.ace import format_times, format_values

BLOCK_ROWS = 20_000
STREAM_MIN_ROWS = 100_000  # smaller answers are built whole (and get an exact length)
_KEY = "point_samples"


def total_rows(series: Sequence[Series]) -> int:
    return sum(len(s) for s in series)


def stream_samples(request: Request, series: Sequence[Series]) -> StreamingResponse:
    msgpack = wants_msgpack(request)
    encoding = choose_encoding(request.headers.get("accept-encoding", ""))
    body = _blocks(series, msgpack)
    headers = {"Vary": "Accept, Accept-Encoding"}
    if encoding is not None:
        headers["Content-Encoding"] = encoding
        body = _compressed(body, encoding)
    return StreamingResponse(body, media_type=MSGPACK if msgpack else JSON, headers=headers)


def _blocks(series: Sequence[Series], msgpack: bool) -> Iterator[bytes]:
    parts = [s for s in series if len(s)]
    t = np.concatenate([s.t_ms for s in parts])
    us = np.concatenate([s.us if s.us is not None else np.zeros(len(s), np.uint16) for s in parts])
    v = np.concatenate([s.v for s in parts])
    idx = np.concatenate([np.full(len(s), i, dtype=np.int32) for i, s in enumerate(parts)])
    order = np.arange(t.size)
    names = [s.name for s in parts]
    n = int(t.size)
    if msgpack:
        yield b"\x81" + msgspec.msgpack.encode(_KEY) + b"\xdd" + struct.pack(">I", n)
    else:
        yield b'{"' + _KEY.encode() + b'":['
    for start in range(0, n, BLOCK_ROWS):
        take = order[start : start + BLOCK_ROWS]
        rows = [
            {"name": names[i], "value": val, "time": tm}
            for i, val, tm in zip(
                idx[take].tolist(),
                format_values(v[take]),
                format_times(t[take], us[take]),
                strict=True,
            )
        ]
        if msgpack:
            yield b"".join(msgspec.msgpack.encode(r) for r in rows)
        else:
            encoded = msgspec.json.encode(rows)[1:-1]  # the items, without [ ]
            yield (b"," if start else b"") + encoded
    if not msgpack:
        yield b"]}"


def _compressed(blocks: Iterator[bytes], encoding: str) -> Iterator[bytes]:
    if encoding == "zstd":
        zc = zstandard.ZstdCompressor(level=3).compressobj()
        for block in blocks:
            yield zc.compress(block)
        yield zc.flush()
    elif encoding == "br":
        bc = brotli.Compressor(quality=5)
        for block in blocks:
            yield bc.process(block)
        yield bc.finish()
    else:
        gz = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # the gzip container
        for block in blocks:
            yield gz.compress(block)
        yield gz.flush()
