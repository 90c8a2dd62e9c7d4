"""Which alert an upgrade event deserves, built from the upgrade state (pure).

The state machine says what happened (a rollback began, the upgrade ended some way); this
module turns that into the explained alert on-call reads: failing rules with before/after
values, what was already done, what comes next. The engine sends them.
"""

from __future__ import annotations

from datetime import datetime

from analyzer.core.alert_builders import (
    HoldCause,
    namespace_verdict,
    rollback_finished,
    rollback_started,
    upgrade_done,
    upgrade_held,
)
from analyzer.core.alerts import Alert, AlertName
from analyzer.core.upgrade import Outcome, UpgradeState
from analyzer.core.verdicts import NamespaceVerdict, Verdict


def _verdicts(state: UpgradeState, wanted: set[str]) -> list[NamespaceVerdict]:
    return [
        namespace_verdict(r.name, r.verdict, r.reason or r.verdict or "", r.rules)
        for r in state.namespaces
        if r.verdict in wanted
    ]


def _gateways(state: UpgradeState) -> list[str]:
    return list(state.plan.gateway_namespaces) if state.gateway_moved else []


def rollback_started_alert(state: UpgradeState, now: datetime, link: str | None = None) -> Alert:
    """CRITICAL page when a rollback begins; explains the failing rules when a verdict caused it."""
    plan = state.plan
    failed = _verdicts(state, {Verdict.FAIL.value})
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
        from_revision=plan.from_revision,
        to_revision=plan.to_revision,
        tag=plan.tag,
        now=now,
        moved=state.moved,
        gateways=_gateways(state),
        upgrade_id=plan.upgrade_id,
        link=link,
    )


def outcome_alert(state: UpgradeState, now: datetime, link: str | None = None) -> Alert:
    """The alert for how the upgrade ended (or that it holds)."""
    plan = state.plan
    outcome = state.outcome
    if outcome is Outcome.PROMOTED:
        return upgrade_done(
            from_revision=plan.from_revision,
            to_revision=plan.to_revision,
            tag=plan.tag,
            namespaces=plan.namespaces,
            now=now,
            verdicts=_verdicts(state, {v.value for v in Verdict}),
            upgrade_id=plan.upgrade_id,
            link=link,
        )
    if outcome is Outcome.HELD:
        unsure = _verdicts(state, {Verdict.INCONCLUSIVE.value, Verdict.ERROR.value})
        errors = any(
            rule.get("verdict") == Verdict.ERROR.value
            for record in state.namespaces
            for rule in record.rules
        )
        return upgrade_held(
            unsure,
            from_revision=plan.from_revision,
            to_revision=plan.to_revision,
            tag=plan.tag,
            cause=HoldCause.DATA_SOURCE_ERRORS if errors else HoldCause.INCONCLUSIVE,
            now=now,
            extensions=state.extensions,
            upgrade_id=plan.upgrade_id,
            link=link,
        )
    restored: list[str] = list(state.moved)
    return rollback_finished(
        from_revision=plan.from_revision,
        to_revision=plan.to_revision,
        tag=plan.tag,
        restored=restored,
        all_proxies_old=outcome is Outcome.ROLLED_BACK,
        now=now,
        reason=state.rollback_reason or "",
        rules=sorted(
            {
                rule.get("rule", "")
                for record in state.namespaces
                if record.verdict == Verdict.FAIL.value
                for rule in record.rules
                if rule.get("verdict") == Verdict.FAIL.value
            }
            - {""}
        ),
        upgrade_id=plan.upgrade_id,
        link=link,
    )


#: Alerts an outcome clears: once the rollback finished, "rollback started" is resolved;
#: any end resolves "held" (the person decided).
RESOLVED_BY_OUTCOME: dict[Outcome, tuple[AlertName, ...]] = {
    Outcome.ROLLED_BACK: (AlertName.ROLLBACK_STARTED, AlertName.HELD),
    Outcome.FAILED: (AlertName.HELD,),
    Outcome.PROMOTED: (AlertName.HELD, AlertName.ROLLBACK_STARTED),
    Outcome.HELD: (),
}
