"""Before the night: for each planned namespace, what its rules will be able to see.

Why it exists: a platform team should learn when it plans the night — not at 3 a.m. from
a page — which namespaces are too quiet to be judged on their own traffic, which policy
will judge them instead (``core.quiet``), and for the others the smallest regression each
rule can detect in the window. Pure: one window-length of each namespace's traffic in the
same hours of previous nights (observations, fetched by the service) in; a forecast out.

The smallest detectable regression is the change a rule FAILs about four times in five
(power 0.8) with a window of the forecast traffic before and after the restart, at the
rule's alpha: the estimate must pass both the allowance and ``z_α`` standard errors
(``failWhen: estimate-beyond``), so it is ``max(allowance, z_α·SE) + z_0.8·SE``. SE is
the one the judge uses, without controls (they add a little): ratio rules
``√(2·p(1−p)/n)`` at the namespace's own error rate, histogram rules the quantile's own
log standard error from its tail (``core.quantiles.tail_quantile``) for both windows,
volume rules ``√(2/n)`` on the log rate. A rule with its own, longer before-window
(``beforeWindow``) has a before-window holding that many more requests: its SE is
``√(1 + w/b)`` rather than ``√2`` times one window's (``w`` the window-length, ``b`` its
before-window).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from scipy import stats

from analyzer.core.observations import BucketCounts, Observation, RatioCounts, VolumeCount
from analyzer.core.quantiles import tail_quantile
from analyzer.core.quiet_policy import QuietPolicy
from analyzer.core.rules import Rule, RuleType
from analyzer.core.upgrade.plan import NamespaceOutlook, RuleOutlook

#: The power the smallest detectable regression is quoted at.
POWER = 0.8
#: A histogram rule needs at least this many requests above its quantile (as the judge).
MIN_TAIL_REQUESTS = 20


@dataclass(frozen=True)
class RuleForecast:
    """One rule on one namespace: the smallest regression it detects, or why none."""

    rule: str
    #: the smallest detectable change: percentage points (ratio), a share (histogram,
    #: volume); None when the rule cannot judge the namespace alone
    detectable: float | None
    text: str

    def to_dict(self) -> dict[str, Any]:
        return {"rule": self.rule, "detectable": self.detectable, "text": self.text}


@dataclass(frozen=True)
class NamespaceForecast:
    """A planned namespace's forecast traffic, and the evidence that will judge it."""

    namespace: str
    requests: float  # per window, in the same hours of previous nights
    quiet: bool
    #: "own" when every deciding rule can judge it alone; else the rules' quiet policies
    policy: str
    rules: tuple[RuleForecast, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "requests_per_window": self.requests,
            "quiet": self.quiet,
            "policy": self.policy,
            "rules": [rule.to_dict() for rule in self.rules],
        }

    def outlook(self, window_seconds: float | None = None) -> NamespaceOutlook:
        """The form the plan keeps (``UpgradePlan.forecast``), with the rate per second when
        the forecast ``window_seconds`` is known."""
        rate = self.requests / window_seconds if window_seconds else None
        return NamespaceOutlook(
            namespace=self.namespace,
            requests_per_window=self.requests,
            requests_per_second=rate,
            quiet=self.quiet,
            policy=self.policy,
            rules=tuple(
                RuleOutlook(rule=r.rule, detectable=r.detectable, text=r.text) for r in self.rules
            ),
        )

    def describe(self) -> str:
        """One line for the dry run, the start of an upgrade and its timeline."""
        return self.outlook().describe()


def _z(share: float) -> float:
    return float(stats.norm.ppf(share))


def rule_forecast(
    rule: Rule, history: Observation | None, alpha: float, before_share: float = 1.0
) -> RuleForecast:
    """What ``rule`` can detect on a namespace whose window-length of traffic looked like
    ``history`` (None: no data). ``before_share``: the rule's before-window as a multiple
    of that window-length (a rule's own ``beforeWindow`` of 60m against 10 minutes: 6); the
    before-window's variance is the window's divided by it, so the standard error is
    ``√(1 + 1/before_share)`` times one window's, and the evidence the smaller window
    holds must reach ``minEvidence``."""
    judging = rule.spec.judge
    needed = max(judging.min_evidence.requests, 1)
    z_alpha, z_power = _z(1 - alpha), _z(POWER)
    if rule.spec.type is RuleType.VALUE:
        return RuleForecast(rule.name, None, "not forecast (value rule)")
    count = _requests(history) * min(before_share, 1.0)
    spread = math.sqrt(1 + 1 / before_share)  # √2 with equal windows
    if count < needed:
        return RuleForecast(
            rule.name,
            None,
            f"cannot judge it alone: ~{count:.0f} requests per window, needs {needed}",
        )
    if isinstance(history, RatioCounts):
        rate = max(history.bad, 0.5) / history.total
        error = spread * math.sqrt(rate * (1 - rate) / history.total)
        allowance = max(
            judging.allowed_change.absolute or 0.0, (judging.allowed_change.relative or 0.0) * rate
        )
        found = max(allowance, z_alpha * error) + z_power * error
        return RuleForecast(rule.name, found, f"detects +{found * 100:.2g} pp")
    relative = judging.allowed_change.relative or 0.0
    if isinstance(history, BucketCounts):
        tail = tail_quantile(judging.quantile or 0.99, history)
        if tail is None or tail.tail_requests < MIN_TAIL_REQUESTS:
            return RuleForecast(
                rule.name, None, "cannot judge it alone: too few requests in the tail"
            )
        error = spread * tail.log_standard_error
    else:  # volume
        error = spread * math.sqrt(1 / _requests(history))
    found = math.expm1(max(math.log1p(relative), z_alpha * error) + z_power * error)
    return RuleForecast(rule.name, found, f"detects {found:+.0%}")


def _requests(history: Observation | None) -> float:
    if isinstance(history, RatioCounts | BucketCounts):
        return history.total
    if isinstance(history, VolumeCount):
        return history.count
    return 0.0


def namespace_forecast(
    namespace: str,
    history: Mapping[str, Observation | None],
    rules: list[Rule],
    alpha: float | None = None,
    before_shares: Mapping[str, float] | None = None,
) -> NamespaceForecast:
    """A namespace's forecast from ``history`` (per rule name: one window-length of its
    traffic in the same hours of previous nights); ``alpha``: the per-test alpha of the
    night budget (None: each rule's own); ``before_shares``: per rule name, its
    before-window as a multiple of the window-length (absent: 1)."""
    deciding = [r for r in rules if r.spec.critical and not r.spec.dry_run]
    shares = before_shares or {}
    found = tuple(
        rule_forecast(
            rule,
            history.get(rule.name),
            min(alpha, 1 - rule.spec.judge.confidence) if alpha else 1 - rule.spec.judge.confidence,
            shares.get(rule.name, 1.0),
        )
        for rule in deciding
    )
    alone = [f for f in found if f.text != "not forecast (value rule)"]
    quiet = any(f.detectable is None for f in alone)
    policies = sorted({QuietPolicy(r.quiet).value for r in deciding})
    requests = max((_requests(history.get(r.name)) for r in deciding), default=0.0)
    return NamespaceForecast(
        namespace, requests, quiet, "own" if not quiet else " / ".join(policies), found
    )
