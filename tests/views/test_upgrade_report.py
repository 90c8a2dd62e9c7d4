"""The report of a rolled-back upgrade, built from typed verdicts, opened in headless Chromium."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from selenium.webdriver.common.by import By

from analyzer.core.upgrade import NamespaceRecord, UpgradeStyle, UpgradeSummary
from analyzer.core.verdicts import NamespaceVerdict, RuleResult, Verdict
from analyzer.views.reports import render_analysis_report, render_upgrade_report, write_report
from tests.views.conftest import severe_console_messages, svg_sizes
from tests.views.sample_data import (
    canary_rules,
    planned_forecast,
    rolled_back_summary,
    rolled_back_timeline,
)


def test_report_is_self_contained():
    html = render_upgrade_report(rolled_back_summary(), rolled_back_timeline())
    assert "<script" not in html
    assert not re.search(r"<link[^>]+stylesheet", html)
    assert not re.search(r"""(src|href)=["']https?:""", html)
    assert "@import" not in html and "url(http" not in html
    ids = re.findall(r'\bid="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "charts inlined in one page must not share element ids"


def test_rolled_back_upgrade_report_in_chromium(browser, tmp_path):
    path = write_report(
        tmp_path / "upgrade.html",
        render_upgrade_report(rolled_back_summary(), rolled_back_timeline()),
    )
    browser.get(path.as_uri())
    browser.save_screenshot(str(tmp_path / "upgrade-report.png"))

    assert browser.find_element(By.ID, "outcome").get_attribute("data-outcome") == "rolled_back"
    callout = browser.find_element(By.CSS_SELECTOR, ".failing-callout[data-failing-rule]")
    assert callout.get_attribute("data-failing-rule") == "error-rate"
    assert callout.get_attribute("data-namespace") == "payments"
    assert callout.find_element(By.CLASS_NAME, "before-value").text == "1.00%"
    assert callout.find_element(By.CLASS_NAME, "after-value").text == "5.00%"

    sizes = svg_sizes(browser, "section.rule")
    assert set(sizes) == {"payments/error-rate", "payments/latency-p99", "payments/request-volume"}
    for key, (width, height, drawn) in sizes.items():
        assert width > 300 and height > 100 and drawn > 20, (key, sizes[key])

    failing = browser.find_elements(By.CSS_SELECTOR, "section.rule.failing")
    assert [card.get_attribute("data-rule") for card in failing] == ["error-rate"]
    card = failing[0]
    assert card.find_element(By.CLASS_NAME, "before-value").text == "1.00%"
    assert card.find_element(By.CLASS_NAME, "after-value").text == "5.00%"
    assert "allowed limit 1.50%" in card.text
    timeline = browser.find_element(By.CSS_SELECTOR, "table.timeline").text
    assert "RollingBack" in timeline and "TagMoved" in timeline
    assert severe_console_messages(browser) == []


def test_verdict_objects_win_over_summary_rules():
    verdict = NamespaceVerdict("payments", Verdict.FAIL, "error-rate failed", tuple(canary_rules()))
    summary = rolled_back_summary()
    bare = summary.namespaces[0].model_copy(update={"rules": ()})
    summary = summary.model_copy(update={"namespaces": (bare, *summary.namespaces[1:])})
    html = render_upgrade_report(summary, [], {"payments": verdict})
    assert html.count('data-failing-rule="error-rate"') == 1
    assert html.count("<svg") == 3


def test_report_tolerates_a_bare_summary():
    summary = UpgradeSummary(
        outcome=None, from_revision="", to_revision="", tag="", style=UpgradeStyle.TAG,
        upgrade_id="", reason=None, namespaces=(NamespaceRecord(name="a"),),
    )  # fmt: skip
    html = render_upgrade_report(summary, [{"message": "started"}])
    assert "IN PROGRESS" in html and "Not judged" in html and "started" in html


def test_analysis_report_of_a_rule_without_data():
    empty = RuleResult("error-rate", "ghost", Verdict.INCONCLUSIVE, "no data before or after")
    verdict = NamespaceVerdict("ghost", Verdict.INCONCLUSIVE, "error-rate: no data", (empty,))
    html = render_analysis_report(verdict, None, (), {"Prometheus": "http://127.0.0.1:9090"})
    assert html.count("<svg") == 1
    assert "no data in either window" in html  # the chart says so (glyphs drawn as paths)
    assert "none (no drift correction)" in html and "INCONCLUSIVE · ghost" in html


def test_soak_and_prune_have_their_own_section():
    """The notes of the soak and the prune (analyzer/service/prune_path.py) are repeated
    under "After the upgrade"; the rest of the timeline is not."""
    at = datetime(2026, 3, 3, 1, 42, tzinfo=UTC)
    timeline = [
        {"at": at, "message": "tag default moved to 1-15-4", "reason": "TagMoved"},
        {"at": at, "message": "soak started: revision 1-14-6 stays installed until at least "
         "2026-03-04T01:42:00+00:00", "reason": "SoakStarted"},
        {"at": at, "message": "prune approval by bob refused: nothing to prune: soaking",
         "reason": "PruneRefused", "warning": True},
        {"at": at, "message": "prune of 1-14-6 approved by alice: change 4711",
         "reason": "PruneApproved"},
        {"at": at, "message": "deleted Deployment istio-system/istiod-1-14-6",
         "reason": "PruneDeleted"},
    ]
    html = render_upgrade_report(rolled_back_summary(), timeline)
    section = html.split('id="after-the-upgrade"', 1)[1].split("<h2", 1)[0]
    assert "approved by alice: change 4711" in section
    assert "deleted Deployment istio-system/istiod-1-14-6" in section
    assert 'class="warning"' in section and "refused: nothing to prune: soaking" in section
    assert "TagMoved" not in section
    assert "after-the-upgrade" not in render_upgrade_report(rolled_back_summary(), timeline[:1])


def _forecast_rows(html: str) -> dict[str, str]:
    """Each forecast row's text by namespace (tags dropped)."""
    table = html.split('<table class="forecast">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<tr class="[^"]*" data-namespace="([^"]+)">(.*?)</tr>', table, re.S)
    return {name: re.sub(r"<[^>]+>", " | ", body) for name, body in rows}


def test_the_report_shows_the_forecast_the_night_was_planned_with():
    summary = rolled_back_summary().model_copy(update={"forecast": planned_forecast()})
    html = render_upgrade_report(summary, rolled_back_timeline())
    assert 'id="forecast"' in html
    rows = _forecast_rows(html)
    assert list(rows) == ["payments", "search"]  # in plan order
    assert "~48000 requests per window (80 rps)" in rows["payments"]
    assert "its own traffic" in rows["payments"]
    assert "error-rate: detects +0.61 pp" in rows["payments"]
    assert "latency-p99: detects +12%" in rows["payments"]
    assert "~72 requests per window (0.12 rps)" in rows["search"]
    assert "quiet policy: pool" in rows["search"]
    assert "error-rate: cannot judge it alone" in rows["search"]
    # a night planned with no forecast (Prometheus could not answer) shows no section
    assert 'id="forecast"' not in render_upgrade_report(rolled_back_summary())
