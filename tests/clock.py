"""A clock tests set by hand, and the reference times the service tests share."""

from __future__ import annotations

from dataclasses import dataclass

from tsgate.wire.ace import parse_time

NOW = parse_time("now", "2025-11-15T12:00:00")
OCT1 = parse_time("t", "2025-10-01T00:00:00")


@dataclass
class Clock:
    """Epoch milliseconds, moved by assigning ``ms``."""

    ms: int

    def __call__(self) -> int:
        return self.ms
