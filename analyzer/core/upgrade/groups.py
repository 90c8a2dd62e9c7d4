"""What a group (the gateways, a wave, the rollback) restarts, which namespaces are its
controls, and when its after-window ends: small pure helpers of the state machine.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from analyzer.core.upgrade.plan import (
    LookPolicy,
    Stage,
    Target,
    UpgradePlan,
)
from analyzer.core.upgrade.state import (
    UpgradeState,
)


def _step_id(plan: UpgradePlan, name: str) -> str:
    return f"{plan.upgrade_id}.{name}"


def _namespace_targets(plan: UpgradePlan, names: Iterable[str]) -> tuple[Target, ...]:
    """Each namespace whole, or only its planned workloads when the plan names some."""
    targets: list[Target] = []
    for name in names:
        chosen = tuple(t for t in plan.workloads if t.namespace == name)
        targets.extend(chosen or (Target(namespace=name),))
    return tuple(targets)


def _wave_targets(plan: UpgradePlan, wave: int) -> tuple[Target, ...]:
    return _namespace_targets(plan, plan.waves[wave])


def _rollback_targets(state: UpgradeState) -> tuple[Target, ...]:
    gateways = state.plan.gateways if state.gateway_moved else ()
    return (*gateways, *_namespace_targets(state.plan, state.moved), *state.rescheduled)


def _current_targets(state: UpgradeState) -> tuple[Target, ...]:
    if state.stage is Stage.GATEWAY:
        return state.plan.gateways
    if state.stage is Stage.WAVE:
        return _wave_targets(state.plan, state.wave)
    return _rollback_targets(state)


def _expected_revision(state: UpgradeState) -> str:
    plan = state.plan
    return plan.from_revision if state.stage is Stage.ROLLBACK else plan.to_revision


def _controls(state: UpgradeState) -> tuple[str, ...]:
    """Namespaces whose proxies did not change during the judged windows: every namespace
    not yet moved, and those moved (and judged) before the before-window began. So even the
    last wave has a concurrent control for night-time drift."""
    plan = state.plan
    assert state.restarted_at is not None
    before_start = state.restarted_at - plan.before
    judged = set(plan.waves[state.wave])
    return tuple(
        record.name
        for record in state.namespaces
        if record.name not in judged
        and (record.restarted_at is None or record.restarted_at < before_start)
        and record.state in ("pending", "promoted")
    )


def _after_start(state: UpgradeState) -> datetime:
    """The after-window starts ``settle`` after the group rolled out and its proxies were
    verified (a rollout longer than ``settle`` would otherwise mix old and new proxies into
    it); a state saved before the rollout time was recorded falls back on the restart."""
    assert state.restarted_at is not None
    return (state.rolled_out_at or state.restarted_at) + state.plan.settle


def _judged_after(state: UpgradeState) -> timedelta:
    """How much after-window the next look judges: the after-window and its extensions, or,
    looking at every step, one more step (never past the last extension's end)."""
    plan = state.plan
    if plan.looks is LookPolicy.EVERY_STEP:
        return min(plan.step * (1 + state.steps_looked), _horizon(plan))
    return plan.after * (1 + state.extensions)


def _horizon(plan: UpgradePlan) -> timedelta:
    """The longest after-window a wave is judged on: the window and every extension."""
    return plan.after * (1 + plan.max_extensions)


def _ready_at(state: UpgradeState) -> datetime:
    return _after_start(state) + _judged_after(state) + state.plan.evaluation_delay
