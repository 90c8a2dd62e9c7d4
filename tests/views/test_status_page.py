"""The service's status page and report routes, served by a real uvicorn on loopback.

The app holds only these routes plus ``/api/status`` answering from a dict the test
changes; the page must pick the change up by polling (``/status.json``, the same dict with
the timeline formatted as in the upgrade report), without a reload.
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

from analyzer.views.http_api import HttpServer
from analyzer.views.reports import render_upgrade_report, timeline_item, write_report
from analyzer.views.status_page import list_reports, register_status_routes
from tests.views.conftest import severe_console_messages
from tests.views.sample_data import planned_forecast, rolled_back_summary, rolled_back_timeline

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
    assert browser.find_element(By.ID, "timeline-none").is_displayed()
    assert browser.find_element(By.ID, "queued").text == "none"
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
    failed["queued_requests"] = [  # an abort a standby took, not yet applied by the leader
        {"id": "5e1f", "verb": "abort", "at": "2026-03-02T01:43:00+00:00", "via": "replica-b"},
    ]
    board.set(failed)

    wait.until(lambda d: d.find_element(By.ID, "phase").text == "ROLLING BACK")
    row = browser.find_element(By.CSS_SELECTOR, '#namespaces tr[data-namespace="payments"]')
    assert "failing" in row.get_attribute("class")
    assert "error-rate fail 0.01 → 0.05" in row.text
    assert "error-rate 1.00% → 5.00%" in browser.find_element(By.ID, "verdicts").text
    queued = browser.find_element(By.ID, "queued").text
    assert queued == "abort via replica-b at 2026-03-02T01:43:00+00:00"
    link = browser.find_element(By.CSS_SELECTOR, "#reports a")
    assert link.text == "upgrade-1-15-4.html"
    assert browser.execute_script("return window.__sameDocument === true"), "page was reloaded"
    browser.save_screenshot(str(tmp_path / "status-page.png"))
    assert severe_console_messages(browser) == []

    # a poll that changes nothing in the list keeps the very same link element: one redrawn
    # on every poll could vanish under the pointer and swallow the click
    for element in (link, row):
        browser.execute_script("arguments[0].dataset.seen = 'yes'", element)
    board.set({**failed, "message": "still rolling back"})
    wait.until(lambda d: d.find_element(By.ID, "message").text == "still rolling back")
    for selector in ("#reports a", '#namespaces tr[data-namespace="payments"]'):
        seen = browser.execute_script(f"return document.querySelector('{selector}').dataset.seen")
        assert seen == "yes", f"{selector} was redrawn by a poll that changed nothing in it"
    link.click()
    wait.until(lambda d: d.find_elements(By.ID, "outcome"))
    assert browser.find_element(By.ID, "outcome").get_attribute("data-outcome") == "rolled_back"
    assert severe_console_messages(browser) == []


def _api_timeline(items: list[dict]) -> list[dict]:
    """Timeline items as ``/api/status`` gives them: times as ISO 8601 text."""
    return [{**item, "at": item["at"].isoformat()} for item in items]


def _timeline_rows(driver) -> list[list[str]]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#timeline tbody tr'))"
        ".map(tr => Array.from(tr.cells).map(td => td.textContent));"
    )


def test_status_page_shows_the_upgrade_timeline_in_utc(browser, service):
    url, board, _reports = service
    timeline = _api_timeline(rolled_back_timeline())
    running = copy.deepcopy(RUNNING)
    # the canary's restart at 01:30 UTC, given with another offset
    running["timeline"] = [*timeline[:2], {**timeline[2], "at": "2026-03-02T02:30:00+01:00"}]
    board.set(running)
    browser.get(url + "/")
    wait = WebDriverWait(browser, 20, poll_frequency=0.1)
    wait.until(lambda d: len(_timeline_rows(d)) == 3)
    browser.execute_script("window.__sameDocument = true")
    assert not browser.find_element(By.ID, "timeline-none").is_displayed()
    as_in_report = [timeline_item(item) for item in rolled_back_timeline()]
    expected = [[i["at"], i["reason"], i["namespace"], i["message"]] for i in as_in_report]
    assert _timeline_rows(browser) == expected[:3]
    assert expected[2] == [
        "2026-03-02 01:30:00", "Restarted", "payments", "canary payments restarted (3 deployments)"
    ]  # fmt: skip

    rolled_back = copy.deepcopy(running)
    rolled_back["phase"] = "rolling_back"
    rolled_back["timeline"] = timeline
    board.set(rolled_back)
    wait.until(lambda d: len(_timeline_rows(d)) == len(timeline))
    assert _timeline_rows(browser) == expected  # oldest first, newest last, as in the report
    text = browser.find_element(By.ID, "timeline").text
    for item in rolled_back_timeline():
        assert item["message"] in text
    rows = browser.find_elements(By.CSS_SELECTOR, "#timeline tbody tr")
    assert [row.get_attribute("class") for row in rows] == [i["kind"] for i in as_in_report]
    assert "warning" in rows[3].get_attribute("class")  # the failing verdict stands out
    assert browser.execute_script("return window.__sameDocument === true"), "page was reloaded"
    assert severe_console_messages(browser) == []


def test_status_json_is_the_status_with_the_report_timeline(tmp_path):
    status = {**copy.deepcopy(RUNNING), "timeline": _api_timeline(rolled_back_timeline())}
    with serving(lambda: copy.deepcopy(status), tmp_path) as url:
        answer = httpx.get(url + "/status.json", timeout=10)
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    page = answer.json()
    assert page["timeline"] == [timeline_item(item) for item in rolled_back_timeline()]
    assert {k: v for k, v in page.items() if k != "timeline"} == RUNNING


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
        polled = httpx.get(f"http://127.0.0.1:{server.bound_port}/status.json", timeout=10)
    finally:
        server.stop()
    assert answer.status_code == 200
    assert 'id="initial-status">null<' in answer.text
    assert polled.status_code == 503
    assert "nonce-" in answer.headers["content-security-policy"]


def test_status_json_cannot_break_out_of_its_script(tmp_path):
    hostile = {"message": "</script><script>alert(1)</script>"}
    with serving(lambda: hostile, tmp_path) as url:
        text = httpx.get(url + "/", timeout=10).text
    assert "</script><script>alert(1)" not in text


def _prune_state(driver) -> str:
    return driver.find_element(By.ID, "prune-state").text


def test_status_page_shows_the_soak_the_revisions_and_the_prune_offer(browser, service):
    """The "After the upgrade" section follows ``prune`` and ``revisions`` of the status
    (analyzer/service/prune_path.py): soaking until when, the uses named, then ready."""
    url, board, _reports = service
    old = {"revision": "1-14-6", "installed": True, "in_use": True,
           "istiods": [{"namespace": "istio-system", "name": "istiod-1-14-6"}],
           "injectors": ["istio-sidecar-injector-1-14-6"], "tags": [],
           "pods": [{"namespace": "accounts", "name": "debug-shell", "owner": "bare pod",
                     "controlled": False, "phase": "Running"}],
           "completed_pods": [{"namespace": "accounts", "name": "ledger-compact-x",
                               "owner": "Job accounts/ledger-compact", "controlled": False,
                               "phase": "Succeeded"}],
           "failed_pods": [], "blockers": ["pod accounts/debug-shell (bare pod) runs its proxy"]}
    new = {"revision": "1-15-4", "installed": True, "in_use": True, "tags": ["default"],
           "istiods": [{"namespace": "istio-system", "name": "istiod-1-15-4"}],
           "injectors": [], "pods": [], "completed_pods": [], "failed_pods": [],
           "blockers": ["tag default points at it"]}
    soaking = {**RUNNING, "phase": "done",
               "prune": {"upgrade_id": "u1", "revision": "1-14-6", "state": "soaking",
                         "soak_ends": "2026-03-03T01:42:00+00:00", "detail": ""},
               "revisions": {"read_at": "2026-03-02T02:00:00+00:00", "revisions": [old, new]}}
    board.set(soaking)
    browser.get(url + "/")
    wait = WebDriverWait(browser, 20, poll_frequency=0.1)
    wait.until(lambda d: "soaking until 2026-03-03T01:42:00+00:00" in _prune_state(d))
    row = browser.find_element(By.CSS_SELECTOR, '#revision-use tr[data-revision="1-14-6"]')
    assert "istiod istiod-1-14-6, injector istio-sidecar-injector-1-14-6" in row.text
    assert "1 (0 of workloads, 1 Job or bare)" in row.text
    assert "1 completed, 0 failed" in row.text
    assert "pod accounts/debug-shell (bare pod) runs its proxy" in row.text

    blocked = copy.deepcopy(soaking)
    blocked["prune"].update(state="in-use", detail=old["blockers"][0], blockers=old["blockers"])
    board.set(blocked)
    wait.until(lambda d: _prune_state(d) ==
               "not offered, still in use: pod accounts/debug-shell (bare pod) runs its proxy")
    ready = copy.deepcopy(blocked)
    ready["prune"].update(state="ready", detail="", blockers=None)
    board.set(ready)
    wait.until(lambda d: "approve with canary-analyzer approve-prune" in _prune_state(d))
    assert severe_console_messages(browser) == []


def _forecast_rows(driver) -> dict[str, list[str]]:
    return driver.execute_script(
        "return Object.fromEntries(Array.from(document.querySelectorAll('#forecast tbody tr'))"
        ".map(tr => [tr.dataset.namespace, Array.from(tr.cells).map(td => td.textContent)]));"
    )


def test_status_page_shows_the_nights_forecast(browser, service):
    url, board, _reports = service
    browser.get(url + "/")
    wait = WebDriverWait(browser, 20, poll_frequency=0.1)
    wait.until(lambda d: d.find_element(By.ID, "phase").text == "UPGRADING")
    assert not browser.find_element(By.ID, "forecast-section").is_displayed()  # none planned
    browser.execute_script("window.__sameDocument = true")

    planned = copy.deepcopy(RUNNING)
    planned["upgrade"]["forecast"] = [each.model_dump(mode="json") for each in planned_forecast()]
    board.set(planned)
    wait.until(lambda d: d.find_element(By.ID, "forecast-section").is_displayed())
    rows = _forecast_rows(browser)
    assert list(rows) == ["payments", "search"]  # in plan order
    assert rows["payments"][:3] == [
        "payments", "~48000 requests per window (80 rps)", "its own traffic"
    ]  # fmt: skip
    assert rows["payments"][3] == "error-rate: detects +0.61 pp; latency-p99: detects +12%"
    assert rows["search"][1:3] == ["~72 requests per window (0.12 rps)", "quiet policy: pool"]
    assert rows["search"][3].startswith("error-rate: cannot judge it alone")
    row = browser.find_element(By.CSS_SELECTOR, '#forecast tr[data-namespace="search"]')
    assert row.get_attribute("class") == "quiet"

    board.set(RUNNING)  # the next upgrade was planned without one: the section goes
    wait.until(lambda d: not d.find_element(By.ID, "forecast-section").is_displayed())
    assert browser.execute_script("return window.__sameDocument === true"), "page was reloaded"
    assert severe_console_messages(browser) == []
