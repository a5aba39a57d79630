"""HTTP on loopback, counting what crosses the wire (httpx decodes transparently)."""

from __future__ import annotations

import gzip
import time
from collections.abc import Mapping
from dataclasses import dataclass

import brotli
import httpx
import msgspec
import zstandard

MSGPACK = "application/x-msgpack"
IDENTITY = {"Accept-Encoding": "identity"}


@dataclass(frozen=True)
class Fetched:
    status: int
    headers: httpx.Headers
    wire_bytes: int  # the body as sent, before any Content-Encoding is undone
    body: bytes  # decoded
    elapsed_s: float

    def header(self, name: str, default: str = "?") -> str:
        return str(self.headers.get(name, default))

    def header_float(self, name: str) -> float | None:
        raw = self.headers.get(name)
        try:
            return float(raw) if raw is not None else None
        except ValueError:
            return None

    def decoded(self) -> object:
        if self.headers.get("content-type", "").startswith(MSGPACK):
            return msgspec.msgpack.decode(self.body)
        return msgspec.json.decode(self.body)

    def check(self, what: str) -> None:
        if self.status != 200:
            raise RuntimeError(f"{what}: HTTP {self.status}: {self.body[:300]!r}")


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    params: Mapping[str, str | int] | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_s: float = 60.0,
) -> Fetched:
    """GET ``url``; the wire size is counted from the raw stream."""
    sent = {**IDENTITY, **(headers or {})}
    started = time.perf_counter()
    chunks: list[bytes] = []
    async with client.stream("GET", url, params=params, headers=sent, timeout=timeout_s) as resp:
        async for chunk in resp.aiter_raw():
            chunks.append(chunk)
    elapsed_s = time.perf_counter() - started
    raw = b"".join(chunks)
    body = decompress(raw, resp.headers.get("content-encoding", ""))
    return Fetched(resp.status_code, resp.headers, len(raw), body, elapsed_s)


def decompress(raw: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding == "zstd":
        return zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    if encoding == "br":
        out: bytes = brotli.decompress(raw)
        return out
    if encoding == "gzip":
        return gzip.decompress(raw)
    raise RuntimeError(f"unexpected Content-Encoding {encoding!r}")
