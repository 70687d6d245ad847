"""The Teach panel in a real headless Chromium against a real server (one-head Torx
video, the shipped bundle): record examples -> adapt -> the live model's name changes
-> revert; without the token the page says so and nothing changes; the labels are
drawn by the page over the video."""

from __future__ import annotations

from pathlib import Path

import pytest
from _browser import chromium, require_chromium
from test_teach import TOKEN, start_server, status

pytestmark = pytest.mark.browser
require_chromium()

from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    srv = start_server(tmp_path_factory.mktemp("teachpage"))
    yield srv
    srv.stop()


@pytest.fixture()
def browser(tmp_path: Path):
    driver = chromium(tmp_path / "profile")
    driver.set_window_size(1280, 1400)
    yield driver
    driver.quit()


def _text(browser, element_id: str) -> str:
    return browser.execute_script(
        "return document.getElementById(arguments[0]).textContent.trim();", element_id
    )


def test_teach_flow_in_the_page(browser, server, tmp_path: Path) -> None:
    browser.get(f"{server.url}/?token={TOKEN}")
    wait = WebDriverWait(browser, 30, poll_frequency=0.2)
    wait.until(lambda d: _text(d, "teach-live").startswith("model: "))
    base_name = _text(browser, "teach-live")
    # labels drawn by the page over the video, from the event stream
    wait.until(
        lambda d: d.execute_script("return document.querySelectorAll('#overlay text').length") == 1
    )
    label = browser.execute_script("return document.querySelector('#overlay text').textContent")
    assert label.startswith("Torx"), label

    Select(browser.find_element("id", "teach-class")).select_by_value("philips")
    seconds = browser.find_element("id", "teach-seconds")
    seconds.clear()
    seconds.send_keys("3")
    browser.find_element("id", "teach-record").click()
    wait.until(lambda d: _text(d, "teach-record") == "Stop")
    wait.until(lambda d: _text(d, "teach-progress").startswith("Recorded"))
    saved = int(browser.find_element("id", "teach-progress").get_attribute("data-saved"))
    assert saved >= 3, _text(browser, "teach-progress")
    thumbs = browser.execute_script(
        "return [...document.querySelectorAll('#teach-thumbs img')]"
        ".map(i => i.complete && i.naturalWidth);"
    )
    assert thumbs and all(w == 28 for w in thumbs), thumbs
    counts = browser.execute_script(
        "return Object.fromEntries([...document.querySelectorAll('#teach-counts tr')]"
        ".map(r => [r.dataset.label, +r.querySelector('.n').textContent]));"
    )
    assert counts["philips"] == saved

    browser.find_element("id", "teach-adapt").click()
    wait.until(lambda d: _text(d, "teach-live").startswith("adapted: "))
    assert "Held-out accuracy" in _text(browser, "teach-result")
    assert _text(browser, "model-name") != base_name.removeprefix("model: ")
    assert status(server)["live"]["adapted"]
    path = tmp_path / "teach-adapted.png"
    browser.save_screenshot(str(path))
    print(f"screenshot: {path}")

    browser.find_element("id", "teach-revert").click()
    wait.until(lambda d: _text(d, "teach-live") == base_name)
    assert not status(server)["live"]["adapted"]


def test_without_the_token_the_page_says_so(browser, server) -> None:
    browser.get(f"{server.url}/")
    wait = WebDriverWait(browser, 20, poll_frequency=0.2)
    wait.until(lambda d: _text(d, "teach-live").startswith(("model: ", "adapted: ")))
    before = status(server)["examples"]
    browser.find_element("id", "teach-record").click()
    wait.until(lambda d: "access token" in _text(d, "teach-result"))
    assert status(server)["session"] is None or not status(server)["session"]["active"]
    assert status(server)["examples"] == before
