"""The chart page's static files: versioned, compressed once per encoding, kept in memory.

The page's URLs carry a digest of every file under ``static/`` (``/ui/v/<digest>/…``), so
a release changes every URL and the files can be cached for a year; the page itself
(``/``) is revalidated on each visit. The JavaScript modules import each other by
relative paths, so the versioned prefix carries through to every module.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from tsgate.api.negotiation import choose_encoding, compress
from tsgate.errors import NotFound

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
TEXT = "text/plain; charset=utf-8"  # the licence and notice files
PAGE = "index.html"


@dataclass(frozen=True, slots=True)
class Asset:
    """One file as it is sent: its bytes in one encoding (``None``: identity)."""

    body: bytes
    media_type: str
    etag: str
    encoding: str | None


class StaticAssets:
    """The files under ``root``, read and compressed on first use and then kept."""

    def __init__(self, root: Path, *, compress_min_bytes: int) -> None:
        self.root = root.resolve()
        self.compress_min_bytes = compress_min_bytes
        # the files are listed once: a request names one of them or gets 404, never a path
        self._paths = {
            p.relative_to(self.root).as_posix(): p for p in self.root.rglob("*") if p.is_file()
        }
        self.version = _digest(self._paths)
        self.prefix = f"/ui/v/{self.version}/"
        self._files: dict[str, tuple[bytes, str]] = {}
        self._encoded: dict[tuple[str, str], bytes] = {}
        # the page names its files by absolute /ui/ paths: point them at this version
        html = (self.root / PAGE).read_bytes().replace(b'"/ui/', f'"{self.prefix}'.encode())
        self._files[PAGE] = (html, hashlib.sha256(html).hexdigest()[:16])

    def get(self, relpath: str, accept_encoding: str) -> Asset:
        """The file at ``relpath`` in the best encoding the client accepts."""
        body, etag = self._read(relpath)
        media_type = MEDIA_TYPES.get(Path(relpath).suffix, TEXT)
        encoding = None
        if len(body) >= self.compress_min_bytes:
            encoding = choose_encoding(accept_encoding)
        if encoding is None:
            return Asset(body, media_type, f'"{etag}"', None)
        key = (relpath, encoding)
        if key not in self._encoded:
            self._encoded[key] = compress(body, encoding)
        # one ETag per representation: caches must not mix encodings
        return Asset(self._encoded[key], media_type, f'"{etag}-{encoding}"', encoding)

    def _read(self, relpath: str) -> tuple[bytes, str]:
        cached = self._files.get(relpath)
        if cached is not None:
            return cached
        path = self._paths.get(relpath)
        if path is None:
            raise NotFound(f"no file {relpath!r} in the chart page")
        body = path.read_bytes()
        entry = (body, hashlib.sha256(body).hexdigest()[:16])
        self._files[relpath] = entry
        return entry


def _digest(paths: dict[str, Path]) -> str:
    """A digest of every file's name and bytes: it changes when any file does."""
    digest = hashlib.sha256()
    for name, path in sorted(paths.items()):
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]
