"""The daily report: one UTC day of the monitoring history, summarised.

Per metric the first, last, smallest, largest and mean sampled value and the change over
the day (``last - first``: what the stores grew by); the alert events of the day with
the level each rule ended the day at. ``GET /api/monitor/report?day=`` computes it from
the history at any time; with ``TSGATE_DAILY_REPORT_OBJECTS`` the maintenance pass also
writes each finished day once to the object store (``reports/daily/<day>.json``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from tsgate.object_store.base import ObjectStore
from tsgate.ops.rules import OK, AlertEvent

log = logging.getLogger("tsgate.monitor")
DAY_MS = 86_400_000
PREFIX = "reports/daily/"
MAX_EVENTS = 5000  # alert events one report lists


class ReportHistory(Protocol):
    async def history(
        self, since_ms: int, until_ms: int, metrics: Sequence[str] | None = None
    ) -> dict[str, list[tuple[int, float]]]: ...

    async def events(self, since_ms: int, limit: int = 500) -> list[AlertEvent]: ...


def day_name(day_start_ms: int) -> str:
    return datetime.fromtimestamp(day_start_ms / 1000, UTC).strftime("%Y-%m-%d")


def summarise(
    day_start_ms: int,
    history: Mapping[str, Sequence[tuple[int, float]]],
    events: Sequence[AlertEvent],
    levels_before: Mapping[str, str],
) -> dict[str, Any]:
    """The report of the day starting at ``day_start_ms`` from its samples and events
    (``levels_before``: each rule's level as the day began)."""
    metrics = {}
    for name, points in sorted(history.items()):
        if not points:
            continue
        values = [v for _, v in points]
        metrics[name] = {
            "samples": len(values),
            "first": values[0],
            "last": values[-1],
            "min": min(values),
            "max": max(values),
            "mean": sum(values) / len(values),
            "change": values[-1] - values[0],
        }
    levels = dict(levels_before)
    for event in events:
        levels[event.rule] = event.level
    return {
        "day": day_name(day_start_ms),
        "start": day_start_ms,
        "end": day_start_ms + DAY_MS,
        "samples": max((m["samples"] for m in metrics.values()), default=0),
        "metrics": metrics,
        "alerts": {
            "raised": sum(1 for e in events if e.level != OK and e.previous == OK),
            "events": [e.to_json() for e in events],
            "levels_at_end": dict(sorted(levels.items())),
        },
    }


async def daily_report(history: ReportHistory, day_start_ms: int) -> dict[str, Any]:
    """The report of one UTC day (``day_start_ms`` a midnight), from the history."""
    end_ms = day_start_ms + DAY_MS
    found = await history.history(day_start_ms, end_ms)
    # every event from the start of the kept history up to the day's end: the levels
    # the day began with, and the day's own changes
    seen = await history.events(0, MAX_EVENTS * 4)
    before = {e.rule: e.level for e in seen if e.at_ms < day_start_ms}
    during = [e for e in seen if day_start_ms <= e.at_ms < end_ms][-MAX_EVENTS:]
    return summarise(day_start_ms, found, during, before)


@dataclass(frozen=True)
class DailyReports:
    """The maintenance pass's part: once a day has ended, its report is written to the
    object store (once: a report already there is left as it is)."""

    history: ReportHistory
    objects: ObjectStore

    async def run(self, now_ms: int) -> str | None:
        """Write the report of the last finished day if it is not there; its day, if so."""
        day_start_ms = now_ms // DAY_MS * DAY_MS - DAY_MS
        key = f"{PREFIX}{day_name(day_start_ms)}.json"
        if await self.objects.get(key) is not None:
            return None  # an hourly pass: written by an earlier one (or another server)
        report = await daily_report(self.history, day_start_ms)
        body = json.dumps(report, indent=1, sort_keys=True).encode()
        written = await self.objects.put(key, body, if_absent=True)
        if written:
            log.info("daily report of %s written (%d samples)", report["day"], report["samples"])
        return str(report["day"]) if written else None
