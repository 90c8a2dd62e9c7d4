"""Outcomes of judging, as plain data: one per rule and namespace, one per namespace.

Error and Inconclusive are outcomes, not exceptions: a data-source failure becomes an
``ERROR`` result that explains itself, and too little evidence is ``INCONCLUSIVE`` — never
a pass. Every result carries what a person needs to check it: the rendered query, values
before and after, the evidence, the threshold, the test statistic and a one-line reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Verdict(StrEnum):
    """The four outcomes of judging a rule or a namespace."""

    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"


@dataclass(frozen=True)
class RuleResult:
    """The verdict of one rule on one namespace, with everything that explains it."""

    rule: str
    namespace: str
    verdict: Verdict
    reason: str
    critical: bool = True
    dry_run: bool = False
    #: False when the namespace has none of what the rule measures (``whenAbsent: skip``)
    applies: bool = True
    before: float | None = None
    after: float | None = None
    controls: dict[str, Any] | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    threshold: dict[str, Any] = field(default_factory=dict)
    statistic: dict[str, Any] = field(default_factory=dict)
    queries: tuple[str, ...] = ()
    #: Per-step points for charts: ``before``/``after`` as ``[time, value]``, and the controls'
    #: band ``controls_before``/``controls_after`` as ``[time, low, high]``.
    series: dict[str, Any] = field(default_factory=dict)

    @property
    def decides(self) -> bool:
        """Whether this result may decide the namespace verdict (critical, not dry-run, and
        the rule applies to the namespace)."""
        return self.critical and not self.dry_run and self.applies

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (the ``rules`` items of the ``analyze`` JSON contract)."""
        data = asdict(self)
        data["verdict"] = self.verdict.value
        data["queries"] = list(self.queries)
        return data


@dataclass(frozen=True)
class NamespaceVerdict:
    """The verdict of a namespace: derived from its rules by ``combine_rule_results``."""

    namespace: str
    verdict: Verdict
    reason: str
    rules: tuple[RuleResult, ...] = ()

    def failing_rules(self) -> tuple[RuleResult, ...]:
        """Rules that caused a FAIL (critical, not dry-run)."""
        return tuple(r for r in self.rules if r.decides and r.verdict is Verdict.FAIL)

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "verdict": self.verdict.value,
            "reason": self.reason,
            "rules": [result.to_dict() for result in self.rules],
        }


@dataclass(frozen=True)
class VerdictAt:
    """A namespace verdict and when it was given (the service's latest verdicts)."""

    verdict: NamespaceVerdict
    at: datetime

    def to_status_item(self) -> dict[str, Any]:
        """The ``last_verdicts`` item of ``/api/status``: the verdict, when, and per rule its
        name, verdict, values and reason."""
        verdict = self.verdict
        return {
            "namespace": verdict.namespace,
            "verdict": verdict.verdict.value,
            "reason": verdict.reason,
            "at": self.at.isoformat(),
            "rules": [
                {"rule": r.rule, "verdict": r.verdict.value, "before": r.before,
                 "after": r.after, "reason": r.reason}
                for r in verdict.rules
            ],
        }  # fmt: skip


def combine_rule_results(namespace: str, results: tuple[RuleResult, ...]) -> NamespaceVerdict:
    """Namespace verdict: any deciding FAIL → FAIL; else any deciding INCONCLUSIVE or ERROR →
    INCONCLUSIVE; else PASS. Dry-run and non-critical rules are reported, never decide."""
    deciding = [r for r in results if r.decides]
    failed = [r for r in deciding if r.verdict is Verdict.FAIL]
    unsure = [r for r in deciding if r.verdict in (Verdict.INCONCLUSIVE, Verdict.ERROR)]
    if failed:
        verdict = Verdict.FAIL
        reason = "; ".join(f"{r.rule}: {r.reason}" for r in failed)
    elif unsure:
        verdict = Verdict.INCONCLUSIVE
        reason = "; ".join(f"{r.rule} {r.verdict.value}: {r.reason}" for r in unsure)
    elif not deciding:
        verdict = Verdict.INCONCLUSIVE
        reason = "no critical, non-dry-run rule judged this namespace"
    else:
        verdict = Verdict.PASS
        reason = f"all {len(deciding)} deciding rules passed"
    return NamespaceVerdict(namespace=namespace, verdict=verdict, reason=reason, rules=results)
