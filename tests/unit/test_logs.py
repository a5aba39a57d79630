"""Log set-up: JSON or text lines on stderr at the configured level; bad values refused."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tsgate.errors import ConfigError
from tsgate.ops import logs


@pytest.fixture(autouse=True)
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(
    ("level", "fmt", "problem"),
    [("loud", "json", "log level 'loud'"), ("info", "xml", "TSGATE_LOG_FORMAT='xml'")],
)
def test_bad_settings_are_refused_by_name(level: str, fmt: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        logs.configure(level=level, fmt=fmt)


def test_configure_sets_level_and_replaces_only_its_own_handler() -> None:
    # the test runner's own handlers (and none of ours from earlier tests) stay
    others = [h for h in logging.getLogger().handlers if not isinstance(h, logs.StderrHandler)]
    logs.configure(level="info", fmt="json")
    logs.configure(level="warning", fmt="text")
    root = logging.getLogger()
    assert root.level == logging.WARNING
    ours = [h for h in root.handlers if h not in others]
    assert len(ours) == 1 and isinstance(ours[0].formatter, logs.TextFormatter)
    assert all(h in root.handlers for h in others)
    assert logging.getLogger("uvicorn.error").handlers == []


def test_the_cli_writes_json_lines_and_refuses_a_bad_format() -> None:
    code = (
        "import logging, sys; from tsgate.cli import main, build_parser;"
        "from tsgate.ops import logs; logs.configure();"
        "logging.getLogger('tsgate.x').warning('hello %s', 'there', extra={'fields': {'n': 3}})"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    line = json.loads(done.stderr.strip())
    assert (line["logger"], line["level"], line["message"], line["n"]) == (
        "tsgate.x",
        "warning",
        "hello there",
        3,
    )
    bad = subprocess.run(
        [sys.executable, "-m", "tsgate", "version"],
        capture_output=True,
        text=True,
        env={"TSGATE_LOG_FORMAT": "xml", "PATH": ""},
    )
    assert bad.returncode == 2 and "TSGATE_LOG_FORMAT='xml'" in bad.stderr
