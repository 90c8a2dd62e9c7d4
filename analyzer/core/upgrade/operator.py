"""Operator decisions (abort, approve a held upgrade) and whether a new group fits the
maintenance window: transitions a person or the calendar asks for.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from analyzer.core.upgrade.machine import (
    _enter_group,
    _enter_rollback,
    _promoted,
)
from analyzer.core.upgrade.plan import (
    Outcome,
    Stage,
    Step,
    UpgradeStyle,
)
from analyzer.core.upgrade.state import (
    Note,
    Transition,
    UpgradeState,
    _set,
    _with_records,
)
from analyzer.core.upgrade.steps import (
    LabelNamespaces,
    MoveTag,
    Restart,
)

# -- operator decisions and maintenance windows -------------------------------------------------


class OperatorDecisionError(ValueError):
    """An operator verb that does not apply to the upgrade's current state."""


def held(state: UpgradeState) -> bool:
    """The upgrade stopped on thin evidence and waits for a person."""
    return state.finished and state.outcome is Outcome.HELD


def abort(state: UpgradeState, now: datetime, reason: str, who: str = "operator") -> Transition:
    """Operator abort: roll back every moved namespace (and the gateway) now; the rollback
    reason reads ``aborted by <who>: <reason>``.

    Works on a running or a held upgrade; an upgrade already rolling back goes on as it is."""
    if state.stage is Stage.ROLLBACK:
        return Transition(state=state)
    if state.finished and not held(state):
        raise OperatorDecisionError(
            f"upgrade {state.plan.upgrade_id} already ended ({state.outcome}); nothing to abort"
        )
    reopened = _set(state, now, outcome=None)
    if starts_new_group(state) and state.stage is Stage.WAVE and isinstance(state.pending, Restart):
        # the wave was entered but nothing of it restarted yet: in tag style it has not moved
        untouched = state.plan.waves[state.wave]
        if state.plan.style is UpgradeStyle.TAG:
            reopened = _set(
                reopened,
                now,
                moved=tuple(n for n in state.moved if n not in untouched),
                namespaces=_with_records(reopened, untouched, state="pending"),
            )
    return _enter_rollback(reopened, now, f"aborted by {who}: {reason}")


def approve(state: UpgradeState, now: datetime, who: str = "operator") -> Transition:
    """Operator approval of a held upgrade: accept the held wave and go on to the next."""
    if not held(state):
        raise OperatorDecisionError("nothing is held: approve applies to a held upgrade only")
    plan = state.plan
    names = plan.waves[state.wave]
    records = _with_records(state, names, state="promoted")
    state = _set(state, now, outcome=None, stage=Stage.WAVE, namespaces=records)
    note = Note(
        message=f"wave {state.wave + 1} ({', '.join(names)}) approved by {who} despite "
        "inconclusive evidence",
        reason="Approved",
    )
    if state.wave + 1 < len(plan.waves):
        transition = _enter_group(state, now, Stage.WAVE, state.wave + 1)
    elif plan.style is UpgradeStyle.NAMESPACE_LABEL:
        transition = Transition(
            state=_set(state, now, stage=Stage.FINALIZE, step=Step.MOVE_TAG,
                       pending=MoveTag(tag=plan.tag, revision=plan.to_revision))
        )  # fmt: skip
    else:
        transition = _promoted(state, now)
    return Transition(state=transition.state, notes=(note, *transition.notes))


def starts_new_group(state: UpgradeState) -> bool:
    """Whether the pending action begins new work (tag move, gateway, or a wave) rather than
    continuing or undoing work already begun. Rollbacks are never "new work"."""
    pending = state.pending
    if pending is None or state.stage in (Stage.ROLLBACK, Stage.FINISHED, Stage.FINALIZE):
        return False
    if state.stage is Stage.MOVE_TAG:
        return True
    return state.step in (Step.RELABEL, Step.RESTART) and isinstance(
        pending, LabelNamespaces | Restart
    )


def group_fits_window(
    state: UpgradeState, now: datetime, closes_at: datetime | None, rollout_estimate: timedelta
) -> bool:
    """A new wave starts only when it can be judged before the maintenance window closes:
    rollout + settle + after window + evaluation delay must end by ``closes_at``."""
    if closes_at is None or not starts_new_group(state):
        return True
    plan = state.plan
    needed = rollout_estimate + plan.settle + plan.after + plan.evaluation_delay
    return now + needed <= closes_at
