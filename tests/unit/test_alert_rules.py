"""Alert rules: parsing ``metric=warning/critical`` and evaluating a sample's levels."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tsgate.errors import ConfigError
from tsgate.ops.monitor import METRICS
from tsgate.ops.rules import Rule, evaluate, parse_rules
from tsgate.settings import Settings


def test_rules_parse_with_open_levels() -> None:
    rules = parse_rules(" database_bytes=1e9/5e9, upstream_circuit_open=-/0,job_backlog=10/- ")
    assert rules == (
        Rule("database_bytes", 1e9, 5e9),
        Rule("upstream_circuit_open", None, 0.0),
        Rule("job_backlog", 10.0, None),
    )


def test_the_runbooks_suggested_rules_parse_against_the_known_metrics() -> None:
    runbook = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    suggested = runbook.split("TSGATE_ALERT_RULES='", 1)[1].split("'", 1)[0]
    rules = parse_rules(suggested, METRICS)
    assert {"request_error_ratio", "upstream_circuit_open", "store_bytes"} <= {
        r.metric for r in rules
    }
    assert Settings().alert_rules == "" and parse_rules(Settings().alert_rules, METRICS) == ()


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("database_bytes", "is not metric=warning/critical"),
        ("database_bytes=5", "is not metric=warning/critical"),
        ("=1/2", "is not metric=warning/critical"),
        ("database_bytes=-/-", "sets no threshold"),
        ("database_bytes=5/1", "critical is below warning"),
        ("database_bytes=x/1", "'x' is not a number"),
        ("database_bytes=inf/1", "is not a number"),
        ("disk_bytes=1/2", "unknown metric 'disk_bytes'"),
    ],
)
def test_bad_rules_name_the_variable_and_the_fault(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match="TSGATE_ALERT_RULES") as caught:
        parse_rules(text, METRICS)
    assert says in caught.value.detail


def test_levels_and_changes() -> None:
    rules = parse_rules("database_bytes=100/200,request_error_ratio=0.1/0.5")
    levels, changes, messages = evaluate(
        rules, {"database_bytes": 150, "request_error_ratio": 0.0}, {}
    )
    assert levels == {"database_bytes": "warning", "request_error_ratio": "ok"}
    assert [(c.rule, c.previous, c.level) for c in changes] == [("database_bytes", "ok", "warning")]
    assert messages == ["warning: database_bytes is 150, over 100 (TSGATE_ALERT_RULES)"]

    # the same level again is no change; a value over critical is
    _, again, _ = evaluate(rules, {"database_bytes": 160}, levels)
    assert again == []
    levels, up, _ = evaluate(rules, {"database_bytes": 201, "request_error_ratio": 0.0}, levels)
    assert [(c.previous, c.level) for c in up] == [("warning", "critical")]
    # a metric without a value keeps its level, and its alert
    kept, none, told = evaluate(rules, {"request_error_ratio": 0.0}, levels)
    assert kept["database_bytes"] == "critical" and none == []
    assert told == ["critical: database_bytes (not measured in this sample)"]
    cleared, down, after = evaluate(rules, {"database_bytes": 10, "request_error_ratio": 0}, levels)
    assert cleared["database_bytes"] == "ok" and after == []
    assert [(c.previous, c.level, c.message) for c in down] == [
        ("critical", "ok", "database_bytes is 10, back under its thresholds")
    ]


def test_thresholds_are_exceeded_not_reached() -> None:
    rule = Rule("upstream_circuit_open", None, 0.0)
    assert [rule.level(v) for v in (0.0, 1.0)] == ["ok", "critical"]
    assert Rule("x", 1.0, 2.0).level(1.0) == "ok"


def test_the_runbooks_alert_table_names_every_monitored_metric() -> None:
    runbook = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    table = runbook.split("| alert | means | first response |", 1)[1].split("\n\n", 1)[0]
    named = {
        name
        for row in table.splitlines()[2:]
        for name in re.findall(r"`([a-z_]+)`", row.split("|")[1])
    }
    assert named >= METRICS, sorted(METRICS - named)
