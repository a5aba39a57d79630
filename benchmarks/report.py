"""The one results table, printed and written to ``docs/benchmarks.md`` with its context."""

from __future__ import annotations

import datetime as dt
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

HEADER = ("scenario", "measure", "tsgate", "baseline", "baseline / tsgate", "goal", "met")


@dataclass(frozen=True)
class Row:
    scenario: str
    measure: str
    value: str
    baseline: str = ""
    ratio: str = ""
    goal: str = ""
    met: str = ""

    def cells(self) -> tuple[str, ...]:
        return (
            self.scenario,
            self.measure,
            self.value,
            self.baseline,
            self.ratio,
            self.goal,
            self.met,
        )


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    loads: list[str] = field(default_factory=list)  # the machine's load, as `uptime` says it
    peaks: dict[str, int | None] = field(default_factory=dict)  # tsgate's VmHWM per scenario

    def add(self, rows: Sequence[Row]) -> None:
        self.rows.extend(rows)


def verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def ratio(baseline: float, value: float) -> str:
    if value <= 0 or baseline <= 0:
        return "–"
    r = baseline / value
    return f"{r:,.0f}×" if r >= 100 else f"{r:,.1f}×"


def markdown_table(rows: Sequence[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r.cells()) + " |" for r in rows]
    return "\n".join(lines)


def machine_facts() -> list[str]:
    return [
        f"nproc: {os.cpu_count()}",
        f"CPU: {_cpu_model()}",
        f"Python: {platform.python_version()} ({platform.python_implementation()})",
        f"OS: {platform.system()} {platform.release()}",
    ]


def load_average(when: str) -> str:
    """The machine's load as `uptime` reports it: other work on the same cores shows here."""
    one, five, fifteen = os.getloadavg()
    return f"{when}: {one:.2f}, {five:.2f}, {fifteen:.2f}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_markdown(
    path: Path, report: Report, *, command: str, started: dt.datetime, elapsed_s: float
) -> None:
    parts = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m benchmarks`); every figure below was measured",
        "in the run described here. Rerun it to refresh this page; `--quick` is a smaller",
        "smoke run that does not overwrite this page unless `--write` is given.",
        "",
        "## How to run",
        "",
        "```bash",
        "make bench                            # the full run (10–20 minutes on 2 shared cores)",
        ".venv/bin/python -m benchmarks --quick  # smaller sizes, under 90 s",
        ".venv/bin/python -m benchmarks --help   # --latency-ms, --only chart,dashboard,…",
        "```",
        "",
        "## This run",
        "",
        f"- command: `{command}`",
        f"- date: {started.strftime('%Y-%m-%d %H:%M UTC')} ({elapsed_s:.0f} s)",
        *(f"- {fact}" for fact in machine_facts()),
        *(f"- load average (1, 5, 15 min) {when}" for when in report.loads),
        "",
        "## Results",
        "",
        markdown_table(report.rows),
        "",
    ]
    if report.failures:
        parts += ["## Failures", "", *(f"- {f}" for f in report.failures), ""]
    parts += ["## Notes", "", *(f"- {n}" for n in report.notes), ""]
    path.write_text("\n".join(parts))
