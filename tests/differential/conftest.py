"""The differential suite prints what it compared after the run."""

from __future__ import annotations

import pytest

from tests.differential.harness import TALLIES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLIES:
        return
    terminalreporter.section("differential: tsgate against the simulator's truth")
    for t in TALLIES:
        terminalreporter.write_line(t.report())
    queries = sum(t.queries for t in TALLIES)
    samples = sum(t.samples for t in TALLIES)
    divergences = sum(len(t.divergences) for t in TALLIES)
    terminalreporter.write_line(
        f"total: {queries} queries, {samples:,} samples compared, {divergences} divergences"
    )
