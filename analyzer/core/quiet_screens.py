"""The screens that keep a quiet namespace from being passed on someone else's evidence
when its own data leans to a regression. Their own module so ``core.quiet`` (which applies
them) stays about policies and pools, and so each screen's statistics sit in one place.

A pooled or inherited pass leans on other namespaces; these decide when the namespace's own
data refuses it. They only ever hold (a person decides), never roll back, so they screen at
``SCREEN_ALPHA``, looser than any rule's own alpha.
"""

from __future__ import annotations

from dataclasses import replace

from analyzer.core.formatting import Style, format_value, p_value_text
from analyzer.core.judge import RuleInput, judge_rule
from analyzer.core.observations import Observation, RatioCounts
from analyzer.core.verdicts import RuleResult

#: A pooled or inherited pass is refused when the namespace's own data shows a change beyond
#: the rule's allowance at this significance — against "no change" for its own windows,
#: beyond the allowance against the wave's before-rate: looser than any rule's own alpha on
#: purpose, as a screen only ever holds, never rolls back.
SCREEN_ALPHA = 0.01


def _beyond_allowance(result: RuleResult) -> float | None:
    """How far a result's own estimate lies beyond the rule's allowance, the bad way (≤ 0:
    within it); None when the judge gave no estimate."""
    estimate = result.statistic.get("estimate")
    allowance = result.statistic.get("estimate_allowance")
    if estimate is None or allowance is None:
        return None
    direction = str(result.threshold.get("direction", "increase"))
    worse = {"increase": estimate, "decrease": -estimate}.get(direction, abs(estimate))
    return worse - allowance


def own_data_leans_bad(result: RuleResult) -> bool:
    """The screen: the namespace's own estimate is beyond the allowance (the bad way) and
    significant against "no change" at ``SCREEN_ALPHA``."""
    p_value = result.statistic.get("p_value_no_change")
    beyond = _beyond_allowance(result)
    return p_value is not None and beyond is not None and beyond > 0 and p_value < SCREEN_ALPHA


def within_allowance(result: RuleResult) -> bool:
    """Whether a result's own estimate lies within the rule's allowance (not the bad way
    beyond it): an INCONCLUSIVE namespace with enough requests whose estimate does is
    undecided, not suspect — at the wave's last look its rule's policy judges it, without
    a pool (it would outweigh the quiet ones in it)."""
    beyond = _beyond_allowance(result)
    return beyond is not None and beyond <= 0


def wave_refusal(
    result: RuleResult, data: RuleInput, reference: Observation | None
) -> RuleResult | None:
    """The second screen, for counts: the namespace's own after-window judged against the
    wave's pooled before-rate (``core.quiet.wave_reference``), net of the same controls —
    returned when it refuses the pass, else None. A quiet namespace's own before-window
    holds too few requests to show a regression significantly (no errors in ~100 requests
    fits a healthy 0.1 % and a broken 5 % alike); the wave's before-rate is known well.

    It refuses when the namespace's own estimate is beyond the allowance (the bad way) and
    its after-window against the wave's rate is a change beyond the allowance at
    ``SCREEN_ALPHA`` — beyond the allowance, not merely a change: namespaces' error rates
    differ (one serving 0.8 % beside a wave at 0.2 % is normal), and the allowance is what
    the rule says a namespace may differ by. Both are needed, so a namespace whose errors
    are always higher than the wave's, as its own before-window shows, is not held for that
    alone. Judged only when its own estimate leans that way."""
    if reference is None or not isinstance(data.after, RatioCounts) or data.after.total <= 0:
        return None
    if within_allowance(result):
        return None
    screen = judge_rule(replace(data, before=reference, alpha=SCREEN_ALPHA))
    p_value = screen.statistic.get("p_value_beyond_allowance")
    return screen if p_value is not None and p_value < SCREEN_ALPHA else None


def wave_screen_text(screen: RuleResult) -> str:
    """What the wave screen found, for the refusal's reason."""
    p_value = screen.statistic.get("p_value_beyond_allowance")
    before = format_value(screen.before, "ratio", Style.REASON)
    after = format_value(screen.after, "ratio", Style.REASON)
    return (
        f"its own after-window ({after}) leans to a regression against the wave's "
        f"before-rate ({before}): change net of controls "
        f"{format_value(screen.statistic.get('estimate'), 'pp', Style.REASON)}, allowed "
        f"{format_value(screen.statistic.get('estimate_allowance'), 'pp', Style.REASON).lstrip('+')}, "
        f"{p_value_text(p_value or 0.0)} beyond it"
    )


__all__ = [
    "SCREEN_ALPHA",
    "own_data_leans_bad",
    "wave_refusal",
    "wave_screen_text",
    "within_allowance",
]
