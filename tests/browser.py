"""Headless Chromium for page tests (Selenium with Debian's chromedriver).

Missing Chromium skips the test with the reason, except under ``CI=true`` where it fails:
``make test`` installs it (``scripts/browser.sh``) when it runs as root.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,900",
)
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
WAIT_S = 30.0

# What the chart page drew, read back from its ECharts instance, and its record of loads.
DRAWN = """
const chart = echarts.getInstanceByDom(document.getElementById('chart'));
const option = chart.getOption();
return {
  series: option.series.map((s) => ({
    name: s.name, type: s.type, yAxisIndex: s.yAxisIndex,
    points: s.data.length, values: s.data.filter((d) => d[1] !== null).length,
  })),
  yAxes: (option.yAxis || []).map((a) => a.name),
  loads: window.__tsgateLoads,
};
"""


def _binary() -> str | None:
    return next((path for path in CHROMIUM if Path(path).exists()), None)


def _skip_or_fail(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason}; CI must have it (make test installs it as root)")
    pytest.skip(f"{reason} (install with: apt-get install chromium chromium-driver)")


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A Selenium driver on a fresh headless Chromium profile."""
    binary = _binary()
    if binary is None or not Path(CHROMEDRIVER).exists():
        _skip_or_fail("Chromium and chromedriver are not installed")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _skip_or_fail("selenium is not installed (pip install -e '.[dev]')")
    profile = tempfile.mkdtemp(prefix="tsgate-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(binary)
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for(
    driver: Any, condition: Callable[[Any], Any], what: str, timeout_s: float = WAIT_S
) -> Any:
    """Wait until ``condition(driver)`` is truthy; on timeout, fail with the page's state."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout_s, poll_frequency=0.05).until(condition)
    except TimeoutException:
        state = driver.execute_script("return document.body.dataset.state")
        message = driver.execute_script("return document.getElementById('message').textContent")
        logs = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        pytest.fail(
            f"timed out waiting for {what}; page state={state!r} message={message!r} {logs}"
        )


def page_state(driver: Any) -> str:
    """The chart page's state: idle, loading, job, ready, error or cancelled."""
    return str(driver.execute_script("return document.body.dataset.state"))


def screenshot(driver: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    return path
