"""What an upload is, from its bytes alone; what it may be called; which bytes a Range asks."""

from __future__ import annotations

import io
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tsgate.files.content import (
    CSV,
    JPEG,
    JSON,
    MAX_NAME_CHARS,
    PDF,
    PNG,
    Kind,
    Refused,
    byte_range,
    check_claims,
    safe_name,
    sniff,
)


def png_bytes(width: int = 2, height: int = 2) -> bytes:
    """A real (tiny, valid) PNG, built by hand: signature, IHDR, IDAT, IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"
PDF_BYTES = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
ELF_BYTES = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56
PE_BYTES = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48


def _kind(data: bytes) -> Kind:
    return sniff(io.BytesIO(data))


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (png_bytes(), PNG),
        (JPEG_BYTES, JPEG),
        (PDF_BYTES, PDF),
        (b"time,point,value\n2025-10-01T00:00:00,a,1.5\n", CSV),
        ("zone,°F\r\nvav712,71.5\r\n".encode(), CSV),
        (b"\xef\xbb\xbfa;b\n1;2\n", CSV),  # a BOM from a spreadsheet
        (b'{"site": "demo_campus", "points": [1, 2]}', JSON),
        (b"  [1, 2, 3]\n", JSON),
    ],
)
def test_allowed_kinds_are_recognised_from_their_bytes(data: bytes, kind: Kind) -> None:
    assert _kind(data) is kind


@pytest.mark.parametrize(
    "data",
    [
        ELF_BYTES,  # an executable
        PE_BYTES,
        b"",
        b"   \n\n",
        b"<html><script>alert(1)</script></html>",
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 8,  # a PNG signature without an IHDR
        b"GIF89a\x01\x00\x01\x00",  # an image type outside the list
        b"a,b\n\x00\x01,2\n",  # text with control bytes
        b"\xff\xfe\x00a\x00,",  # not UTF-8
        b'{"unterminated": ',
        b"PK\x03\x04" + b"\x00" * 26,  # a zip (docx, xlsx, jar)
    ],
)
def test_everything_else_is_refused(data: bytes) -> None:
    with pytest.raises(Refused, match="not a file of the allowed kinds"):
        _kind(data)


def test_a_large_csv_is_read_whole_for_control_bytes() -> None:
    rows = b"".join(b"%d,%d\n" % (i, i * 2) for i in range(100_000))
    assert _kind(rows) is CSV
    with pytest.raises(Refused):
        _kind(rows + b"\x00\x00")  # the bad bytes are past every sample


@pytest.mark.parametrize(
    ("kind", "name", "declared"),
    [
        (CSV, "meters.csv", "text/csv"),
        (CSV, "meters.CSV", "application/vnd.ms-excel; charset=utf-8"),
        (JPEG, "plan.jpeg", "image/jpeg"),
        (JPEG, "plan.JPG", None),
        (PNG, "plan", "application/octet-stream"),  # no extension: the sniffed one is added
        (PDF, "report.pdf", "text/plain"),
    ],
)
def test_consistent_claims_pass(kind: Kind, name: str, declared: str | None) -> None:
    check_claims(kind, name, declared)  # raises nothing


@pytest.mark.parametrize(
    ("kind", "name", "declared", "says"),
    [
        (PNG, "data.csv", "text/csv", "'.csv' says CSV, but the bytes are PNG"),
        (PDF, "plan.png", None, "'.png' says PNG, but the bytes are PDF"),
        (CSV, "run.exe", None, "'.exe' is not allowed"),
        (CSV, "page.html", "text/html", "'.html' is not allowed"),
        (PNG, "plan.png", "application/pdf", "'application/pdf' was declared"),
        (PDF, "doc.pdf", "image/jpg", "'image/jpg' was declared"),
    ],
)
def test_lying_names_and_types_are_refused(
    kind: Kind, name: str, declared: str | None, says: str
) -> None:
    with pytest.raises(Refused, match=says.replace("(", r"\(").replace(")", r"\)")):
        check_claims(kind, name, declared)


@pytest.mark.parametrize(
    ("raw", "kind", "safe"),
    [
        ("../../etc/passwd.csv", CSV, "passwd.csv"),
        ("C:\\Users\\me\\plan.png", PNG, "plan.png"),
        ("..\\..\\boot.ini.csv", CSV, "boot.ini.csv"),
        (".hidden.json", JSON, "hidden.json"),
        ("...", PDF, "file.pdf"),
        (None, PNG, "file.png"),
        ("", JPEG, "file.jpg"),
        ('a"b\r\n;c.csv', CSV, "a'b ;c.csv"),
        ("report\x00.pdf", PDF, "report.pdf"),
        ("plan", PNG, "plan.png"),
        ("Grundriß  Ebene 2.png", PNG, "Grundriß Ebene 2.png"),
        ("e\u0301tage.pdf", PDF, "\u00e9tage.pdf"),  # NFC
    ],
)
def test_names_are_sanitised(raw: str | None, kind: Kind, safe: str) -> None:
    assert safe_name(raw, kind) == safe


@given(st.text(max_size=400))
def test_any_name_becomes_a_short_printable_last_segment(raw: str) -> None:
    name = safe_name(raw, CSV)
    assert 0 < len(name) <= MAX_NAME_CHARS
    assert name.endswith(".csv") and not name.startswith(".")
    assert "/" not in name and "\\" not in name and '"' not in name
    assert all(c.isprintable() for c in name)


@pytest.mark.parametrize(
    ("header", "size", "want"),
    [
        ("bytes=0-99", 1000, (0, 100)),
        ("bytes=900-", 1000, (900, 1000)),
        ("bytes=-100", 1000, (900, 1000)),
        ("bytes=-5000", 1000, (0, 1000)),
        ("bytes=990-2000", 1000, (990, 1000)),
        ("bytes=0-0", 1000, (0, 1)),
        ("bytes=0-1,5-9", 1000, None),  # several ranges: the whole file
        ("items=0-9", 1000, None),
        ("bytes=9-2", 1000, None),  # invalid: ignored
        ("bytes=a-b", 1000, None),
        ("bytes=", 1000, None),
    ],
)
def test_byte_ranges(header: str, size: int, want: tuple[int, int] | None) -> None:
    assert byte_range(header, size) == want


@pytest.mark.parametrize(("header", "size"), [("bytes=1000-", 1000), ("bytes=-0", 10)])
def test_unsatisfiable_ranges(header: str, size: int) -> None:
    with pytest.raises(Refused):
        byte_range(header, size)
