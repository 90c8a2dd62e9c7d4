"""``analyze --report`` against a real Prometheus holding backfilled Istio history.

The JSON and plain-text outputs stay exactly as before; the report, opened in headless
Chromium, has a rendered chart for every rule and makes the failing rule stand out.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from selenium.webdriver.common.by import By

from tests.fixtures.istio_history import (
    NamespaceHistory,
    Traffic,
    history_prometheus,
)
from tests.views.conftest import severe_console_messages, svg_sizes

RESTART = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
NORMAL = Traffic(rps=20, error_share=0.01, latency_median_ms=20)
HISTORIES = [
    NamespaceHistory("steady", NORMAL, NORMAL),
    NamespaceHistory("other", NORMAL, NORMAL),
    NamespaceHistory("errors", NORMAL, Traffic(rps=20, error_share=0.05, latency_median_ms=20)),
]
RULES = {
    "error-rate",
    "latency-p50",
    "latency-p99",
    "request-volume",
    "client-error-rate",
    "client-latency-p99",
}


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    with history_prometheus(
        tmp_path_factory.mktemp("prometheus-history"), HISTORIES, RESTART
    ) as server:
        yield server


def analyze(prometheus, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "analyzer",
            "analyze",
            "--namespace",
            "errors",
            "--controls",
            "steady,other",
            "--restarted-at",
            RESTART.isoformat().replace("+00:00", "Z"),
            "--prometheus-url",
            prometheus.url,
            "--rules",
            "rules",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_json_contract_unchanged_and_report_written(prometheus, tmp_path, browser):
    report = tmp_path / "out" / "errors.html"
    result = analyze(prometheus, "--output", "json", "--report", str(report))
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)
    assert set(document) == {
        "namespace", "verdict", "reason", "windows", "controls", "queries_sent", "rules",
    }  # fmt: skip
    assert document["verdict"] == "fail"
    assert f"report written to {report}" in result.stderr

    browser.get(report.as_uri())
    browser.save_screenshot(str(tmp_path / "analysis-report.png"))
    assert browser.find_element(By.ID, "verdict").get_attribute("data-verdict") == "fail"
    sizes = svg_sizes(browser, "section.rule")
    assert set(sizes) == {f"errors/{name}" for name in RULES}
    for key, (width, height, drawn) in sizes.items():
        assert width > 300 and height > 100 and drawn > 20, (key, sizes[key])
    failing = browser.find_element(By.CSS_SELECTOR, "section.rule.failing")
    assert failing.get_attribute("data-rule") == "error-rate"
    error_rate = next(r for r in document["rules"] if r["rule"] == "error-rate")
    assert failing.find_element(By.CLASS_NAME, "before-value").text == (
        f"{error_rate['before'] * 100:.2f}%"
    )
    assert failing.find_element(By.CLASS_NAME, "after-value").text == (
        f"{error_rate['after'] * 100:.2f}%"
    )
    failing.screenshot(str(tmp_path / "failing-rule.png"))
    assert "steady, other" in browser.find_element(By.CSS_SELECTOR, "table.kv").text
    assert severe_console_messages(browser) == []


def test_plain_text_when_not_a_terminal(prometheus, tmp_path):
    report = tmp_path / "errors.html"
    result = analyze(prometheus, "--report", str(report))
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("errors: FAIL — ")
    assert any(line.startswith("  FAIL         error-rate: ") for line in lines)
    assert lines[-1] == "  controls: steady, other"
    assert "\x1b[" not in result.stdout + result.stderr  # no colours or spinners off a TTY
    assert report.read_text().count("<svg") == len(RULES)


def test_unwritable_report_path_is_bad_input(prometheus, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = analyze(prometheus, "--report", str(blocker / "report.html"))
    assert result.returncode == 2
    assert "--report: cannot write" in result.stderr


def test_summary_table_and_progress_on_a_terminal(prometheus):
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "analyzer", "analyze", "--namespace", "errors",
         "--controls", "steady", "--restarted-at", RESTART.isoformat(),
         "--prometheus-url", prometheus.url, "--rules", "rules"],
        stdin=subprocess.DEVNULL, stdout=secondary, stderr=secondary,
        env={**os.environ, "COLUMNS": "200", "TERM": "xterm"},
    )  # fmt: skip
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert process.wait(timeout=120) == 1
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert "errors: FAIL" in screen
    assert "┃" in screen or "│" in screen  # a rich table, not the plain lines
    assert "error-rate" in screen and "controls: steady" in screen
