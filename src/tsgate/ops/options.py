"""Operations' options: logs and statistics, the maintenance pass and what it keeps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec

from tsgate.ops.monitor import METRICS
from tsgate.ops.rules import Rule, parse_rules
from tsgate.options import DAY_S, AtLeastOne, Count, Days, PositiveSeconds, Seconds

LogLevel = Literal["debug", "info", "warning", "error", "critical"]


@dataclass(frozen=True)
class OpsSettings:
    log_level: LogLevel = "info"
    log_format: Literal["json", "text"] = "json"  # json (one object per line) | text
    health_timeout_s: PositiveSeconds = 3.0
    stats_flush_s: PositiveSeconds = 2.0
    # the event-loop lag probe's period (tsgate_event_loop_lag_seconds); 0: no probe
    loop_lag_interval_s: Annotated[float, msgspec.Meta(ge=0, le=60)] = 0.25


@dataclass(frozen=True)
class MaintenanceSettings:
    stats_retention_days: Days = 30.0
    maintenance_interval_s: Seconds = 3600.0  # 0: only `tsgate cleanup`
    alert_db_bytes: Count = 0  # 0: no alert
    alert_store_bytes: Count = 0
    # monitoring history and alert rules (tsgate.ops.rules: metric=warning/critical)
    monitor_interval_s: Seconds = 300.0  # a sample between maintenance passes; 0: only then
    monitor_retention_days: Days = 30.0
    alert_rules: str = ""  # none: thresholds depend on the deployment (see docs/operations.md)
    chart_ttl_s: Seconds = 180 * DAY_S  # saved charts unused this long are deleted; 0: kept
    # maintenance keeps the saved charts used in the last N days cached (with
    # TSGATE_UPSTREAM_TOKEN), that many units at once; 0 days: it does not
    warm_charts_days: Annotated[float, msgspec.Meta(ge=0, le=366)] = 0.0
    warm_charts_concurrency: AtLeastOne = 2
    # maintenance writes each finished UTC day's report to reports/daily/<day>.json
    daily_report_objects: bool = False

    def __post_init__(self) -> None:
        self.alert_rule_set()  # bad rules fail when the settings are read, not at the first sample

    def alert_rule_set(self) -> tuple[Rule, ...]:
        return parse_rules(self.alert_rules, METRICS)
