"""The chart page's decoder (``decode.js``) run in Node on a MessagePack body in a file:
``tests/js/decode_file.js`` prints its columns as JSON (NaN as ``null``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "js" / "decode_file.js"


def node() -> str:
    """The ``node`` executable; the test is skipped (failed in CI) without Node.js and the
    page's tools."""
    found = shutil.which("node")
    if found is None or not (ROOT / "node_modules" / "@msgpack" / "msgpack").is_dir():
        reason = "Node.js and the page's tools are not installed (bash scripts/jstools.sh)"
        if IN_CI:
            pytest.fail(reason)
        pytest.skip(reason)
    return found
