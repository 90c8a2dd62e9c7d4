"""A rule's own before-window (``spec.judge.beforeWindow``) as its result shows it: the
window judged, how much of it the metrics source held, and when the rule fell back on
``windows.before`` (every control restarted inside the rule's window, or none left outside
it with enough requests to net out the night's drift: ``lacks_controls``). Its own module so ``service.analysis`` stays about looking data up and
handing it to the judge; the shown window lives in the result's free-form ``evidence`` (a
stored state stays what earlier releases read).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta

from analyzer.core.durations import format_duration
from analyzer.core.observations import covered_start
from analyzer.core.ports import Series
from analyzer.core.rules import Rule
from analyzer.core.verdicts import RuleResult
from analyzer.core.windows import RestartWindows, Window


def own_before_window(
    series: Sequence[Series], window: Window, step: timedelta
) -> tuple[dict[str, str], float]:
    """A rule's own before-window as results show it, and the seconds it covers: all of
    it, or — when the metrics source holds less history than the window — from where the
    data begins (the judge weighs the requests that are there; a note says so)."""
    shown = shown_window(window)
    begins = covered_start(series, window.start.timestamp(), step.total_seconds())
    if begins is None:
        return shown, window.length.total_seconds()
    covered = window.end - datetime.fromtimestamp(begins, tz=window.start.tzinfo)
    shown["covered_start"] = datetime.fromtimestamp(begins, tz=window.start.tzinfo).isoformat()
    shown["covered"] = format_duration(covered)
    return shown, covered.total_seconds()


def shown_window(window: Window) -> dict[str, str]:
    """A before-window as a result's ``evidence.before_window`` shows it."""
    return {**window.to_dict(), "length": format_duration(window.length)}


def fallback_window(windows: RestartWindows, own: timedelta, why: str) -> dict[str, str]:
    """``windows.before`` as a rule that could not use its own before-window (``own``)
    shows it, with ``why`` in its ``fallback``."""
    return {
        **shown_window(windows.before),
        "fallback": f"not the rule's own {format_duration(own)}: {why}",
    }


def lacks_controls(rule: Rule, controls: Sequence[str], results: Iterable[RuleResult]) -> bool:
    """True when ``rule`` judges against controls, there are some, and of its ``results``
    some reached a comparison (a test statistic: not too thin, not without data) and none
    of those could use a control (no control had enough evidence in both windows): the
    night's drift is not netted out of them. Results that are all too thin are not: a
    shorter window would hold even less."""
    compared = [result for result in results if result.statistic]
    return (
        rule.spec.judge.use_controls
        and bool(controls)
        and bool(compared)
        and not any(result.controls for result in compared)
    )


def with_window(result: RuleResult, shown: Mapping[str, str] | None) -> RuleResult:
    """``result`` with the rule's own before-window in its evidence (``before_window``: a
    free-form dict, so a stored state stays what earlier releases read), and a note in its
    reason when the metrics source held only part of it."""
    if shown is None:
        return result
    reason = result.reason
    if "fallback" in shown and "before-window " + shown["length"] not in reason:
        reason += f" [before-window {shown['length']}, {shown['fallback']}]"
    if "covered" in shown and "before-window partial" not in reason:
        reason += (
            f" [before-window partial: {shown['covered']} of the rule's {shown['length']} "
            "in the metrics source, judged on what is there]"
        )
    return replace(
        result, reason=reason, evidence={**result.evidence, "before_window": dict(shown)}
    )
