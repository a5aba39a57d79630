"""A stored user file's metadata (its bytes are the object ``object_key`` names), and
the Protocol of the file index (``tsgate.database.files`` implements it in SQL)."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class StoredFile:
    id: str
    scope: str
    site: str | None
    chart_id: str | None
    name: str
    media_type: str
    size_bytes: int
    sha256: str
    object_key: str
    created_at_ms: int

    @property
    def etag(self) -> str:
        return f'"{self.sha256[:32]}"'

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "mediaType": self.media_type,
            "size": self.size_bytes,
            "sha256": self.sha256,
            "site": self.site,
            "chart": self.chart_id,
            "createdAt": self.created_at_ms,
            "url": f"/api/files/{self.id}",
        }


class FileStore(Protocol):
    """The index of user files, as the files API uses it."""

    async def insert(self, file: StoredFile) -> None: ...

    async def get(self, file_id: str) -> StoredFile | None: ...

    async def list(
        self,
        *,
        scope: str | None = None,
        site: str | None = None,
        chart_id: str | None = None,
        shared_only: bool = False,
        limit: int = 200,
    ) -> builtins.list[StoredFile]:
        """Files matching every filter given, newest first. ``shared_only``: a site's
        files that are not any chart's attachment."""
        ...

    async def usage(self, scope: str | None = None) -> tuple[int, int]:
        """``(files, bytes)`` of one owner scope, or of every file."""
        ...

    async def delete(self, file_id: str) -> bool: ...
