"""A stored user file's metadata (its bytes are the object ``object_key`` names)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
