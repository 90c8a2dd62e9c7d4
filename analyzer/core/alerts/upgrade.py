"""Which alert an upgrade event deserves, built from the upgrade state (pure).

The state machine says what happened (a rollback began, the upgrade ended some way); this
module turns that into the explained alert on-call reads: failing rules with before/after
values, what was already done, what comes next. The engine sends them.
"""

from __future__ import annotations

from datetime import datetime

from analyzer.core.alerts.alert import Alert, AlertName
from analyzer.core.alerts.builders import (
    HoldCause,
    rollback_finished,
    rollback_started,
    upgrade_done,
    upgrade_held,
)
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
    Outcome.ROLLED_BACK: (AlertName.ROLLBACK_STARTED, AlertName.HELD),
    Outcome.FAILED: (AlertName.HELD,),
    Outcome.PROMOTED: (AlertName.HELD, AlertName.ROLLBACK_STARTED),
    Outcome.HELD: (),
}
