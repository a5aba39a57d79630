"""Fixtures of the page tests: one headless Chromium per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # real processes and a browser: outside `make test-fast`
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.slow)
