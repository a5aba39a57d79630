"""Schemathesis over /api/openapi.json against the embedded server (a real process on
the embedded defaults): no 5xx and no answer that breaks the document, for every route."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_connections import tsgate

pytestmark = pytest.mark.slow
BUDGET_S = 90  # the fuzzing and stateful phases repeat until this is spent
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)


def test_schemathesis_finds_no_server_error_and_no_schema_violation(tmp_path: Path) -> None:
    with tsgate(
        tmp_path,
        TSGATE_UPSTREAM_TOKEN="demo",  # requests without a token are served (the demo)
        TSGATE_RATE_LIMIT_PER_MIN="0",
        TSGATE_ADMIN_KEY="fuzz",
        TSGATE_INLINE_FETCH_SAMPLES="20000",  # large cold reads become jobs, not minutes
        TSGATE_LIVE_MAX_S="5",  # a live stream ends well within the request timeout
    ) as (url, proc):
        run = subprocess.run(
            [
                os.path.join(os.path.dirname(sys.executable), "schemathesis"),
                "run",
                f"{url}/api/openapi.json",
                "--checks",
                ",".join(CHECKS),
                # examples, fuzzing and stateful sequences; the boundary-value "coverage"
                # phase stops with a runtime error of its own when the time budget ends in
                # it on a loaded machine (not a finding about the server)
                "--phases",
                "examples,fuzzing,stateful",
                "--max-examples",
                "10",
                "--seed",
                "1",
                "--max-time",
                str(BUDGET_S),
                "--workers",
                "2",
                "--request-timeout",
                "30",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=BUDGET_S + 120,
            cwd=tmp_path,
            check=False,
        )
        assert proc.poll() is None, "the server died under the fuzzer"
    summary = run.stdout[-3000:]
    assert run.returncode == 0, summary
    assert " passed" in summary and "failed" not in summary.split("Test cases:")[-1], summary
