"""The page in a real browser against the real server on 127.0.0.1, over the bundled demo.

Upload the bundled example image, wait for the bars, check the top label against the
API's own answer, toggle the heatmap, trigger an error and read its message, and log in
with an API key that never appears in a URL, and hit the upload limit. Saves the
screenshot the README shows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers.server import REPO_ROOT, running_server

pytestmark = pytest.mark.browser

DEMO_MODELS = REPO_ROOT / "models"
EXAMPLE = REPO_ROOT / "examples" / "images" / "stop.jpg"
SCREENSHOT = REPO_ROOT / "docs" / "page.png"
WAIT_S = 30


def _wait(driver: Any, condition: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S).until(condition)


def _models_loaded(driver: Any) -> bool:
    select = driver.find_element("id", "model")
    return select.is_enabled() and bool(select.get_attribute("value"))


def _canvas(driver: Any) -> str:
    return str(driver.execute_script("return document.getElementById('canvas').toDataURL()"))


def _csp_violations(driver: Any) -> list[str]:
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]
    ]


@pytest.fixture(scope="module")
def demo_server():
    with running_server(DEMO_MODELS) as server:
        yield server


def test_upload_shows_bars_heatmap_timings_and_errors(browser, demo_server, tmp_path: Path):
    from selenium.webdriver.common.by import By

    api = httpx.post(
        f"{demo_server.url}/v1/models/demo/predict",
        content=EXAMPLE.read_bytes(),
        headers={"Content-Type": "image/jpeg"},
        timeout=30,
    )
    assert api.status_code == 200, api.text
    api_top = api.json()["predictions"][0]["top_k"][0]["label"]

    browser.get(demo_server.url + "/")
    _wait(browser, _models_loaded)
    assert "explanations: class-activation maps" in browser.find_element(By.ID, "model-note").text

    browser.find_element(By.ID, "file").send_keys(str(EXAMPLE))
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#bars li"))
    bars = browser.find_elements(By.CSS_SELECTOR, "#bars li")
    assert bars[0].get_attribute("data-label") == api_top == "stop"
    assert len(bars) == 5
    phases = [row.text.split()[0] for row in browser.find_elements(By.CSS_SELECTOR, "#timings tr")]
    assert {"decode", "preprocess", "queue", "inference", "total"} <= set(phases)
    assert "Heatmap for “stop”" in browser.find_element(By.ID, "explained").text

    canvas = browser.find_element(By.ID, "canvas")
    assert canvas.get_attribute("data-heatmap") == "true"
    with_heatmap = _canvas(browser)
    SCREENSHOT.parent.mkdir(exist_ok=True)
    browser.save_screenshot(str(SCREENSHOT))

    browser.find_element(By.ID, "show-heatmap").click()
    assert canvas.get_attribute("data-heatmap") == "false"
    without_heatmap = _canvas(browser)
    assert without_heatmap != with_heatmap
    browser.find_element(By.ID, "show-heatmap").click()
    slider = browser.find_element(By.ID, "opacity")
    browser.execute_script(
        "arguments[0].value = 90; arguments[0].dispatchEvent(new Event('input'))", slider
    )
    assert _canvas(browser) not in (with_heatmap, without_heatmap)

    # An unsupported file: the API's 415 becomes a readable message, the result stays.
    notes = tmp_path / "notes.txt"
    notes.write_text("not an image")
    browser.find_element(By.ID, "file").send_keys(str(notes))
    message = _wait(browser, lambda d: d.find_element(By.ID, "message").is_displayed())
    assert message
    text = browser.find_element(By.ID, "message").text
    assert text.startswith("This kind of file is not supported:")
    assert "Content-Type 'text/plain' is not accepted" in text
    assert _csp_violations(browser) == []


def test_the_api_key_field_appears_on_401_and_the_key_stays_out_of_urls(browser):
    """A server with an API key and an upload limit below the example image's size."""
    from selenium.webdriver.common.by import By

    key = "page-test-key-8c1f"
    limit = EXAMPLE.stat().st_size - 1
    env = {"RECTIFIER_API_KEYS": key, "RECTIFIER_MAX_UPLOAD_BYTES": str(limit)}
    with running_server(DEMO_MODELS, env=env) as server:
        browser.get(server.url + "/")
        _wait(browser, lambda d: d.find_element(By.ID, "message").is_displayed())
        assert "needs an API key" in browser.find_element(By.ID, "message").text
        field = browser.find_element(By.ID, "api-key")
        assert field.is_displayed() and field.get_attribute("type") == "password"
        field.send_keys(key)
        browser.find_element(By.CSS_SELECTOR, "#key-form button").click()
        _wait(browser, _models_loaded)
        assert not browser.find_element(By.ID, "message").is_displayed()
        browser.find_element(By.ID, "file").send_keys(str(EXAMPLE))
        _wait(browser, lambda d: d.find_element(By.ID, "message").is_displayed())
        text = browser.find_element(By.ID, "message").text
        assert text.startswith("The file is too large:"), text
        assert str(limit) in text  # the server's own message, with its limit
        urls = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name)"
        )
        assert urls and all(key not in url for url in [*urls, browser.current_url])
        assert _csp_violations(browser) == []
