"""The charts and labels of a report, read from their output: tick labels at the window's
scale, judged values labelled over their windows, evidence as labelled values.

Text in the SVG is drawn as glyph paths; matplotlib's SVG backend writes each text's string
as a comment just before its glyphs (``_draw_text_as_path`` in
``matplotlib/backends/backend_svg.py``), which is what these tests read.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from selenium.webdriver.common.by import By

from analyzer.core.verdicts import NamespaceVerdict, RuleResult, Verdict
from analyzer.views.charts import rule_chart_svg
from analyzer.views.labels import labelled_rows
from analyzer.views.reports import render_analysis_report, rule_view, write_report
from tests.views.conftest import severe_console_messages
from tests.views.sample_data import canary_rules

START = datetime(2026, 3, 2, 14, 7, 0, tzinfo=UTC).timestamp()


def _texts(svg: str, group: str) -> list[str]:
    """The strings drawn inside each ``<g id="…{group}_N">`` of the SVG, in order."""
    return re.findall(rf'<g id="[^"]*\b{group}_\d+">.*?<!-- (.*?) -->', svg, re.S)


def _comments(svg: str) -> list[str]:
    return re.findall(r"<!-- (.*?) -->", svg)


def _error_rate(span_seconds: float, step: float) -> RuleResult:
    """The sample error-rate result with its windows laid over ``span_seconds``: a third
    before, a third of settling, a third after, one point per ``step``."""
    third = span_seconds / 3
    count = int(third // step)
    before = [[START + i * step, 0.01] for i in range(count + 1)]
    after = [[START + 2 * third + i * step, 0.05] for i in range(count + 1)]
    return replace(canary_rules()[1], series={"before": before, "after": after})


def test_a_night_compressed_into_seconds_has_second_resolution_ticks():
    svg = rule_chart_svg(_error_rate(60, 5))
    ticks = _texts(svg, "xtick")
    assert len(ticks) >= 3, ticks
    assert all(re.fullmatch(r"14:0[78]:\d\d", t) for t in ticks), ticks
    assert len(set(ticks)) == len(ticks), ticks
    assert "2026-03-02 UTC" in _comments(svg)  # the date once, at the axis's end


def test_two_hours_have_minute_ticks():
    svg = rule_chart_svg(_error_rate(2 * 3600, 60))
    ticks = _texts(svg, "xtick")
    assert len(ticks) >= 3, ticks
    assert all(re.fullmatch(r"1[456]:\d\d", t) for t in ticks), ticks
    assert len(set(ticks)) == len(ticks), ticks


def test_days_show_the_date():
    svg = rule_chart_svg(_error_rate(3 * 86400, 3600))
    ticks = _texts(svg, "xtick")
    assert any(re.fullmatch(r"Mar 0\d", t) for t in ticks), ticks
    assert len(set(ticks)) == len(ticks), ticks


def test_judged_values_are_labelled_over_their_windows():
    rule = canary_rules()[1]  # error rate judged 1.00% → 5.00%
    comments = _comments(rule_chart_svg(rule))
    assert "judged before 1.00%" in comments
    assert "judged after 5.00%" in comments
    latency = canary_rules()[0]
    comments = _comments(rule_chart_svg(latency))
    assert "judged before 41.0 ms" in comments and "judged after 43.5 ms" in comments


@pytest.mark.parametrize(
    ("index", "says"),
    [
        (0, "p99 of the buckets summed over the whole window"),
        (1, "errors ÷ requests summed over the whole window"),
        (2, "the window's requests divided by its length"),
    ],
)
def test_each_chart_says_how_its_line_and_judged_values_are_read(index, says):
    view = rule_view(canary_rules()[index])
    assert "of each step" in view.caption and says in view.caption
    assert rule_view(replace(canary_rules()[index], series={})).caption == ""  # no line


def test_evidence_rows_have_labels_and_formatted_values():
    rows = labelled_rows(
        {
            "before_requests": 10000,
            "after_bad": 12,
            "before_quantile": {"value_ms": 41.04, "bucket": [25, 50]},
            "estimate_allowance": 0.125,
            "skipped": None,
        },
        "ratio",
    )
    assert rows == [
        ("requests before", "10,000"),
        ("errors after", "12"),
        ("quantile before · value", "41.0 ms"),
        ("quantile before · bucket", "25.0 ms – 50.0 ms"),
        ("estimate allowance", "0.125"),
    ]
    threshold = labelled_rows({"allowed_change": 0.005, "confidence": 0.99}, "ratio")
    assert threshold == [("allowed change", "+0.50 pp"), ("confidence to fail", "99%")]
    assert labelled_rows({"p_value": 3.1e-3, "namespaces": ["a", "b"]}) == [
        ("p-value", "0.0031"),
        ("namespaces", "a, b"),
    ]


def test_report_shows_evidence_as_a_labelled_table_in_chromium(browser, tmp_path):
    rule = replace(
        canary_rules()[1],
        evidence={"before_requests": 10000, "after_requests": 9800, "before_bad": 100,
                  "after_bad": 12, "min_requests": 500},
    )  # fmt: skip
    verdict = NamespaceVerdict("payments", Verdict.FAIL, "error-rate failed", (rule,))
    html = render_analysis_report(verdict, None)
    assert "before_requests" not in html and "after_bad=" not in html
    path = write_report(tmp_path / "analysis.html", html)
    browser.get(path.as_uri())
    table = browser.find_element(By.CSS_SELECTOR, 'table.labelled[data-section="evidence"]')
    rows = [
        (row.find_element(By.TAG_NAME, "th").text, row.find_element(By.TAG_NAME, "td").text)
        for row in table.find_elements(By.TAG_NAME, "tr")
    ]
    assert rows == [
        ("requests before", "10,000"),
        ("requests after", "9,800"),
        ("errors before", "100"),
        ("errors after", "12"),
        ("requests needed per window", "500"),
    ]
    caption = browser.find_element(By.CSS_SELECTOR, "figure.chart figcaption").text
    assert "summed over the whole window" in caption
    assert severe_console_messages(browser) == []
