"""What an uploaded file is, decided from its bytes alone, and what it may be called.

The allow-list is PNG, JPEG, PDF, CSV and JSON. The client's name and ``Content-Type``
never decide the type: a name whose extension belongs to another type (a PNG named
``.csv``), an extension outside the list (``.exe``, ``.html``) or a declared type of the
list that the bytes contradict is refused; other declared types are ignored, and a file is
always served as the kind its bytes are. Names are cut to their last path segment,
stripped of control characters and leading dots, and bounded; they are only ever shown
(``Content-Disposition``), never used in a storage key.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO

import msgspec

MAX_NAME_CHARS = 120
_READ_BYTES = 1 << 16
_CSV_SAMPLE_BYTES = 1 << 16
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Kind:
    name: str  # as shown in errors: "PNG"
    media_type: str
    extensions: tuple[str, ...]  # the first is the one added to a name without any


PNG = Kind("PNG", "image/png", (".png",))
JPEG = Kind("JPEG", "image/jpeg", (".jpg", ".jpeg"))
PDF = Kind("PDF", "application/pdf", (".pdf",))
CSV = Kind("CSV", "text/csv", (".csv",))
JSON = Kind("JSON", "application/json", (".json",))
KINDS = (PNG, JPEG, PDF, CSV, JSON)
# a declared type of the list is a claim the bytes must bear out; any other declared type
# (octet-stream, a spreadsheet's CSV type) says nothing and is ignored
_CLAIMS = frozenset({k.media_type for k in KINDS} | {"image/jpg"})
ALLOWED = ", ".join(k.name for k in KINDS)


class Refused(ValueError):
    """The upload is not a file of the allow-list, or its name or declared type lies."""


def sniff(file: IO[bytes]) -> Kind:
    """The kind of the whole seekable ``file`` (read from its start, left at its start)."""
    file.seek(0)
    head = file.read(16)
    file.seek(0)
    try:
        if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR":
            return PNG
        if head.startswith(b"\xff\xd8\xff"):
            return JPEG
        if head.startswith(b"%PDF-"):
            return PDF
        text_kind = _text_kind(file)
    finally:
        file.seek(0)
    if text_kind is None:
        raise Refused(f"the bytes are not a file of the allowed kinds ({ALLOWED})")
    return text_kind


def _text_kind(file: IO[bytes]) -> Kind | None:
    """JSON (an object or array) or CSV for UTF-8 text without control characters."""
    text = _utf8_text(_pieces(file))
    if text is None:
        return None
    sample, size = text
    stripped = sample.lstrip("\ufeff \t\r\n")
    if not stripped:
        return None  # empty or blank
    if stripped[0] in "{[":
        file.seek(0)
        try:
            parsed = msgspec.json.decode(file.read())
        except msgspec.DecodeError:
            return None
        return JSON if isinstance(parsed, dict | list) else None
    if stripped[0] == "<":
        return None  # HTML, SVG or XML: markup a browser would run, never CSV
    return CSV if _is_csv(sample, complete=size <= _CSV_SAMPLE_BYTES) else None


def _pieces(file: IO[bytes]) -> Iterable[bytes]:
    file.seek(0)
    while piece := file.read(_READ_BYTES):
        yield piece


def _utf8_text(pieces: Iterable[bytes]) -> tuple[str, int] | None:
    """The first ``_CSV_SAMPLE_BYTES`` as text and the total size, when every byte is
    UTF-8 with no control characters other than tab, CR and LF; else ``None``."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    sample: list[str] = []
    size = 0
    try:
        for piece in pieces:
            text = decoder.decode(piece)
            if _CONTROL.search(text):
                return None
            if size < _CSV_SAMPLE_BYTES:
                sample.append(text)
            size += len(piece)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return None
    return "".join(sample)[:_CSV_SAMPLE_BYTES], size


def _is_csv(sample: str, *, complete: bool) -> bool:
    """Rows the ``csv`` module reads; a cut sample drops its last, partial line."""
    lines = sample.splitlines()
    if not complete and len(lines) > 1:
        lines = lines[:-1]
    try:
        rows = [row for row in csv.reader(io.StringIO("\n".join(lines))) if row]
    except csv.Error:
        return False
    return bool(rows)


def kind_of_extension(name: str) -> Kind | None:
    lowered = name.lower()
    for kind in KINDS:
        if lowered.endswith(kind.extensions):
            return kind
    return None


def check_claims(kind: Kind, name: str, declared_type: str | None) -> None:
    """Refuse a name or declared type that says the file is something else."""
    suffix = _suffix(name)
    if suffix:
        named = kind_of_extension(name)
        if named is None:
            raise Refused(f"name: the extension {suffix!r} is not allowed (files are {ALLOWED})")
        if named is not kind:
            raise Refused(
                f"name: {suffix!r} says {named.name}, but the bytes are {kind.name}; "
                f"name it {kind.extensions[0]}"
            )
    declared = (declared_type or "").split(";")[0].strip().lower()
    if declared in _CLAIMS and declared != kind.media_type:
        shown = declared[:80]
        raise Refused(f"Content-Type: {shown!r} was declared, but the bytes are {kind.name}")


def _suffix(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return f".{ext}" if dot and stem and ext else ""


def safe_name(raw: str | None, kind: Kind) -> str:
    """A display name: the last path segment of ``raw``, NFC, without control characters,
    leading dots or quotes, at most ``MAX_NAME_CHARS``, ending in one of ``kind``'s
    extensions (``file.<ext>`` when nothing is left)."""
    name = unicodedata.normalize("NFC", raw or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(" " if c.isspace() else c for c in name if c.isprintable() or c.isspace())
    name = " ".join(name.replace('"', "'").split()).lstrip(". ")
    if not name.lower().endswith(kind.extensions):
        name = (name or "file") + kind.extensions[0]
    if len(name) > MAX_NAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        name = stem[: MAX_NAME_CHARS - len(ext) - 1].rstrip() + dot + ext
    return name if name[0] != "." else "file" + name


def requested_name(raw: str | None) -> str:
    """The last path segment of a client's name, for the extension check."""
    return (raw or "").replace("\\", "/").rsplit("/", 1)[-1].strip()


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """``[start, end)`` of a single-range ``Range: bytes=…`` header over ``size`` bytes.

    ``None`` means "send the whole file" (no usable single range: another unit, several
    ranges, or syntax this parser does not take, which RFC 9110 lets a server ignore).
    ``Refused`` means the range cannot be satisfied (416).
    """
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash or not (first.isdigit() or last.isdigit()):
        return None
    if not first.isdigit():  # bytes=-N: the last N bytes
        if not last.isdigit() or int(last) == 0:
            raise Refused("the suffix range is empty")
        return max(0, size - int(last)), size
    start = int(first)
    if last and not last.isdigit():
        return None
    end = min(size, int(last) + 1) if last else size
    if last and int(last) < start:
        return None  # an invalid range is ignored (RFC 9110 §14.1.1)
    if start >= size:
        raise Refused(f"the range starts at {start}, past the file's {size} bytes")
    return start, end
