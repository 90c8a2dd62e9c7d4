"""Headless Chromium (Debian's chromium + chromium-driver) driven by Selenium, network off.

The browser gets a fresh profile, no proxy that works (``127.0.0.1:9``) and a resolver that
finds no host except 127.0.0.1, so a page that tried to load anything from outside would
fail visibly (console errors, missing charts). Tests skip with a reason when the Debian
packages are not installed; Selenium never downloads a browser or driver here.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@pytest.fixture(scope="session")
def chromium(tmp_path_factory) -> Iterator:
    """One headless Chromium for the session (starting one takes seconds)."""
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.skip(
            "needs the Debian packages chromium and chromium-driver "
            "(/usr/bin/chromium, /usr/bin/chromedriver): "
            "apt-get install -y --no-install-recommends chromium chromium-driver"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_AVOID_STATS", "true")
    profile = tmp_path_factory.mktemp("chromium-profile")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--proxy-server=127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--window-size=1200,1600",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=str(CHROMEDRIVER), log_output=str(profile / "driver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def browser(chromium) -> Iterator:
    """The session's Chromium on a blank page with an empty console log, left on a blank
    page again afterwards: a page that keeps polling (the status page) must not reach into
    the next test's console once the server it polled is gone."""
    chromium.get("about:blank")
    chromium.get_log("browser")
    try:
        yield chromium
    finally:
        chromium.get("about:blank")
        chromium.get_log("browser")


def severe_console_messages(driver) -> list[str]:
    """Console messages of level SEVERE since the last call (errors, CSP violations, failed
    loads)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def svg_sizes(driver, selector: str) -> dict[str, tuple[int, int, int]]:
    """Per matched element (by its ``data-rule``/``data-namespace``): the rendered width and
    height of its ``<svg>`` and how many drawn elements (paths, uses, texts) it holds."""
    return driver.execute_script(
        """
        const out = {};
        for (const card of document.querySelectorAll(arguments[0])) {
          const key = (card.dataset.namespace || '') + '/' + (card.dataset.rule || '');
          const svg = card.querySelector('figure.chart svg');
          if (!svg) { out[key] = [0, 0, 0]; continue; }
          const box = svg.getBoundingClientRect();
          out[key] = [Math.round(box.width), Math.round(box.height),
                      svg.querySelectorAll('path, use, text, polyline').length];
        }
        return out;
        """,
        selector,
    )
