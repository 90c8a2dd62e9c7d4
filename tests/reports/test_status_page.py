"""The service's status page and report routes, served by a real uvicorn on loopback.

The app holds only these routes plus ``/api/status`` answering from a dict the test
changes; the page must pick the change up by polling, without a reload.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from fastapi import FastAPI
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from analyzer.runtime.http_api import HttpServer
from analyzer.runtime.reports import render_upgrade_report, write_report
from analyzer.runtime.status_page import list_reports, register_status_routes
from tests.reports.conftest import severe_console_messages
from tests.reports.sample_data import rolled_back_summary

RUNNING = {
    "phase": "upgrading",
    "paused": False,
    "leader": True,
    "window": {"open": True, "closes_at": "2026-03-02T05:00:00+00:00", "opens_at": None},
    "upgrade": {
        "tag": "default",
        "from_revision": "1-14-6",
        "to_revision": "1-15-4",
        "stage": "wave",
        "namespaces_done": 0,
        "namespaces_total": 3,
        "namespaces": [
            {"name": "payments", "state": "judging", "verdict": None, "rules": []},
            {"name": "checkout", "state": "pending", "verdict": None, "rules": []},
            {"name": "search", "state": "pending", "verdict": None, "rules": []},
        ],
    },
    "last_verdicts": [],
    "message": "judging payments at 01:42",
}


class StatusBoard:
    """What ``/api/status`` answers; the test replaces it while the page is open."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status = copy.deepcopy(RUNNING)

    def get(self) -> dict:
        with self._lock:
            return copy.deepcopy(self._status)

    def set(self, status: dict) -> None:
        with self._lock:
            self._status = copy.deepcopy(status)


@contextmanager
def serving(get_status, reports) -> Iterator[str]:
    """A real uvicorn on a free loopback port with the status routes and ``/api/status``."""
    app = FastAPI()
    app.get("/api/status")(get_status)
    register_status_routes(app, get_status, reports, poll_seconds=0.5)
    server = HttpServer(app, "127.0.0.1", 0)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.bound_port}"
    finally:
        server.stop()


@pytest.fixture
def service(tmp_path) -> Iterator[tuple[str, StatusBoard, object]]:
    board = StatusBoard()
    reports = tmp_path / "reports"
    reports.mkdir()
    with serving(board.get, reports) as url:
        yield url, board, reports


def test_status_page_updates_in_place(browser, service, tmp_path):
    url, board, reports = service
    browser.get(url + "/")
    wait = WebDriverWait(browser, 20, poll_frequency=0.1)
    wait.until(lambda d: d.find_element(By.ID, "phase").text == "UPGRADING")
    assert browser.find_element(By.ID, "progress-text").text == "0 / 3 namespaces"
    assert "judging payments" in browser.find_element(By.ID, "message").text
    browser.execute_script("window.__sameDocument = true")

    write_report(reports / "upgrade-1-15-4.html", render_upgrade_report(rolled_back_summary()))
    failed = copy.deepcopy(RUNNING)
    failed["phase"] = "rolling_back"
    failed["upgrade"]["stage"] = "rollback"
    failed["upgrade"]["namespaces"][0].update(
        state="rolled_back",
        verdict="fail",
        rules=[{"rule": "error-rate", "verdict": "fail", "before": 0.01, "after": 0.05}],
    )
    failed["last_verdicts"] = [
        {"namespace": "payments", "verdict": "fail", "reason": "error-rate 1.00% → 5.00%",
         "at": "2026-03-02T01:42:00Z"},
    ]  # fmt: skip
    failed["reports"] = list_reports(reports)
    board.set(failed)

    wait.until(lambda d: d.find_element(By.ID, "phase").text == "ROLLING BACK")
    row = browser.find_element(By.CSS_SELECTOR, '#namespaces tr[data-namespace="payments"]')
    assert "failing" in row.get_attribute("class")
    assert "error-rate fail 0.01 → 0.05" in row.text
    assert "error-rate 1.00% → 5.00%" in browser.find_element(By.ID, "verdicts").text
    link = browser.find_element(By.CSS_SELECTOR, "#reports a")
    assert link.text == "upgrade-1-15-4.html"
    assert browser.execute_script("return window.__sameDocument === true"), "page was reloaded"
    browser.save_screenshot(str(tmp_path / "status-page.png"))
    assert severe_console_messages(browser) == []

    link.click()
    wait.until(lambda d: d.find_elements(By.ID, "outcome"))
    assert browser.find_element(By.ID, "outcome").get_attribute("data-outcome") == "rolled_back"
    assert severe_console_messages(browser) == []


def test_reports_are_served_safely(service, tmp_path):
    url, _board, reports = service
    write_report(reports / "good.html", "<html><body>report</body></html>")
    (reports / ".hidden.html").write_text("hidden")
    secret = tmp_path / "secret.html"
    secret.write_text("secret")
    (reports / "link.html").symlink_to(secret)
    with httpx.Client(base_url=url, timeout=10) as client:
        answer = client.get("/reports/good.html")
        assert answer.status_code == 200 and answer.text.endswith("report</body></html>")
        assert "script" not in answer.headers["content-security-policy"]
        assert "sandbox" in answer.headers["content-security-policy"]
        listing = client.get("/reports/")
        assert listing.status_code == 200
        assert 'href="/reports/good.html"' in listing.text
        assert ".hidden.html" not in listing.text and "link.html" not in listing.text
        for bad in (
            "/reports/..%2Fsecret.html",
            "/reports/%2E%2E%2Fsecret.html",
            "/reports/.hidden.html",
            "/reports/link.html",
            "/reports/missing.html",
            "/reports/good.txt",
        ):
            assert client.get(bad).status_code == 404, bad
        assert client.get("/reports/../secret.html").status_code == 404


def test_status_page_survives_a_failing_status_source(tmp_path):
    def broken() -> dict:
        raise RuntimeError("state not loaded yet")

    app = FastAPI()
    register_status_routes(app, broken, tmp_path)
    server = HttpServer(app, "127.0.0.1", 0)
    server.start()
    try:
        answer = httpx.get(f"http://127.0.0.1:{server.bound_port}/", timeout=10)
    finally:
        server.stop()
    assert answer.status_code == 200
    assert 'id="initial-status">null<' in answer.text
    assert "nonce-" in answer.headers["content-security-policy"]


def test_status_json_cannot_break_out_of_its_script(tmp_path):
    hostile = {"message": "</script><script>alert(1)</script>"}
    with serving(lambda: hostile, tmp_path) as url:
        text = httpx.get(url + "/", timeout=10).text
    assert "</script><script>alert(1)" not in text
