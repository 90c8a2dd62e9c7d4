"""A rule judged on a before-window of its own (``spec.judge.beforeWindow``) says so
wherever windows are shown: the text verdict, the terminal summary, the HTML report's
header and the rule's card — with how much of it a short-lived metrics source held."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from rich.console import Console

from analyzer.core.verdicts import NamespaceVerdict, RuleResult, Verdict
from analyzer.core.windows import RestartWindows
from analyzer.views.reports import render_analysis_report
from analyzer.views.terminal import print_verdict_table
from analyzer.views.verdict_text import namespace_text

RESTART = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
WINDOWS = RestartWindows.around(
    RESTART, timedelta(minutes=10), timedelta(minutes=2), timedelta(minutes=10),
    timedelta(minutes=1),
)  # fmt: skip
HOUR = {
    "start": (RESTART - timedelta(hours=1)).isoformat(), "end": RESTART.isoformat(),
    "length": "1h", "covered_start": (RESTART - timedelta(minutes=25)).isoformat(),
    "covered": "25m",
}  # fmt: skip


def verdict() -> NamespaceVerdict:
    p99 = RuleResult("latency-p99", "shop", Verdict.PASS, "within allowed change",
                     before=120.0, after=122.0, evidence={"before_window": HOUR})  # fmt: skip
    errors = RuleResult("error-rate", "shop", Verdict.PASS, "within allowed change",
                        before=0.01, after=0.01)  # fmt: skip
    return NamespaceVerdict("shop", Verdict.PASS, "all rules passed", (p99, errors))


def test_text_and_terminal_show_the_rules_own_window_and_what_was_held():
    expected = (
        "latency-p99 before 00:30:00–01:30:00 UTC (the rule's own 1h; only the last 25m in "
        "the metrics source)"
    )
    text = namespace_text(verdict(), WINDOWS)
    assert f"  window: {expected}" in text
    assert text.count("window: ") == 1  # error-rate keeps windows.before
    out = io.StringIO()
    print_verdict_table(verdict(), WINDOWS, console=Console(file=out, width=300))
    assert f"window: {expected}" in out.getvalue()


def test_the_html_report_shows_it_in_the_header_and_the_rules_card():
    html = render_analysis_report(verdict(), WINDOWS)
    assert "<th>Before window, latency-p99</th>" in html
    assert html.count("(the rule&#39;s own 1h; only the last 25m in the metrics source)") == 2
    assert "Before window, error-rate" not in html


def test_a_rule_that_fell_back_on_windows_before_does_not_call_it_its_own():
    fallback = {
        "start": (RESTART - timedelta(minutes=10)).isoformat(), "end": RESTART.isoformat(),
        "length": "10m", "fallback": "not the rule's own 1h: every control was restarted inside it",
    }  # fmt: skip
    p99 = RuleResult("latency-p99", "shop", Verdict.PASS, "within allowed change",
                     before=120.0, after=122.0, evidence={"before_window": fallback})  # fmt: skip
    text = namespace_text(NamespaceVerdict("shop", Verdict.PASS, "all rules passed", (p99,)), WINDOWS)
    assert (
        "window: latency-p99 before 01:20:00–01:30:00 UTC (10m, not the rule's own 1h: every "
        "control was restarted inside it)"
    ) in text
    assert "the rule's own 10m" not in text
