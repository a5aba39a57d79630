"""Streamed drop-in answers are byte-for-byte the object built whole."""

from __future__ import annotations

import gzip

import brotli
import msgspec
import numpy as np
import pytest
import zstandard

from tsgate.api import samplestream
from tsgate.core.model import Series
from tsgate.wire.ace import grouped_rows


def _series() -> list[Series]:
    rng = np.random.default_rng(7)
    out = []
    for i, n in enumerate((0, 45_001, 3, 12_345)):
        t = np.sort(rng.choice(10**9, size=n, replace=False)).astype(np.int64) + 1_700_000_000_000
        out.append(Series(f"ses/site/p{i}", t, rng.normal(size=n).round(3)))
    # two points sharing times: rows stay grouped by point, as upstream answers
    out.append(Series("ses/site/twin", out[1].t_ms[:50].copy(), np.arange(50.0)))
    return out


@pytest.mark.parametrize("msgpack", [False, True])
def test_streamed_blocks_decode_to_the_whole_object(
    msgpack: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(samplestream, "BLOCK_ROWS", 7_000)  # several blocks, a ragged last
    series = _series()
    streamed = b"".join(samplestream._blocks(series, msgpack))
    rows = grouped_rows(series)
    assert len(rows) == samplestream.total_rows(series)
    decoded = msgspec.msgpack.decode(streamed) if msgpack else msgspec.json.decode(streamed)
    assert decoded == {"point_samples": rows}


@pytest.mark.parametrize(
    ("encoding", "decompress"),
    [
        ("gzip", gzip.decompress),
        ("br", brotli.decompress),
        ("zstd", lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b)),
    ],
)
def test_streamed_compression_round_trips(encoding: str, decompress: object) -> None:
    blocks = [b'{"point_samples":[', b'{"a":1}', b',{"a":2}', b"]}"]
    packed = b"".join(samplestream._compressed(iter(blocks), encoding))
    assert callable(decompress)
    assert decompress(packed) == b"".join(blocks)
