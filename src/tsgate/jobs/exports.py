"""Export encoders: samples in, file bytes out, slice by slice.

Every format carries the same three columns, one row per sample:

- ``csv``: ``time,time_ms,point,value`` (ISO 8601 UTC with ``Z``, epoch ms, quoted name)
- ``json`` / ``msgpack``: ``{"metadata": {…}, "columns": ["time_ms", "point", "value"],
  "rows": [[ms, name, value], …]}`` (NaN becomes null)
- ``parquet``: ``time`` timestamp[ms, UTC], ``point`` dictionary<int32, string>, ``value``
  float64; one row group per slice (pyarrow, extra ``parquet``)

Writers encode each slice as it arrives and keep only encoded bytes, never per-sample
Python objects for the whole export.
"""

from __future__ import annotations

import io
from typing import Any, Protocol

import msgspec
import numpy as np

from tsgate.errors import MissingDependency
from tsgate.series.model import Series

MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "msgpack": "application/x-msgpack",
    "parquet": "application/vnd.apache.parquet",
}
COLUMNS = ("time_ms", "point", "value")


class ExportWriter(Protocol):
    rows: int

    def add(self, series: Series) -> None: ...

    def finish(self, metadata: dict[str, Any]) -> bytes: ...


def open_writer(fmt: str) -> ExportWriter:
    writers: dict[str, type[ExportWriter]] = {
        "csv": CsvWriter,
        "json": JsonWriter,
        "msgpack": MsgpackWriter,
        "parquet": ParquetWriter,
    }
    return writers[fmt]()


class CsvWriter:
    def __init__(self) -> None:
        self.rows = 0
        self._parts: list[bytes] = [b"time,time_ms,point,value\n"]

    def add(self, series: Series) -> None:
        if not len(series):
            return
        iso = np.datetime_as_string(series.t_ms.astype("datetime64[ms]"), unit="ms")
        quoted = '"' + series.name.replace('"', '""') + '"'
        values = np.where(np.isnan(series.v), "", series.v.astype(str))
        lines = np.char.add(np.char.add(iso, "Z,"), series.t_ms.astype(str))
        lines = np.char.add(np.char.add(lines, "," + quoted + ","), values)
        self._parts.append(("\n".join(lines.tolist()) + "\n").encode())
        self.rows += len(series)

    def finish(self, metadata: dict[str, Any]) -> bytes:
        return b"".join(self._parts)


def _rows(series: Series) -> list[tuple[int, str, float | None]]:
    values = [None if v != v else v for v in series.v.tolist()]  # NaN → null
    return list(zip(series.t_ms.tolist(), [series.name] * len(series), values, strict=True))


class JsonWriter:
    def __init__(self) -> None:
        self.rows = 0
        self._parts: list[bytes] = []

    def add(self, series: Series) -> None:
        if len(series):
            # encode the slice's rows, then drop the list brackets to splice them in later
            self._parts.append(msgspec.json.encode(_rows(series))[1:-1])
            self.rows += len(series)

    def finish(self, metadata: dict[str, Any]) -> bytes:
        head = msgspec.json.encode({"metadata": metadata, "columns": COLUMNS})[:-1]
        return head + b',"rows":[' + b",".join(self._parts) + b"]}"


class MsgpackWriter:
    def __init__(self) -> None:
        self.rows = 0
        self._parts: list[bytes] = []

    def add(self, series: Series) -> None:
        if len(series):
            encoded = msgspec.msgpack.encode(_rows(series))
            self._parts.append(encoded[_array_header_size(encoded[0]) :])
            self.rows += len(series)

    def finish(self, metadata: dict[str, Any]) -> bytes:
        # a 3-entry map whose last value is an array of all rows, header written last
        head = msgspec.msgpack.encode({"metadata": metadata, "columns": COLUMNS, "rows": []})
        return head[:-1] + _array_header(self.rows) + b"".join(self._parts)


def _array_header_size(first: int) -> int:
    if 0x90 <= first <= 0x9F:
        return 1
    return 3 if first == 0xDC else 5


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes([0x90 | n])
    if n < 1 << 16:
        return b"\xdc" + n.to_bytes(2, "big")
    return b"\xdd" + n.to_bytes(4, "big")


class ParquetWriter:
    def __init__(self) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ModuleNotFoundError as exc:
            raise MissingDependency("pyarrow", "parquet") from exc
        self.rows = 0
        self._pa: Any = pa
        self._schema = pa.schema(
            [
                ("time", pa.timestamp("ms", tz="UTC")),
                ("point", pa.dictionary(pa.int32(), pa.string())),
                ("value", pa.float64()),
            ]
        )
        self._buffer = io.BytesIO()
        self._writer: Any = pq.ParquetWriter(self._buffer, self._schema, compression="zstd")

    def add(self, series: Series) -> None:
        if not len(series):
            return
        pa = self._pa
        n = len(series)
        points = pa.DictionaryArray.from_arrays(
            pa.array(np.zeros(n, dtype=np.int32)), pa.array([series.name])
        )
        table = pa.Table.from_arrays(
            [pa.array(series.t_ms, type=pa.timestamp("ms", tz="UTC")), points, series.v],
            schema=self._schema,
        )
        self._writer.write_table(table)
        self.rows += n

    def finish(self, metadata: dict[str, Any]) -> bytes:
        self._writer.close()
        return self._buffer.getvalue()
