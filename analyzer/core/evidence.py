"""Before a night moves anything: which planned namespaces serve too little traffic for the
rules to judge them.

Why it exists: a rule with ``minEvidence.requests`` is INCONCLUSIVE — never PASS — when a
window holds fewer requests, and an inconclusive wave is extended and then held for a
person. A namespace at 0.3 rps cannot reach 500 requests in a 10-minute window, so a
night that includes it ends held however healthy it is. Platform teams should learn that
when they plan the night (``upgrade --dry-run``, the start of ``upgrade`` and ``serve``),
not at 3 a.m. from a page. A rule with its own, longer before-window
(``spec.judge.beforeWindow``) is bound by the after-window: its evidence is counted over the
shorter of the two. Pure: counts in, findings out; the service fetches the counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from analyzer.core.durations import format_duration
from analyzer.core.rules import Rule, RuleSet


@dataclass(frozen=True)
class ThinEvidence:
    """A planned namespace whose recent traffic is below what the rules need per window."""

    namespace: str
    requests: float  # in the last window-length before the check
    needed: int
    window: timedelta

    def describe(self, on_inconclusive: str, policy: str = "hold") -> str:
        """One line for a warning, the log and the timeline. Extensions lengthen only the
        after-window, so a before-window this thin stays thin at every look. ``policy``:
        the deciding rules' quiet policy (``core.quiet``); only ``hold`` holds the night."""
        if policy != "hold":
            return (
                f"namespace {self.namespace} served ~{self.requests:.0f} requests in the last "
                f"{format_duration(self.window)}; the rules need ≥ {self.needed} in each window, "
                f"so it is too quiet to be judged alone: the plan puts it last and its rules' "
                f"quiet policy ({policy}) judges it at its wave's last look — pooled with the "
                f"wave's other quiet namespaces, else on the revision's verdicts on busier "
                f"namespaces; never passed when its own data leans to a regression or a "
                f"health gate (crash loop, restarts, proxy readiness, 5xx cap) fails"
            )
        then = (
            "the upgrade holds there for a person"
            if on_inconclusive == "hold"
            else "the upgrade rolls back there"
        )
        return (
            f"namespace {self.namespace} served ~{self.requests:.0f} requests in the last "
            f"{format_duration(self.window)}; the rules need ≥ {self.needed} in each window, so unless its "
            f"traffic rises every look at it is INCONCLUSIVE (extensions lengthen only the "
            f"after-window) and {then} (upgrade.on_inconclusive={on_inconclusive}); lengthen "
            f"the windows or leave it out of the plan"
        )


def needed_requests(rules: RuleSet) -> int:
    """The most requests per window any deciding rule (critical, not dry-run) needs; 0
    when none sets ``minEvidence.requests``."""
    return max(
        (
            rule.spec.judge.min_evidence.requests
            for rule in rules
            if rule.spec.critical and not rule.spec.dry_run
        ),
        default=0,
    )


def evidence_window(rule: Rule, before: timedelta, after: timedelta) -> timedelta:
    """The window whose requests bind ``rule``'s evidence: the shorter of its before-window
    (its own ``beforeWindow``, else the ``before`` setting) and the ``after`` setting."""
    return min(rule.spec.judge.before_window or before, after)


def thin_by_rule(
    rates: Mapping[str, float],
    namespaces: Iterable[str],
    rules: RuleSet,
    before: timedelta,
    after: timedelta,
) -> tuple[ThinEvidence, ...]:
    """The planned ``namespaces`` whose request ``rates`` (per second; no data: 0) fall short
    of what some deciding rule needs in the window that binds it (``evidence_window``: a
    rule with a long before-window of its own is bound by the after-window), in plan order;
    each with the rule it falls furthest short of."""
    needs = sorted(
        {
            (rule.spec.judge.min_evidence.requests, evidence_window(rule, before, after))
            for rule in rules
            if rule.spec.critical
            and not rule.spec.dry_run
            and rule.spec.judge.min_evidence.requests > 0
        },
        key=lambda need: (need[1], -need[0]),
    )
    found = []
    for namespace in namespaces:
        rate = rates.get(namespace, 0.0)
        short = [
            ThinEvidence(namespace, rate * window.total_seconds(), needed, window)
            for needed, window in needs
            if rate * window.total_seconds() < needed
        ]
        if short:
            found.append(min(short, key=lambda thin: thin.requests / thin.needed))
    return tuple(found)
