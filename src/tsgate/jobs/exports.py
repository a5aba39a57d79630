"""Export encoders: samples in, a file out, slice by slice.

Every format carries the same three columns, one row per sample:

- ``csv``: ``time,time_ms,point,value`` (ISO 8601 UTC with ``Z``, epoch ms, quoted name;
  a name starting with ``= + - @``, tab or CR is written with a leading ``'`` so that
  spreadsheets never run it as a formula — the other cells are numbers and times)
- ``json`` / ``msgpack``: ``{"columns": ["time_ms", "point", "value"],
  "rows": [[ms, name, value], …], "metadata": {…}}`` (NaN becomes null)
- ``parquet``: ``time`` timestamp[ms, UTC], ``point`` dictionary<int32, string>, ``value``
  float64; one row group per slice (pyarrow, extra ``parquet``)

Writers encode each slice as it arrives straight into a seekable binary file (a spooled
temporary file in the job runner), so an export of any size needs the memory of one
slice, never of the whole file. ``metadata`` goes last because it counts the rows; the
MessagePack row array is a 32-bit header patched in place at the end.
"""

from __future__ import annotations

from typing import IO, Any, Protocol

import msgspec
import numpy as np

from tsgate.core.model import Series
from tsgate.errors import MissingDependency

MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "json": "application/json",
    "msgpack": "application/x-msgpack",
    "parquet": "application/vnd.apache.parquet",
}
COLUMNS = ("time_ms", "point", "value")
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


class ExportWriter(Protocol):
    rows: int

    def add(self, series: Series) -> None: ...

    def finish(self, metadata: dict[str, Any]) -> None:
        """Write what ends the file; the file is complete afterwards."""
        ...


def open_writer(fmt: str, out: IO[bytes]) -> ExportWriter:
    writers: dict[str, type[CsvWriter | JsonWriter | MsgpackWriter | ParquetWriter]] = {
        "csv": CsvWriter,
        "json": JsonWriter,
        "msgpack": MsgpackWriter,
        "parquet": ParquetWriter,
    }
    return writers[fmt](out)


class CsvWriter:
    def __init__(self, out: IO[bytes]) -> None:
        self.rows = 0
        self._out = out
        out.write(b"time,time_ms,point,value\n")

    def add(self, series: Series) -> None:
        if not len(series):
            return
        iso = np.datetime_as_string(series.t_ms.astype("datetime64[ms]"), unit="ms")
        quoted = '"' + csv_text(series.name).replace('"', '""') + '"'
        values = np.where(np.isnan(series.v), "", series.v.astype(str))
        lines = np.char.add(np.char.add(iso, "Z,"), series.t_ms.astype(str))
        lines = np.char.add(np.char.add(lines, "," + quoted + ","), values)
        self._out.write(("\n".join(lines.tolist()) + "\n").encode())
        self.rows += len(series)

    def finish(self, metadata: dict[str, Any]) -> None:
        return None


def csv_text(text: str) -> str:
    """A text cell a spreadsheet shows as text, never runs as a formula (OWASP "CSV
    injection": a cell starting with = + - @ tab or CR gets a leading ')."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _rows(series: Series) -> list[tuple[int, str, float | None]]:
    values = [None if v != v else v for v in series.v.tolist()]  # NaN → null
    return list(zip(series.t_ms.tolist(), [series.name] * len(series), values, strict=True))


class JsonWriter:
    def __init__(self, out: IO[bytes]) -> None:
        self.rows = 0
        self._out = out
        out.write(b'{"columns":' + msgspec.json.encode(COLUMNS) + b',"rows":[')

    def add(self, series: Series) -> None:
        if len(series):
            if self.rows:
                self._out.write(b",")
            # the slice's rows without their list brackets, spliced into the one array
            self._out.write(msgspec.json.encode(_rows(series))[1:-1])
            self.rows += len(series)

    def finish(self, metadata: dict[str, Any]) -> None:
        self._out.write(b'],"metadata":' + msgspec.json.encode(metadata) + b"}")


class MsgpackWriter:
    def __init__(self, out: IO[bytes]) -> None:
        self.rows = 0
        self._out = out
        # a 3-entry map: columns, rows (array32 header, count patched in finish), metadata
        encode = msgspec.msgpack.encode
        out.write(b"\x83" + encode("columns") + encode(COLUMNS) + encode("rows") + b"\xdd")
        self._count_at = out.tell()
        out.write(b"\0\0\0\0")

    def add(self, series: Series) -> None:
        if len(series):
            encoded = msgspec.msgpack.encode(_rows(series))
            self._out.write(encoded[_array_header_size(encoded[0]) :])
            self.rows += len(series)

    def finish(self, metadata: dict[str, Any]) -> None:
        out = self._out
        out.write(msgspec.msgpack.encode("metadata") + msgspec.msgpack.encode(metadata))
        end = out.tell()
        out.seek(self._count_at)
        out.write(self.rows.to_bytes(4, "big"))
        out.seek(end)


def _array_header_size(first: int) -> int:
    if 0x90 <= first <= 0x9F:
        return 1
    return 3 if first == 0xDC else 5


class ParquetWriter:
    def __init__(self, out: IO[bytes]) -> None:
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
        self._writer: Any = pq.ParquetWriter(out, self._schema, compression="zstd")

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

    def finish(self, metadata: dict[str, Any]) -> None:
        self._writer.close()
