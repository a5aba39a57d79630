"""The chart page attaches files to a saved chart and lists them (headless Chromium),
and the panel passes axe-core like the rest of the page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.asgi import live_server, sim_client
from tests.browser import page_state, wait_for
from tests.e2e.test_chart_page import FAN_POWER, SITES, SUPPLY_TEMP, _open, _pick_points, _press
from tests.e2e.test_chart_page_a11y import _serious
from tests.unit.test_file_content import png_bytes
from tsgate.app import create_app
from tsgate.settings import Settings
from tsgate.upstream.simulator import create_simulator


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("files-page")
    sim = create_simulator(seed=1, tokens={"demo": SITES})
    conf = Settings(
        database_url=f"sqlite:///{tmp}/t.db",
        objects_url=f"file://{tmp}/objects",
        upstream_token="demo",
    )
    with live_server(create_app(conf, upstream=sim_client(sim))) as url:
        yield url


def _listed(driver: Any) -> list[str]:
    """The attachments listed, read in one script (the list is drawn again as files
    change: elements found one call earlier may be gone)."""
    texts = driver.execute_script(
        "return [...document.querySelectorAll('#attachment-list li button')]"
        ".map((b) => b.innerText)"
    )
    return [str(t) for t in texts]


def test_a_saved_chart_gets_attachments(base_url: str, browser: Any, tmp_path: Path) -> None:
    _open(browser, base_url + "/")
    assert not browser.find_element("id", "attachments").is_displayed()  # nothing saved yet
    _pick_points(browser, SUPPLY_TEMP, FAN_POWER)
    _press(browser, '#presets [data-preset="24h"]')
    browser.find_element("id", "save").click()
    prompt = wait_for(browser, lambda d: d.switch_to.alert, "the name prompt")
    prompt.send_keys("AHU 1 with plan")
    prompt.accept()
    wait_for(browser, lambda d: d.find_element("id", "attachments").is_displayed(), "the panel")
    wait_for(browser, lambda d: d.find_element("id", "attachments-empty").is_displayed(), "none")
    chart_id = browser.current_url.split("chart=")[1]

    plan = tmp_path / "floor plan.png"
    plan.write_bytes(png_bytes(32, 32))
    disguised = tmp_path / "readings.csv"
    disguised.write_bytes(png_bytes(8, 8))  # a PNG named .csv: refused, and said so
    browser.find_element("id", "attach-file").send_keys(str(plan))
    wait_for(browser, lambda d: _listed(d), "the attachment listed")
    assert _listed(browser) == [f"floor plan.png · {plan.stat().st_size} B · PNG"]
    browser.find_element("id", "attach-file").send_keys(str(disguised))

    def refusal(d: Any) -> str | None:
        text = str(d.find_element("id", "message").text)
        return text if text.startswith("Unsupported") else None  # not the "Saved: …" note

    message = wait_for(browser, refusal, "the refusal shown")
    assert message.startswith("Unsupported media type") and "'.csv' says CSV" in message
    assert len(_listed(browser)) == 1

    with httpx.Client(base_url=base_url) as client:
        files = client.get("/api/files", params={"chart": chart_id}).json()["items"]
        got = client.get(files[0]["url"])
    assert [f["name"] for f in files] == ["floor plan.png"]
    assert got.content == plan.read_bytes()

    # the saved chart opened again shows its attachment
    browser.get(f"{base_url}/?chart={chart_id}")
    wait_for(browser, lambda d: page_state(d) == "ready", "the saved chart")
    wait_for(browser, lambda d: _listed(d), "the attachment listed again")
    assert _serious(browser) == []
