"""Alert rules: ``metric=warning/critical`` thresholds, evaluated on each sample.

``TSGATE_ALERT_RULES`` is a comma-separated list such as
``database_bytes=5e9/2e10,request_error_ratio=0.05/0.25,upstream_circuit_open=-/0``: a
metric is at ``warning`` when its value is over the first threshold and at ``critical``
when over the second; ``-`` leaves a level out. A metric without a value in a sample
(growth before a day of history, say) keeps its level. Pure: no I/O here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tsgate.errors import ConfigError

OK, WARNING, CRITICAL = "ok", "warning", "critical"
LEVELS = (OK, WARNING, CRITICAL)
ENV_NAME = "TSGATE_ALERT_RULES"


@dataclass(frozen=True)
class Rule:
    metric: str
    warning: float | None
    critical: float | None

    def level(self, value: float) -> str:
        if self.critical is not None and value > self.critical:
            return CRITICAL
        if self.warning is not None and value > self.warning:
            return WARNING
        return OK

    def message(self, level: str, value: float) -> str:
        if level == OK:
            return f"{self.metric} is {value:g}, back under its thresholds"
        threshold = self.critical if level == CRITICAL else self.warning
        return f"{level}: {self.metric} is {value:g}, over {threshold:g} ({ENV_NAME})"


@dataclass(frozen=True)
class Change:
    """An alert whose level changed with this sample."""

    rule: str
    previous: str
    level: str
    value: float
    message: str


@dataclass(frozen=True)
class AlertEvent:
    at_ms: int
    rule: str
    previous: str
    level: str
    value: float | None
    message: str

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at_ms,
            "rule": self.rule,
            "previous": self.previous,
            "level": self.level,
            "value": self.value,
            "message": self.message,
        }


def parse_rules(text: str, known: frozenset[str] | None = None) -> tuple[Rule, ...]:
    rules: dict[str, Rule] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        metric, eq, limits = part.partition("=")
        metric = metric.strip()
        warning_text, slash, critical_text = limits.partition("/")
        if not eq or not slash or not metric:
            raise ConfigError(f"{ENV_NAME}: {part!r} is not metric=warning/critical")
        if known is not None and metric not in known:
            raise ConfigError(
                f"{ENV_NAME}: unknown metric {metric!r}; one of {', '.join(sorted(known))}"
            )
        warning, critical = _threshold(part, warning_text), _threshold(part, critical_text)
        if warning is None and critical is None:
            raise ConfigError(f"{ENV_NAME}: {part!r} sets no threshold")
        if warning is not None and critical is not None and critical < warning:
            raise ConfigError(f"{ENV_NAME}: {part!r}: critical is below warning")
        rules[metric] = Rule(metric, warning, critical)
    return tuple(rules.values())


def _threshold(part: str, text: str) -> float | None:
    text = text.strip()
    if text in ("", "-"):
        return None
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ConfigError(f"{ENV_NAME}: {part!r}: {text!r} is not a number")
    return value


def evaluate(
    rules: tuple[Rule, ...], values: Mapping[str, float | None], previous: Mapping[str, str]
) -> tuple[dict[str, str], list[Change], list[str]]:
    """``(levels, changes, current alert messages)`` for one sample."""
    levels: dict[str, str] = {}
    changes: list[Change] = []
    messages: list[str] = []
    for rule in rules:
        before = previous.get(rule.metric, OK)
        value = values.get(rule.metric)
        if value is None:
            levels[rule.metric] = before
            if before != OK:
                messages.append(f"{before}: {rule.metric} (not measured in this sample)")
            continue
        level = rule.level(value)
        levels[rule.metric] = level
        if level != OK:
            messages.append(rule.message(level, value))
        if level != before:
            changes.append(Change(rule.metric, before, level, value, rule.message(level, value)))
    return levels, changes, messages
