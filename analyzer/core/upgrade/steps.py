"""What the engine must do next (actions) and what it observed doing it (results): the
state machine's input and output, persisted with the state so a resumed engine re-applies
the pending action.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import Field

from analyzer.core.upgrade.plan import (
    Outcome,
    Target,
    _Frozen,
)
from analyzer.core.verdicts import RuleResult, Verdict

# -- actions: what the engine must do ---------------------------------------------------------


class MoveTag(_Frozen):
    kind: Literal["move-tag"] = "move-tag"
    tag: str
    revision: str


class LabelNamespaces(_Frozen):
    """Set ``istio.io/rev=<value>`` on each namespace."""

    kind: Literal["label-namespaces"] = "label-namespaces"
    namespaces: tuple[str, ...]
    value: str


class Restart(_Frozen):
    """Rolling-restart the targets; ``step_id`` makes it idempotent across resumes.

    The restart is stamped when it is applied, not when it is planned (``kubectl rollout
    restart`` stamps the time it patches): the engine passes its clock at application time,
    and a resumed step keeps the stamp already on the workloads. ``at`` is the planning time
    a state saved by an earlier release carries; it is read and never used."""

    kind: Literal["restart"] = "restart"
    targets: tuple[Target, ...]
    step_id: str
    at: datetime | None = None


class CheckRollout(_Frozen):
    kind: Literal["check-rollout"] = "check-rollout"
    targets: tuple[Target, ...]


class VerifyProxies(_Frozen):
    kind: Literal["verify-proxies"] = "verify-proxies"
    targets: tuple[Target, ...]
    revision: str


class FindMoved(_Frozen):
    """Rollback, tag style: find what else the tag reaches that runs ``revision`` now (pods
    rescheduled, scaled up or restarted by someone else since the tag moved), beyond ``skip``."""

    kind: Literal["find-moved"] = "find-moved"
    revision: str
    skip: tuple[Target, ...] = ()


class WaitUntil(_Frozen):
    kind: Literal["wait-until"] = "wait-until"
    until: datetime
    reason: str = ""


class Judge(_Frozen):
    """Judge the restarted namespaces: the before-window ends at ``restarted_at``, the
    after-window starts ``settle`` after ``rolled_out_at`` (when the group's rollout ended
    and its proxies were verified; None in a state saved before it was recorded: after the
    restart)."""

    kind: Literal["judge"] = "judge"
    judged: tuple[str, ...]
    controls: tuple[str, ...]
    restarted_at: datetime
    rolled_out_at: datetime | None = None
    before: timedelta
    settle: timedelta
    after: timedelta
    step: timedelta
    #: namespaces the whole plan judges (canary and every wave): the night's false-rollback
    #: budget is split over them; 0 (a state saved before it was recorded): unknown
    plan_namespaces: int = 0
    #: which look at this wave (0: first judgement, k: k-th extension) of how many the plan
    #: allows (1 + max extensions): the night budget is spent across looks
    look: int = 0
    looks: int = 1
    #: namespaces the revision passed on their own traffic earlier this night: what a
    #: quiet namespace's ``inherit`` policy leans on (``core.quiet``)
    passed_before: tuple[str, ...] = ()
    #: judge with anytime-valid bounds (the plan looks at every step): looking again spends
    #: no more of the night's budget than one look
    anytime: bool = False
    #: this look falls at the end of the after-window or of an extension, where the fixed
    #: judge's PASS stands too
    scheduled: bool = True
    #: controls moved earlier this night, with when they were restarted: a rule reading a
    #: longer before-window of its own (``judge.beforeWindow``) leaves out those restarted
    #: inside it
    control_restarts: dict[str, datetime] = Field(default_factory=dict)


class Notify(_Frozen):
    """Tell on-call how the upgrade ended (or that it holds)."""

    kind: Literal["notify"] = "notify"
    outcome: Outcome
    summary: str


Action = Annotated[
    MoveTag
    | LabelNamespaces
    | Restart
    | CheckRollout
    | VerifyProxies
    | FindMoved
    | WaitUntil
    | Judge
    | Notify,
    Field(discriminator="kind"),
]


# -- results: what the engine observed --------------------------------------------------------


class Done(_Frozen):
    kind: Literal["done"] = "done"


class Restarted(_Frozen):
    """When the restart took effect (the earliest ``restartedAt`` of the targets)."""

    kind: Literal["restarted"] = "restarted"
    at: datetime


class RolloutStatus(_Frozen):
    kind: Literal["rollout"] = "rollout"
    complete: bool
    failed: str | None = None  # e.g. ProgressDeadlineExceeded on a Deployment
    waiting: tuple[str, ...] = ()


class ProxyStatus(_Frozen):
    """Proxies of the pods the step restarted (owned by its Deployments, StatefulSets and
    DaemonSets), and the pods beside them that the upgrade does not restart."""

    kind: Literal["proxies"] = "proxies"
    checked: int = 0
    mismatched: tuple[str, ...] = ()  # "ns/pod: revision X"
    #: pods of the targets' namespaces the upgrade never restarts (Job/CronJob pods, bare
    #: pods, pods of other controllers or of excluded workloads, pods the injector skips):
    #: reported, never failed ("ns/pod (why): revision X")
    not_restarted: tuple[str, ...] = ()


class FoundMoved(_Frozen):
    """What a ``FindMoved`` found: more targets the rollback restarts and verifies."""

    kind: Literal["found-moved"] = "found-moved"
    targets: tuple[Target, ...] = ()


class NamespaceJudgement(_Frozen):
    """The verdict of one judged namespace with its rule results, typed."""

    verdict: Verdict
    reason: str
    rules: tuple[RuleResult, ...] = ()
    #: which evidence judged it (``core.quiet.Evidence``: own, pool, inherited, health, held)
    evidence: str = "own"


class Judged(_Frozen):
    kind: Literal["judged"] = "judged"
    verdicts: dict[str, NamespaceJudgement]


Result = Done | Restarted | RolloutStatus | ProxyStatus | FoundMoved | Judged
