"""The live page in a real headless Chromium, against a real server.

Selenium gets the driver path explicitly, so Selenium Manager never downloads
anything. Screenshots are saved in the test's temporary folder (path printed;
SCREWCAM_SCREENSHOT_DIR keeps copies)."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from _browser import chromium, require_chromium
from _service_helpers import Server

pytestmark = pytest.mark.browser
require_chromium()

from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    srv = Server("--source", "demo")
    srv.start(tmp_path_factory.mktemp("page") / "serve.log")
    yield srv
    srv.stop()


@pytest.fixture()
def browser(tmp_path: Path):
    driver = chromium(tmp_path / "profile", "--hide-scrollbars")
    yield driver
    driver.quit()


def _keep(path: Path) -> None:
    keep = os.environ.get("SCREWCAM_SCREENSHOT_DIR")
    if keep:
        shutil.copy(path, Path(keep) / path.name)
    print(f"screenshot: {path}")


def _load_live(browser, server: Server, width: int, height: int) -> None:
    browser.set_window_size(width, height)
    browser.get(server.url + "/")
    wait = WebDriverWait(browser, 20, poll_frequency=0.2)
    wait.until(
        lambda d: d.execute_script(
            "const i = document.getElementById('stream'); return i.complete && i.naturalWidth > 0;"
        )
    )
    wait.until(
        lambda d: d.execute_script("return document.querySelectorAll('#heads li').length > 0;")
    )
    wait.until(lambda d: d.find_element("id", "camera").text == "camera: ok")


def _video_region(browser, shot: np.ndarray) -> np.ndarray:
    rect = browser.execute_script(
        "const r = document.getElementById('stream').getBoundingClientRect();"
        "return [r.left, r.top, r.width, r.height, window.devicePixelRatio];"
    )
    x, y, w, h, dpr = (float(v) for v in rect)
    x0, y0 = int(x * dpr), int(y * dpr)
    x1 = min(shot.shape[1], int((x + w) * dpr))
    y1 = min(shot.shape[0], int((y + h) * dpr))
    return shot[y0:y1, x0:x1]


def test_page_shows_live_video_and_heads(browser, server: Server, tmp_path: Path) -> None:
    _load_live(browser, server, 1280, 860)
    # One snapshot of the DOM (it is redrawn for every frame).
    names, bars, counts = browser.execute_script(
        "const q = (s, f) => [...document.querySelectorAll(s)].map(f);"
        "return [q('#heads li .name', e => e.textContent),"
        "        q('#heads .fill', e => e.style.width),"
        "        q('#classes li .n', e => +e.textContent)];"
    )
    assert names and all(names), names
    known = {"hex socket", "Phillips", "Pozidriv", "hex head", "Torx", "unknown"}
    assert set(names) <= known, names
    assert len(bars) == len(names) and all(b.endswith("%") for b in bars)
    assert sum(counts) == len(names)
    assert browser.find_element("id", "fps").text not in ("", "–")
    # Nothing is loaded from outside the server.
    urls = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name);"
    )
    assert all(u.startswith(server.url) for u in urls), urls

    path = tmp_path / "page-desktop.png"
    browser.save_screenshot(str(path))
    _keep(path)
    shot = cv2.imread(str(path))
    video = _video_region(browser, shot)
    assert video.shape[0] > 200 and video.shape[1] > 300, video.shape
    gray = cv2.cvtColor(video, cv2.COLOR_BGR2GRAY)
    assert gray.std() > 15, "the video area is blank"
    assert 20 < gray.mean() < 235, "the video area is blank"


def test_page_fits_a_phone(browser, server: Server, tmp_path: Path) -> None:
    _load_live(browser, server, 390, 844)
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth;"
    )
    assert overflow <= 0, f"page is {overflow}px wider than a phone screen"
    img_w, view_w = browser.execute_script(
        "return [document.getElementById('stream').getBoundingClientRect().width,"
        " document.documentElement.clientWidth];"
    )
    assert 0.8 * view_w <= img_w <= view_w
    path = tmp_path / "page-phone.png"
    browser.save_screenshot(str(path))
    _keep(path)
    gray = cv2.cvtColor(_video_region(browser, cv2.imread(str(path))), cv2.COLOR_BGR2GRAY)
    assert gray.std() > 15


def test_page_classifies_a_chosen_photo(browser, server: Server, tmp_path: Path) -> None:
    from _service_helpers import demo_jpeg

    jpeg, frame = demo_jpeg(seed=4)
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(jpeg)
    _load_live(browser, server, 1280, 1100)
    browser.find_element("id", "photo").send_keys(str(photo))
    WebDriverWait(browser, 20, poll_frequency=0.2).until(
        lambda d: d.execute_script("return !document.getElementById('photo-view').hidden;")
    )
    names, message, canvas_w = browser.execute_script(
        "return [[...document.querySelectorAll('#photo-heads .name')].map(e => e.textContent),"
        " document.getElementById('photo-message').textContent,"
        " document.getElementById('photo-view').width];"
    )
    assert len(names) >= len(frame.truth) - 1, (names, message)
    assert message.startswith(f"{len(names)} head"), message
    assert canvas_w == 640
    path = tmp_path / "page-photo.png"
    browser.save_screenshot(str(path))
    _keep(path)


@pytest.mark.parametrize("size", [(1280, 860), (390, 844)], ids=["desktop", "phone"])
def test_page_overlays_every_label_on_the_clean_stream(browser, server: Server, size) -> None:
    _load_live(browser, server, *size)
    src = browser.execute_script("return document.getElementById('stream').src;")
    assert "/stream.mjpg?labels=0" in src, src
    wait = WebDriverWait(browser, 20, poll_frequency=0.2)
    wait.until(
        lambda d: d.execute_script("return document.querySelectorAll('#overlay text').length > 0;")
    )
    # One snapshot of the DOM: the list and the overlay are redrawn from the same result.
    names, texts, rects, labels, svg, img, view_box = browser.execute_script(
        "const q = (s, f) => [...document.querySelectorAll(s)].map(f);"
        "const box = (e) => { const r = e.getBoundingClientRect();"
        "  return [r.left, r.top, r.width, r.height]; };"
        "return [q('#heads li .name', e => e.textContent),"
        "  q('#overlay text', e => e.textContent),"
        "  document.querySelectorAll('#overlay rect').length,"
        "  q('#overlay text', e => e.dataset.label),"
        "  box(document.getElementById('overlay')), box(document.getElementById('stream')),"
        "  document.getElementById('overlay').getAttribute('viewBox')];"
    )
    # every head of the list has its label on the video: "<name> <pct>%" (+ " #<track>")
    assert len(texts) == rects == len(names) > 0, (texts, rects, names)
    parsed = [re.fullmatch(r"(.+) (\d+)%( #\d+)?", t) for t in texts]
    assert all(parsed), texts
    assert sorted(m.group(1) for m in parsed) == sorted(names), (texts, names)
    assert set(labels) <= {"innensechskant", "philips", "pozidriv", "sechskant", "torx", "unknown"}
    # the overlay covers the scaled video exactly, in the frame's coordinates
    assert view_box == "0 0 640 480"
    assert all(abs(a - b) <= 1.0 for a, b in zip(svg, img, strict=True)), (svg, img)
    assert img[2] <= size[0]


def test_page_retries_the_video_beyond_max_viewers(browser, tmp_path: Path) -> None:
    from _service_helpers import open_stream

    config = tmp_path / "config.toml"
    config.write_text("[stream]\nmax_viewers = 2\nviewer_timeout_s = 120\nmax_fps = 5\n")
    srv = Server("--config", str(config), "--source", "demo")
    srv.start(tmp_path / "serve.log")
    others = []
    try:
        others = [open_stream(srv), open_stream(srv)]  # every slot taken
        browser.set_window_size(1280, 860)
        browser.get(srv.url + "/")
        wait = WebDriverWait(browser, 20, poll_frequency=0.2)
        wait.until(lambda d: d.find_element("id", "video-note").is_displayed())
        note = browser.find_element("id", "video-note").text
        assert "too many viewers" in note and "5 s" in note, note
        assert browser.execute_script("return document.getElementById('stream').naturalWidth;") == 0
        for conn, resp in others:  # the other viewers leave: the page's video comes back
            resp.close()  # (the response holds the socket open too)
            conn.close()
        others = []
        WebDriverWait(browser, 30, poll_frequency=0.2).until(
            lambda d: d.execute_script(
                "const i = document.getElementById('stream');"
                "return i.complete && i.naturalWidth > 0"
                " && document.getElementById('video-note').hidden;"
            )
        )
        wait.until(lambda d: d.find_element("id", "camera").text == "camera: ok")
    finally:
        for conn, resp in others:
            resp.close()
            conn.close()
        srv.stop()
