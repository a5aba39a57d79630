"""The storage codec: how a point's chunk and a rollup blob are laid out as bytes.

This is not the wire codec (STYLE.md §5): changing a response never touches these bytes.

Chunk (``encode_series``), little-endian::

    0   4s  magic b"TSGC"
    4   u8  version (1, or 2 when sub-millisecond times are kept)
    5   u8  flags (0; unknown bits are refused so a future transform cannot be misread)
    6   u16 reserved (0)
    8   u32 sample count n
    12  i64 first time (ms); 0 when n == 0
    20  zstd-1 frame (with checksum) of: int64[n-1] time deltas, float64[n] values,
        and in version 2 uint16[n] sub-millisecond parts (0–999 µs) of the times

A series without microseconds is written as version 1, byte for byte as before, and
every version-1 chunk still decodes (its microseconds are zero). Upstream's times carry
microseconds; keeping them costs 1.8 bytes per sample more after zstd on a demo day
(6.4 instead of 4.7; ``docs/benchmarks.md``, scenario g): the sub-millisecond jitter of
report times is noise that does not compress.

Values are stored as plain float64. XOR-with-previous and byte-shuffle were measured on
5-minute zone temperatures (2-decimal readings with a few seconds of jitter): both made
the chunk *larger* (zstd already finds the repeated byte patterns), and shuffle saved
only ~15% on full-precision noise, under the 20% bar, so the simpler layout stays.

Columns (``pack_columns``)::

    0   4s  magic b"TSGK"
    4   u8  version (1)
    5   u8  flags (0)
    6   u16 column count
    8   zstd-3 frame of, per column: u16 name length, name (UTF-8), u8 dtype length,
        dtype (numpy ``str``, e.g. "<f8"), u64 element count, raw little-endian data

Decoded arrays are read-only views of the decompressed buffer: a cached chunk may be
shared by many requests, so accidental in-place edits must fail loudly.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import zstandard

from tsgate.core.model import Series

SERIES_MAGIC = b"TSGC"
COLUMNS_MAGIC = b"TSGK"
VERSION = 1  # the columns blob, and a chunk without microseconds
VERSION_MICROS = 2  # a chunk that keeps the sub-millisecond part of its times
ZSTD_LEVEL = 3  # the columns blob (rollups)
# a chunk: level 1 compresses a month of demo samples twice as fast as level 3 to the
# same size (3.10:1 both, 0.1% apart); rollup columns grow 16% at level 1, so stay at 3
CHUNK_ZSTD_LEVEL = 1

_SERIES_HEADER = struct.Struct("<4sBBHIq")
_COLUMNS_HEADER = struct.Struct("<4sBBH")
_NAME_LEN = struct.Struct("<H")
_DTYPE_LEN = struct.Struct("<B")
_COUNT = struct.Struct("<Q")
# Plain numeric kinds only: bool, signed, unsigned, float. No objects, no strings.
_ALLOWED_KINDS = frozenset("biuf")
_MAX_PAYLOAD_BYTES = 1 << 32


class CodecError(ValueError):
    """Stored bytes are not something this codec wrote (bad magic, version, truncation)."""


# one compressor per level and one decompressor per thread (they are not thread-safe):
# making one per blob cost about as much as compressing a day's chunk
_CODERS = threading.local()


def _compressor(level: int) -> zstandard.ZstdCompressor:
    made: dict[int, zstandard.ZstdCompressor] | None = getattr(_CODERS, "compressors", None)
    if made is None:
        made = _CODERS.compressors = {}
    compressor = made.get(level)
    if compressor is None:
        compressor = made[level] = zstandard.ZstdCompressor(level=level, write_checksum=True)
    return compressor


def _decompressor() -> zstandard.ZstdDecompressor:
    made: zstandard.ZstdDecompressor | None = getattr(_CODERS, "decompressor", None)
    if made is None:
        made = _CODERS.decompressor = zstandard.ZstdDecompressor()
    return made


def _compress(payload: bytes, level: int = ZSTD_LEVEL) -> bytes:
    return _compressor(level).compress(payload)


def _decompress(frame: bytes, expected_size: int | None) -> bytes:
    """Decompress one frame, refusing a declared size other than the one the header implies."""
    try:
        declared = zstandard.frame_content_size(frame)
    except zstandard.ZstdError as exc:
        raise CodecError(f"not a zstd frame: {exc}") from exc
    if declared < 0 or (expected_size is not None and declared != expected_size):
        raise CodecError(f"payload declares {declared} bytes, header implies {expected_size}")
    if declared > _MAX_PAYLOAD_BYTES:
        raise CodecError(f"payload of {declared} bytes is larger than any blob we write")
    try:
        return _decompressor().decompress(frame, max_output_size=declared)
    except zstandard.ZstdError as exc:
        _CODERS.decompressor = None  # never reused after a failure
        raise CodecError(f"corrupt or truncated payload: {exc}") from exc


def encode_series(s: Series) -> bytes:
    """One point's samples as a self-describing chunk; times must be strictly ascending."""
    n = len(s)
    if s.v.size != n:
        raise ValueError(f"{s.name}: {n} times but {s.v.size} values")
    deltas = np.diff(s.t_ms).astype("<i8", copy=False)
    if bool(np.any(deltas <= 0)):
        raise ValueError(f"{s.name}: times must be strictly ascending to be stored")
    first_ms = int(s.t_ms[0]) if n else 0
    micros = s.us is not None and n > 0 and bool(s.us.any())
    if micros and (s.us is None or s.us.size != n or int(s.us.max()) > 999):
        raise ValueError(f"{s.name}: sub-millisecond parts must be n values in 0..999")
    version = VERSION_MICROS if micros else VERSION
    header = _SERIES_HEADER.pack(SERIES_MAGIC, version, 0, 0, n, first_ms)
    payload = deltas.tobytes() + s.v.astype("<f8", copy=False).tobytes()
    if micros:
        payload += s.micros.astype("<u2", copy=False).tobytes()
    return header + _compress(payload, CHUNK_ZSTD_LEVEL)


def _check_header(
    magic: bytes, version: int, flags: int, want_magic: bytes, versions: tuple[int, ...] = (1,)
) -> None:
    if magic != want_magic:
        raise CodecError(f"bad magic {magic!r}, expected {want_magic!r}")
    if version not in versions:
        known = ", ".join(map(str, versions))
        raise CodecError(f"unsupported version {version} (this build reads {known})")
    if flags != 0:
        raise CodecError(f"unsupported flags {flags:#04x}")


def decode_series(name: str, data: bytes) -> Series:
    """The inverse of :func:`encode_series`; raises :class:`CodecError` on foreign bytes."""
    if len(data) < _SERIES_HEADER.size:
        raise CodecError(f"chunk of {len(data)} bytes is shorter than its header")
    magic, version, flags, _, n, first_ms = _SERIES_HEADER.unpack_from(data)
    _check_header(magic, version, flags, SERIES_MAGIC, (VERSION, VERSION_MICROS))
    n_deltas = max(n - 1, 0)
    micros_bytes = 2 * n if version == VERSION_MICROS else 0
    raw = _decompress(data[_SERIES_HEADER.size :], 8 * (n_deltas + n) + micros_bytes)
    deltas = np.frombuffer(raw, dtype="<i8", count=n_deltas)
    values = np.frombuffer(raw, dtype="<f8", count=n, offset=8 * n_deltas)
    us = None
    if micros_bytes:
        us = np.frombuffer(raw, dtype="<u2", count=n, offset=8 * (n_deltas + n))
        if n and int(us.max()) > 999:
            raise CodecError("sub-millisecond part over 999 µs")
        us = us.astype(np.uint16, copy=False)
    t_ms = np.empty(n, dtype=np.int64)
    if n:
        t_ms[0] = first_ms
        np.cumsum(deltas, out=t_ms[1:])
        t_ms[1:] += first_ms
    t_ms.flags.writeable = False
    return Series(name, t_ms, values.astype(np.float64, copy=False), us)


def pack_columns(columns: Mapping[str, npt.NDArray[np.generic]]) -> bytes:
    """Named 1-D numeric arrays as one versioned, compressed blob (order is kept)."""
    parts: list[bytes] = []
    for name, array in columns.items():
        if array.ndim != 1 or array.dtype.kind not in _ALLOWED_KINDS:
            raise ValueError(f"column {name!r}: need a 1-D numeric array, got {array.dtype}")
        little = array.astype(array.dtype.newbyteorder("<"), copy=False)
        name_b, dtype_b = name.encode(), little.dtype.str.encode()
        parts += [_NAME_LEN.pack(len(name_b)), name_b, _DTYPE_LEN.pack(len(dtype_b)), dtype_b]
        parts += [_COUNT.pack(little.size), np.ascontiguousarray(little).tobytes()]
    header = _COLUMNS_HEADER.pack(COLUMNS_MAGIC, VERSION, 0, len(columns))
    return header + _compress(b"".join(parts))


class _Reader:
    """A cursor over the decompressed column payload that turns every overrun into CodecError."""

    def __init__(self, raw: bytes) -> None:
        self.raw, self.pos = raw, 0

    def take(self, size: int) -> bytes:
        if self.pos + size > len(self.raw):
            raise CodecError("column payload is truncated")
        chunk = self.raw[self.pos : self.pos + size]
        self.pos += size
        return chunk

    def column(self) -> tuple[str, npt.NDArray[np.generic]]:
        (name_len,) = _NAME_LEN.unpack(self.take(_NAME_LEN.size))
        name = self.take(name_len).decode("utf-8", errors="strict")
        (dtype_len,) = _DTYPE_LEN.unpack(self.take(_DTYPE_LEN.size))
        try:
            dtype = np.dtype(self.take(dtype_len).decode("ascii"))
        except (TypeError, ValueError, UnicodeDecodeError) as exc:
            raise CodecError(f"column {name!r}: bad dtype") from exc
        if dtype.kind not in _ALLOWED_KINDS:
            raise CodecError(f"column {name!r}: dtype {dtype} is not allowed")
        (count,) = _COUNT.unpack(self.take(_COUNT.size))
        start = self.pos
        self.take(count * dtype.itemsize)
        return name, np.frombuffer(self.raw, dtype=dtype, count=count, offset=start)


def unpack_columns(data: bytes) -> dict[str, npt.NDArray[np.generic]]:
    """The inverse of :func:`pack_columns`; raises :class:`CodecError` on foreign bytes."""
    if len(data) < _COLUMNS_HEADER.size:
        raise CodecError(f"blob of {len(data)} bytes is shorter than its header")
    magic, version, flags, n_columns = _COLUMNS_HEADER.unpack_from(data)
    _check_header(magic, version, flags, COLUMNS_MAGIC)
    reader = _Reader(_decompress(data[_COLUMNS_HEADER.size :], None))
    try:
        out = dict(reader.column() for _ in range(n_columns))
    except UnicodeDecodeError as exc:
        raise CodecError("column name is not UTF-8") from exc
    if reader.pos != len(reader.raw) or len(out) != n_columns:
        raise CodecError("column payload has trailing bytes or duplicate names")
    return out
