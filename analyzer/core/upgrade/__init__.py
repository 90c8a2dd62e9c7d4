"""The upgrade as a pure state machine: state + one result + ``now`` in, new state + actions out.

Why pure: the hard part of an unattended upgrade is deciding (promote, extend, hold, roll
back) and surviving a crash at any point. Keeping every decision here, with no I/O and no
clock, lets tests walk every branch instantly, and lets the engine persist the whole state
(JSON) before each side effect and resume it after ``kill -9``.

Model. ``UpgradeState.pending`` is the ONE action the engine must apply next (persisted
with the state, so a resumed engine re-applies it; every action is idempotent). The engine
applies it, gets a result, and calls ``advance(state, result, now)``. Each transition also
returns ``notes``: best-effort messages (logs, Kubernetes Events) that never decide anything.

Plan (docs/architecture.md, "The upgrade, and the two ways to move namespaces"): move
tag → restart gateway(s) → canary namespace → waves growing 1, 2, 4, … → done. Label style: the tag stays; each wave's namespaces are relabelled
``istio.io/rev=<to>``; at the end the tag moves and namespaces go back to the tag label.
Per group: [relabel] → restart → rollout (deadline) → verify proxies (same deadline) →
settle + after window → judge (controls = namespaces not yet moved) → promote | extend |
hold | rollback. Rollback: tag (or labels) back, restart every moved namespace and the
gateway, verify old proxies.

Layout: ``plan`` (the plan and the vocabulary), ``steps`` (actions and results), ``state``
(the state, namespace records, the summary), ``groups`` (targets, controls and timing of a
group), ``machine`` (``start``, ``advance``), ``operator`` (``abort``, ``approve``, the
maintenance window's question). ``analyzer.core.upgrade`` keeps every public name.
"""

from __future__ import annotations

from analyzer.core.upgrade.machine import (
    advance,
    start,
)
from analyzer.core.upgrade.operator import (
    OperatorDecisionError,
    abort,
    approve,
    group_fits_window,
    held,
    starts_new_group,
)
from analyzer.core.upgrade.plan import (
    REVISION_LABEL,
    InconclusivePolicy,
    LookPolicy,
    NamespaceOutlook,
    Outcome,
    RuleOutlook,
    Stage,
    Step,
    Target,
    UpgradeIdentity,
    UpgradePlan,
    UpgradeStyle,
    split_waves,
)
from analyzer.core.upgrade.state import (
    STATE_FORMAT,
    STATE_SCHEMA_VERSION,
    NamespaceRecord,
    Note,
    StateSchemaError,
    Transition,
    UnexpectedResultError,
    UpgradeState,
    UpgradeSummary,
    state_document,
    state_from_document,
    summary,
)
from analyzer.core.upgrade.steps import (
    Action,
    CheckRollout,
    Done,
    FindMoved,
    FoundMoved,
    Judge,
    Judged,
    LabelNamespaces,
    MoveTag,
    NamespaceJudgement,
    Notify,
    ProxyStatus,
    Restart,
    Restarted,
    Result,
    RolloutStatus,
    VerifyProxies,
    WaitUntil,
)

__all__ = [
    "REVISION_LABEL",
    "STATE_FORMAT",
    "STATE_SCHEMA_VERSION",
    "Action",
    "CheckRollout",
    "Done",
    "FindMoved",
    "FoundMoved",
    "InconclusivePolicy",
    "Judge",
    "Judged",
    "LabelNamespaces",
    "LookPolicy",
    "MoveTag",
    "NamespaceJudgement",
    "NamespaceOutlook",
    "NamespaceRecord",
    "Note",
    "Notify",
    "OperatorDecisionError",
    "Outcome",
    "ProxyStatus",
    "Restart",
    "Restarted",
    "Result",
    "RolloutStatus",
    "RuleOutlook",
    "Stage",
    "StateSchemaError",
    "Step",
    "Target",
    "Transition",
    "UnexpectedResultError",
    "UpgradeIdentity",
    "UpgradePlan",
    "UpgradeState",
    "UpgradeStyle",
    "UpgradeSummary",
    "VerifyProxies",
    "WaitUntil",
    "abort",
    "advance",
    "approve",
    "group_fits_window",
    "held",
    "split_waves",
    "start",
    "starts_new_group",
    "state_document",
    "state_from_document",
    "summary",
]
