"""Operational alerts raised by maintenance (e.g. a store above its size threshold).

They are logged when raised, listed by ``/api/stats`` and turn health ``degraded``.
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger("tsgate.alerts")


class CurrentAlerts(Protocol):
    """The alerts raised now (:class:`Alerts` is it)."""

    def current(self) -> list[str]: ...


class Alerts:
    def __init__(self) -> None:
        self._by_source: dict[str, list[str]] = {}

    def replace(self, source: str, messages: list[str], *, log_new: bool = True) -> None:
        """Set ``source``'s alerts to ``messages`` (an empty list clears them); new ones
        are logged unless the source logs its own changes (``log_new=False``)."""
        for message in messages:
            if log_new and message not in self._by_source.get(source, []):
                log.warning("alert: %s", message)
        self._by_source[source] = list(messages)

    def current(self) -> list[str]:
        return [m for messages in self._by_source.values() for m in messages]
