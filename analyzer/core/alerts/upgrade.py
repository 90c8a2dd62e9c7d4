"""Which alert an upgrade event deserves, built from the upgrade state (pure).

The state machine says what happened (a rollback began, the upgrade ended some way); this
module turns that into the explained alert on-call reads: failing rules with before/after
values, what was already done, what comes next. The engine sends them.
"""

from __future__ import annotations

from datetime import datetime

from analyzer.core.alerts.alert import Alert, AlertName, Severity
from analyzer.core.alerts.builders import (
    HoldCause,
    rollback_finished,
    rollback_started,
    upgrade_done,
    upgrade_held,
)
from analyzer.core.alerts.explain import _clip, _with_link, explain_verdict
from analyzer.core.upgrade.plan import Outcome
from analyzer.core.upgrade.state import UpgradeState
from analyzer.core.verdicts import NamespaceVerdict, Verdict


def _verdicts(state: UpgradeState, wanted: set[Verdict]) -> list[NamespaceVerdict]:
    return [
        judged
        for record in state.namespaces
        if (judged := record.judged()) is not None and judged.verdict in wanted
    ]


def _gateways(state: UpgradeState) -> list[str]:
    return list(state.plan.gateway_namespaces) if state.gateway_moved else []


def rollback_started_alert(state: UpgradeState, now: datetime, link: str | None = None) -> Alert:
    """CRITICAL page when a rollback begins; explains the failing rules when a verdict caused it."""
    plan = state.plan
    failed = _verdicts(state, {Verdict.FAIL})
    if not failed:  # rollout deadline, wrong proxies, operator abort, inconclusive policy
        failed = [
            NamespaceVerdict(
                namespace=(plan.waves[state.wave][0] if plan.waves else plan.tag),
                verdict=Verdict.FAIL,
                reason=state.rollback_reason or "rollback",
            )
        ]
    return rollback_started(
        failed,
        upgrade=plan.identity(link),
        now=now,
        moved=state.moved,
        gateways=_gateways(state),
    )


def outcome_alert(state: UpgradeState, now: datetime, link: str | None = None) -> Alert:
    """The alert for how the upgrade ended (or that it holds)."""
    plan = state.plan
    outcome = state.outcome
    if outcome is Outcome.PROMOTED:
        return upgrade_done(
            upgrade=plan.identity(link),
            namespaces=plan.namespaces,
            now=now,
            verdicts=_verdicts(state, set(Verdict)),
        )
    if outcome is Outcome.HELD:
        unsure = _verdicts(state, {Verdict.INCONCLUSIVE, Verdict.ERROR})
        errors = any(
            rule.verdict is Verdict.ERROR for record in state.namespaces for rule in record.rules
        )
        return upgrade_held(
            unsure,
            upgrade=plan.identity(link),
            cause=HoldCause.DATA_SOURCE_ERRORS if errors else HoldCause.INCONCLUSIVE,
            now=now,
            extensions=state.extensions,
        )
    restored: list[str] = list(state.moved)
    return rollback_finished(
        upgrade=plan.identity(link),
        restored=restored,
        all_proxies_old=outcome is Outcome.ROLLED_BACK,
        now=now,
        reason=state.rollback_reason or "",
        rules=sorted(
            {
                rule.rule
                for record in state.namespaces
                if record.verdict is Verdict.FAIL
                for rule in record.rules
                if rule.verdict is Verdict.FAIL
            }
            - {""}
        ),
    )


#: Alerts an outcome clears: once the rollback finished, "rollback started" is resolved;
#: any end resolves "held" (the person decided).
RESOLVED_BY_OUTCOME: dict[Outcome, tuple[AlertName, ...]] = {
    Outcome.ROLLED_BACK: (AlertName.ROLLBACK_STARTED, AlertName.HELD, AlertName.SOAK_REGRESSION),
    Outcome.FAILED: (AlertName.HELD,),
    Outcome.PROMOTED: (AlertName.HELD, AlertName.ROLLBACK_STARTED),
    Outcome.HELD: (),
}


def soak_regression_alert(state: UpgradeState, failed: list[NamespaceVerdict], baseline: str,
                          now: datetime, automatic: bool, link: str | None = None) -> Alert:
    """CRITICAL page: a promoted namespace regressed during the soak, against ``baseline``
    (the same hours before the upgrade). Names each namespace and rule with its evidence and
    offers the rollback (or says it started, with ``automatic``)."""
    plan = state.plan
    names = ", ".join(v.namespace for v in failed)
    rules = sorted({r.rule for v in failed for r in v.rules if r.verdict is Verdict.FAIL})
    if automatic:
        next_step = (f"Rolling back now (upgrade.soak_auto_rollback): the tag {plan.tag} goes "
                     f"back to {plan.from_revision} and every moved workload is restarted.")
    else:
        next_step = (f"Roll back: `canary-analyzer rollback --reason ...` (or POST "
                     f"/api/rollback): the tag {plan.tag} goes back to {plan.from_revision}, "
                     "still installed, and every moved workload (gateways and namespaces) is "
                     "restarted onto it. The prune is not offered for this upgrade.")
    evidence = "\n\n".join(explain_verdict(v, only=[Verdict.FAIL]) for v in failed)
    description = _clip(
        f"Upgrade {plan.upgrade_id} (tag {plan.tag} {plan.from_revision} → "
        f"{plan.to_revision}) was promoted; during the soak {names} regressed against "
        f"{baseline}.\n{next_step}\n\n{evidence}")
    return Alert(
        name=AlertName.SOAK_REGRESSION,
        severity=Severity.CRITICAL,
        summary=f"Soak regression after upgrade to {plan.to_revision} in {names} "
                f"({', '.join(rules) or 'rules'}): rollback offered",
        description=_with_link(description, link),
        starts_at=now,
        labels={"upgrade_id": plan.upgrade_id, "namespace": ",".join(v.namespace for v in failed),
                "rule": ",".join(rules), "to_revision": plan.to_revision,
                "from_revision": plan.from_revision},
        link=link,
    )
