"""Verdicts as text a person reads at 3 a.m.: one line per rule with values and the reason."""

from __future__ import annotations

from datetime import datetime

from analyzer.core.verdicts import NamespaceVerdict, RuleResult, Verdict
from analyzer.core.windows import RestartWindows

_MARK = {
    Verdict.PASS: "PASS",
    Verdict.FAIL: "FAIL",
    Verdict.INCONCLUSIVE: "INCONCLUSIVE",
    Verdict.ERROR: "ERROR",
}


def rule_line(result: RuleResult) -> str:
    """``FAIL  error-rate  regression: 1.00% → 5.00% …`` with dry-run/non-critical marks."""
    marks = []
    if result.dry_run:
        marks.append("dry-run")
    if not result.critical:
        marks.append("non-critical")
    tag = f" [{', '.join(marks)}]" if marks else ""
    return f"  {_MARK[result.verdict]:<12} {result.rule}{tag}: {result.reason}"


def own_window_text(result: RuleResult) -> str | None:
    """``latency-p99 before 00:30:00–01:30:00 UTC (the rule's own 1h)``, with what a
    short-lived metrics source held of it, or why the rule read ``windows.before`` instead
    of its own (``fallback``); None when the rule has no before-window of its own."""
    window = result.evidence.get("before_window")
    if not window:
        return None
    start, end = (datetime.fromisoformat(window[key]) for key in ("start", "end"))
    span = f"{result.rule} before {start:%H:%M:%S}–{end:%H:%M:%S} UTC"
    if "fallback" in window:
        return f"{span} ({window.get('length', '')}, {window['fallback']})"
    text = f"{span} (the rule's own {window.get('length', '')}"
    if "covered" in window:
        text += f"; only the last {window['covered']} in the metrics source"
    return text + ")"


def own_window_lines(verdict: NamespaceVerdict) -> list[str]:
    """One line per rule judged on a before-window of its own."""
    return [text for result in verdict.rules if (text := own_window_text(result))]


def namespace_text(verdict: NamespaceVerdict, windows: RestartWindows | None = None) -> str:
    """The namespace verdict, its windows (a rule's own before-window on a line of its own)
    and one line per rule."""
    lines = [f"{verdict.namespace}: {_MARK[verdict.verdict]} — {verdict.reason}"]
    if windows is not None:
        lines.append(
            f"  windows: before {windows.before.start:%Y-%m-%d %H:%M:%S}–{windows.before.end:%H:%M:%S}, "
            f"after {windows.after.start:%H:%M:%S}–{windows.after.end:%H:%M:%S} UTC "
            f"(restart {windows.restarted_at:%H:%M:%S}, step {windows.step.total_seconds():g}s)"
        )
    lines.extend(f"  window: {text}" for text in own_window_lines(verdict))
    lines.extend(rule_line(result) for result in verdict.rules)
    return "\n".join(lines)
