"""The state of an upgrade: the plan, where it is, the pending action, and per namespace what
happened to it (its verdict and rule results, typed); the JSON summary of the command-line
contract.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from analyzer.core.upgrade.plan import (
    Outcome,
    Stage,
    Step,
    Target,
    UpgradePlan,
    _Frozen,
)
from analyzer.core.upgrade.steps import (
    Action,
)

# -- state --------------------------------------------------------------------------------------


class NamespaceRecord(_Frozen):
    """What happened to one namespace (the ``namespaces`` items of the JSON summary)."""

    name: str
    state: str = "pending"  # pending|moving|judging|promoted|failed|inconclusive|rolled_back
    verdict: str | None = None
    reason: str = ""
    rules: tuple[dict[str, Any], ...] = ()
    restarted_at: datetime | None = None  # when its wave's restart took effect


class Note(_Frozen):
    """A best-effort message: logged, and recorded as an Event on ``namespace`` if given."""

    message: str
    reason: str
    namespace: str | None = None
    warning: bool = False


class UpgradeState(_Frozen):
    plan: UpgradePlan
    stage: Stage
    step: Step
    pending: Action | None
    wave: int = 0
    restarted_at: datetime | None = None
    #: when the group's rollout completed and its proxies were verified: the after-window
    #: starts ``settle`` later (None: not yet, or a state saved before it was recorded)
    rolled_out_at: datetime | None = None
    deadline: datetime | None = None
    extensions: int = 0
    moved: tuple[str, ...] = ()
    gateway_moved: bool = False
    #: rollback, tag style: reached workloads found on the new revision outside ``moved``
    rescheduled: tuple[Target, ...] = ()
    rollback_reason: str | None = None
    outcome: Outcome | None = None
    namespaces: tuple[NamespaceRecord, ...] = ()
    updated_at: datetime

    @property
    def finished(self) -> bool:
        return self.pending is None

    def record(self, name: str) -> NamespaceRecord:
        return next(r for r in self.namespaces if r.name == name)


class Transition(_Frozen):
    state: UpgradeState
    notes: tuple[Note, ...] = ()


class UnexpectedResultError(ValueError):
    """The engine handed back a result that does not answer the pending action (a bug)."""


def _with_records(
    current: UpgradeState, names: Iterable[str], **changes: Any
) -> tuple[NamespaceRecord, ...]:
    chosen = set(names)
    return tuple(
        r.model_copy(update=changes) if r.name in chosen else r for r in current.namespaces
    )


def _set(state: UpgradeState, now: datetime, **changes: Any) -> UpgradeState:
    return state.model_copy(update={**changes, "updated_at": now})


def summary(state: UpgradeState) -> dict[str, Any]:
    """The JSON summary promised by the command-line contract."""
    plan = state.plan
    return {
        "outcome": state.outcome.value if state.outcome else None,
        "from_revision": plan.from_revision,
        "to_revision": plan.to_revision,
        "tag": plan.tag,
        "style": plan.style.value,
        "upgrade_id": plan.upgrade_id,
        "reason": state.rollback_reason,
        "namespaces": [
            {"name": r.name, "state": r.state, "verdict": r.verdict, "reason": r.reason,
             "rules": list(r.rules)}
            for r in state.namespaces
        ],
    }  # fmt: skip
