"""Saved chart configurations: the row and the store's Protocol.

A chart is a JSON config owned by one caller scope (a salted hash of the caller's
token, never the token); ``tsgate.database.charts`` implements the store in SQL.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class SavedChart:
    id: str
    name: str
    config: dict[str, Any]
    created_at_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "config": self.config,
            "createdAt": self.created_at_ms,
        }


class SavedChartStore(Protocol):
    """Every call names the scope; a scope never sees or deletes another's charts."""

    async def create(
        self, scope: str, name: str, config: dict[str, Any], now_ms: int
    ) -> SavedChart:
        """Store a new chart under a fresh id."""

    async def get(
        self, scope: str, chart_id: str, *, now_ms: int | None = None
    ) -> SavedChart | None:
        """One of the scope's charts; with ``now_ms``, recorded as used then."""

    async def count(self, scope: str) -> int:
        """How many charts the scope keeps."""

    async def list(self, scope: str, limit: int) -> builtins.list[SavedChart]:
        """The scope's charts, newest first."""

    async def delete(self, scope: str, chart_id: str) -> bool:
        """Delete one of the scope's charts; ``False`` when it has no such chart."""
