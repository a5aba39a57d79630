"""Credentials in URLs never reach a log line or the command line's output."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tsgate.ops import logs


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("redis://user:hunter2@cache:6379/0", "redis://***@cache:6379/0"),
        ("amqp://guest:guest@127.0.0.1:5672/", "amqp://***@127.0.0.1:5672/"),
        (
            "postgresql://tsgate:pw@db/tsgate and s3://k:s@b",
            "postgresql://***@db/tsgate and s3://***@b",
        ),
        ("https://flightdeck.aceiot.cloud/api", "https://flightdeck.aceiot.cloud/api"),
        ("memory:// and sqlite:///./var/tsgate.db", "memory:// and sqlite:///./var/tsgate.db"),
        ("mail me at a@b.example", "mail me at a@b.example"),
    ],
)
def test_redact(text: str, shown: str) -> None:
    assert logs.redact(text) == shown


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_log_lines_are_redacted(fmt: str) -> None:
    record = logging.LogRecord(
        "tsgate", logging.WARNING, __file__, 1, "queue %s down", ("redis://:s3cr3t@h/1",), None
    )
    formatter = logs.JsonFormatter() if fmt == "json" else logs.TextFormatter()
    line = formatter.format(record)
    assert "s3cr3t" not in line and "redis://***@h/1" in line


def test_the_worker_prints_its_queue_without_the_password(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "TSGATE_DATABASE_URL": f"sqlite:///{tmp_path}/t.db",
        "TSGATE_OBJECTS_URL": f"file://{tmp_path}/objects",
        # a queue that refuses the login: the worker still starts and logs its failures
        "TSGATE_QUEUE_URL": "redis://user:hunter2@127.0.0.1:1/15",
        "TSGATE_JOB_POLL_S": "0.2",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "tsgate", "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60  # the worker's start-up line, however loaded the machine
    try:
        while time.monotonic() < deadline:
            line = proc.stdout.readline().decode()
            if not line:
                break  # the worker ended
            lines.append(line)
            if "tsgate worker" in line:
                break
    finally:
        proc.terminate()
        rest, _ = proc.communicate(timeout=30)
    text = "".join(lines) + rest.decode()
    assert "tsgate worker" in text and "redis://***@127.0.0.1:1/15" in text
    assert "hunter2" not in text
