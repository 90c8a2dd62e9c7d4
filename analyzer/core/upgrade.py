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
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from analyzer.core.verdicts import Verdict

REVISION_LABEL = "istio.io/rev"


class UpgradeStyle(StrEnum):
    """How namespaces move to the new revision (docs/architecture.md, "The upgrade, and the two ways to move namespaces")."""

    TAG = "tag"
    NAMESPACE_LABEL = "namespace-label"


class InconclusivePolicy(StrEnum):
    """What to do when the evidence stays too thin after every allowed extension."""

    HOLD = "hold"
    ROLLBACK = "rollback"


class LookPolicy(StrEnum):
    """When a wave is judged: once at the end of the after-window (and of each extension),
    or at every step of it with anytime-valid bounds (``core/sequential.py``), stopping as
    soon as the answer is certain either way."""

    FIXED = "fixed"
    EVERY_STEP = "every-step"


class Outcome(StrEnum):
    """How an upgrade ended (the ``outcome`` of the JSON summary)."""

    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    HELD = "held"
    FAILED = "failed"


class Stage(StrEnum):
    MOVE_TAG = "move-tag"
    GATEWAY = "gateway"
    WAVE = "wave"
    FINALIZE = "finalize"
    ROLLBACK = "rollback"
    FINISHED = "finished"


class Step(StrEnum):
    MOVE_TAG = "move-tag"
    RELABEL = "relabel"
    RESTART = "restart"
    ROLLOUT = "rollout"
    VERIFY = "verify"
    FIND_MOVED = "find-moved"
    WAIT = "wait"
    JUDGE = "judge"
    NOTIFY = "notify"
    NONE = "none"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Target(_Frozen):
    """What to restart: a whole namespace (kind/name None) or one workload."""

    namespace: str
    kind: str | None = None
    name: str | None = None

    def describe(self) -> str:
        if self.kind is None:
            return f"namespace {self.namespace}"
        return f"{self.kind} {self.namespace}/{self.name}"


class UpgradePlan(_Frozen):
    """Everything fixed when an upgrade starts; stored inside the state."""

    upgrade_id: str
    tag: str
    from_revision: str
    to_revision: str
    style: UpgradeStyle = UpgradeStyle.TAG
    gateways: tuple[Target, ...] = ()
    waves: tuple[tuple[str, ...], ...]
    before: timedelta
    settle: timedelta
    after: timedelta
    step: timedelta
    evaluation_delay: timedelta = timedelta(0)
    rollout_timeout: timedelta
    poll_interval: timedelta
    max_extensions: int = 2
    on_inconclusive: InconclusivePolicy = InconclusivePolicy.HOLD
    looks: LookPolicy = LookPolicy.FIXED
    #: namespaces the tag reaches only through pod labels restart only these workloads
    #: (every other planned namespace restarts whole)
    workloads: tuple[Target, ...] = ()

    @property
    def namespaces(self) -> tuple[str, ...]:
        return tuple(n for wave in self.waves for n in wave)

    @property
    def gateway_namespaces(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(g.namespace for g in self.gateways))


def split_waves(namespaces: Sequence[str], sizes: Sequence[int]) -> tuple[tuple[str, ...], ...]:
    """Cut namespaces (in order) into waves of ``sizes``; after the last size, keep doubling.

    ``split_waves([a..g], [1, 2])`` → ``(a,) (b, c) (d, e, f, g)``."""
    if not sizes or any(size < 1 for size in sizes):
        raise ValueError(f"wave sizes must be positive integers, got {list(sizes)}")
    waves: list[tuple[str, ...]] = []
    index, position = 0, 0
    size = sizes[0]
    while position < len(namespaces):
        size = sizes[index] if index < len(sizes) else size * 2
        waves.append(tuple(namespaces[position : position + size]))
        position += size
        index += 1
    return tuple(waves)


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
    #: judge with anytime-valid bounds (the plan looks at every step): looking again spends
    #: no more of the night's budget than one look
    anytime: bool = False
    #: this look falls at the end of the after-window or of an extension, where the fixed
    #: judge's PASS stands too
    scheduled: bool = True


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
    verdict: Verdict
    reason: str
    rules: tuple[dict[str, Any], ...] = ()


class Judged(_Frozen):
    kind: Literal["judged"] = "judged"
    verdicts: dict[str, NamespaceJudgement]


Result = Done | Restarted | RolloutStatus | ProxyStatus | FoundMoved | Judged


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
    #: looks already taken at this group when the plan looks at every step
    steps_looked: int = 0
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


# -- helpers ----------------------------------------------------------------------------------


def _with_records(
    current: UpgradeState, names: Iterable[str], **changes: Any
) -> tuple[NamespaceRecord, ...]:
    chosen = set(names)
    return tuple(
        r.model_copy(update=changes) if r.name in chosen else r for r in current.namespaces
    )


def _set(state: UpgradeState, now: datetime, **changes: Any) -> UpgradeState:
    return state.model_copy(update={**changes, "updated_at": now})


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


# -- entering stages --------------------------------------------------------------------------


def start(plan: UpgradePlan, now: datetime) -> Transition:
    """The first state of an upgrade: nothing done yet, first action pending."""
    if not plan.waves or not all(plan.waves):
        raise ValueError("an upgrade needs at least one namespace")
    if plan.from_revision == plan.to_revision:
        raise ValueError("from and to revision are the same")
    state = UpgradeState(
        plan=plan,
        stage=Stage.MOVE_TAG,
        step=Step.NONE,
        pending=None,
        namespaces=tuple(NamespaceRecord(name=n) for n in plan.namespaces),
        updated_at=now,
    )
    note = Note(
        message=f"upgrade {plan.upgrade_id}: tag {plan.tag} {plan.from_revision} → "
        f"{plan.to_revision}, style {plan.style.value}, waves "
        + " | ".join(",".join(w) for w in plan.waves),
        reason="UpgradeStarted",
    )
    if plan.style is UpgradeStyle.TAG:
        state = _set(
            state, now, step=Step.MOVE_TAG, pending=MoveTag(tag=plan.tag, revision=plan.to_revision)
        )
        return Transition(state=state, notes=(note,))
    transition = _enter_gateway_or_wave(state, now)
    return Transition(state=transition.state, notes=(note, *transition.notes))


def _enter_gateway_or_wave(state: UpgradeState, now: datetime) -> Transition:
    if state.plan.gateways:
        return _enter_group(state, now, Stage.GATEWAY, 0)
    return _enter_group(state, now, Stage.WAVE, 0)


def _enter_group(state: UpgradeState, now: datetime, stage: Stage, wave: int) -> Transition:
    """Start moving a group (gateway, a wave, or the rollback set) onto its revision."""
    plan = state.plan
    state = _set(
        state, now, stage=stage, wave=wave, extensions=0, steps_looked=0, restarted_at=None,
        rolled_out_at=None, deadline=None,
    )
    if stage is Stage.GATEWAY:
        state = _set(state, now, gateway_moved=True)
        relabel = plan.gateway_namespaces
    elif stage is Stage.WAVE:
        names = plan.waves[wave]
        state = _set(
            state,
            now,
            moved=tuple(dict.fromkeys((*state.moved, *names))),
            namespaces=_with_records(state, names, state="moving"),
        )
        relabel = names
    else:
        relabel = (*(plan.gateway_namespaces if state.gateway_moved else ()), *state.moved)
    if plan.style is UpgradeStyle.NAMESPACE_LABEL:
        value = plan.tag if stage is Stage.ROLLBACK else plan.to_revision
        action = LabelNamespaces(namespaces=tuple(dict.fromkeys(relabel)), value=value)
        return Transition(state=_set(state, now, step=Step.RELABEL, pending=action))
    if stage is Stage.ROLLBACK:
        action = MoveTag(tag=plan.tag, revision=plan.from_revision)
        return Transition(state=_set(state, now, step=Step.MOVE_TAG, pending=action))
    return _restart(state, now)


def _restart(state: UpgradeState, now: datetime) -> Transition:
    plan = state.plan
    name = {
        Stage.GATEWAY: "gateway",
        Stage.WAVE: f"wave-{state.wave + 1}",
        Stage.ROLLBACK: "rollback",
    }[state.stage]
    targets = _current_targets(state)
    if not targets:  # rollback before anything was restarted: only the tag/labels moved back
        return _finish_rollback(state, now)
    action = Restart(targets=targets, step_id=_step_id(plan, name))
    notes = tuple(
        Note(
            message=f"restarting {', '.join(t.describe() for t in targets if t.namespace == n)} "
            f"onto {_expected_revision(state)} (step {action.step_id})",
            reason="Restarting",
            namespace=n,
        )
        for n in dict.fromkeys(t.namespace for t in targets)
    )
    return Transition(state=_set(state, now, step=Step.RESTART, pending=action), notes=notes)


def _enter_rollback(state: UpgradeState, now: datetime, reason: str) -> Transition:
    note = Note(message=f"rolling back: {reason}", reason="RollingBack", warning=True)
    state = _set(state, now, rollback_reason=reason)
    transition = _enter_group(state, now, Stage.ROLLBACK, state.wave)
    return Transition(state=transition.state, notes=(note, *transition.notes))


def _notify(state: UpgradeState, now: datetime, outcome: Outcome, summary: str) -> Transition:
    state = _set(
        state, now, stage=Stage.FINISHED, step=Step.NOTIFY, outcome=outcome,
        pending=Notify(outcome=outcome, summary=summary),
    )  # fmt: skip
    return Transition(
        state=state,
        notes=(Note(message=summary, reason=f"Upgrade{outcome.value.title().replace('_', '')}",
                    warning=outcome is not Outcome.PROMOTED),),
    )  # fmt: skip


def _finish_rollback(state: UpgradeState, now: datetime) -> Transition:
    plan = state.plan
    records = _with_records(state, state.moved, state="rolled_back")
    state = _set(state, now, namespaces=records)
    summary = (
        f"upgrade {plan.upgrade_id} rolled back to {plan.from_revision}: {state.rollback_reason}; "
        f"moved back: {', '.join(state.moved) or 'none'}"
        + (" and the gateway" if state.gateway_moved else "")
        + (
            f"; also restarted (on the new revision outside the plan): "
            f"{', '.join(t.describe() for t in state.rescheduled)}"
            if state.rescheduled
            else ""
        )
    )
    return _notify(state, now, Outcome.ROLLED_BACK, summary)


def _after_verified(state: UpgradeState, now: datetime) -> Transition:
    """The group runs the expected revision: judge it, go on, or finish the rollback."""
    plan = state.plan
    if state.stage is Stage.GATEWAY:
        return _enter_group(state, now, Stage.WAVE, 0)
    if state.stage is Stage.ROLLBACK:
        return _finish_rollback(state, now)
    names = plan.waves[state.wave]
    state = _set(state, now, rolled_out_at=now,
                 namespaces=_with_records(state, names, state="judging"))
    until = _ready_at(state)
    return Transition(
        state=_set(state, now, step=Step.WAIT, pending=WaitUntil(until=until, reason="after window")),
        notes=(Note(message=f"wave {state.wave + 1} on {plan.to_revision} (rolled out "
                    f"{now.isoformat()}); after-window from {_after_start(state).isoformat()}; "
                    f"judging at {until.isoformat()}", reason="ProxiesVerified"),),
    )  # fmt: skip


def _judge_action(state: UpgradeState) -> Judge:
    plan = state.plan
    assert state.restarted_at is not None
    after = _judged_after(state)
    if plan.looks is LookPolicy.EVERY_STEP:
        return Judge(
            judged=plan.waves[state.wave],
            controls=_controls(state),
            restarted_at=state.restarted_at,
            rolled_out_at=state.rolled_out_at,
            before=plan.before,
            settle=plan.settle,
            after=after,
            step=plan.step,
            plan_namespaces=len(plan.namespaces),
            anytime=True,
            scheduled=after >= plan.after and after % plan.after == timedelta(0),
        )
    return Judge(
        judged=plan.waves[state.wave],
        controls=_controls(state),
        restarted_at=state.restarted_at,
        rolled_out_at=state.rolled_out_at,
        before=plan.before,
        settle=plan.settle,
        after=plan.after * (1 + state.extensions),
        step=plan.step,
        plan_namespaces=len(plan.namespaces),
        look=state.extensions,
        looks=1 + plan.max_extensions,
    )


def _look_again(state: UpgradeState, now: datetime, unsure: list[str]) -> Transition:
    """Looking at every step: not yet certain either way, so wait one step and look again.
    Interim looks stay out of the timeline; the end of the after-window and of each
    extension say where the wave stands, as the fixed looks' extension notes do."""
    plan = state.plan
    judged = _judged_after(state)
    state = _set(state, now, steps_looked=state.steps_looked + 1)
    state = _set(state, now, extensions=min(judged // plan.after, plan.max_extensions))
    until = _ready_at(state)
    state = _set(state, now, step=Step.WAIT, pending=WaitUntil(until=until, reason="next-look"))
    if judged % plan.after != timedelta(0):
        return Transition(state=state)
    note = Note(
        message=f"not yet certain in {', '.join(unsure)} after {_minutes(judged)} of "
        f"after-window; judging every step until {(_after_start(state) + _horizon(plan)).isoformat()}",
        reason="WindowExtended",
    )
    return Transition(state=state, notes=(note,))


def _minutes(span: timedelta) -> str:
    seconds = span.total_seconds()
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"


def _decide(state: UpgradeState, result: Judged, now: datetime) -> Transition:
    plan = state.plan
    names = plan.waves[state.wave]
    records = list(state.namespaces)
    for index, record in enumerate(records):
        judgement = result.verdicts.get(record.name)
        if judgement is not None and record.name in names:
            records[index] = record.model_copy(
                update={"verdict": judgement.verdict.value, "reason": judgement.reason,
                        "rules": judgement.rules}
            )  # fmt: skip
    state = _set(state, now, namespaces=tuple(records))
    verdicts = {n: result.verdicts.get(n) for n in names}
    notes = tuple(
        Note(message=f"verdict {j.verdict.value if j else 'missing'}: "
             f"{j.reason if j else 'no verdict returned'}", reason="Judged", namespace=n,
             warning=not j or j.verdict is not Verdict.PASS)
        for n, j in verdicts.items()
    )  # fmt: skip
    failed = {n: j for n, j in verdicts.items() if j is not None and j.verdict is Verdict.FAIL}
    if failed:
        state = _set(state, now, namespaces=_with_records(state, failed, state="failed"))
        reason = "; ".join(f"{n}: {j.reason}" for n, j in failed.items())
        transition = _enter_rollback(state, now, f"regression in {reason}")
        return Transition(state=transition.state, notes=(*notes, *transition.notes))
    unsure = [n for n, j in verdicts.items() if j is None or j.verdict is not Verdict.PASS]
    if unsure and plan.looks is LookPolicy.EVERY_STEP and _judged_after(state) < _horizon(plan):
        return _look_again(state, now, unsure)
    if unsure:
        if plan.looks is not LookPolicy.EVERY_STEP and state.extensions < plan.max_extensions:
            state = _set(state, now, extensions=state.extensions + 1)
            until = _ready_at(state)
            note = Note(
                message=f"inconclusive in {', '.join(unsure)}: extending the after window "
                f"({state.extensions}/{plan.max_extensions}) until {until.isoformat()}",
                reason="WindowExtended",
            )
            state = _set(
                state, now, step=Step.WAIT, pending=WaitUntil(until=until, reason="extension")
            )
            return Transition(state=state, notes=(*notes, note))
        state = _set(state, now, namespaces=_with_records(state, unsure, state="inconclusive"))
        why = f"still inconclusive after {plan.max_extensions} extensions in {', '.join(unsure)}"
        if plan.looks is LookPolicy.EVERY_STEP:
            why = (f"still inconclusive at every step of the after-window and its "
                   f"{plan.max_extensions} extensions in {', '.join(unsure)}")  # fmt: skip
        if plan.on_inconclusive is InconclusivePolicy.ROLLBACK:
            transition = _enter_rollback(state, now, why)
            return Transition(state=transition.state, notes=(*notes, *transition.notes))
        transition = _notify(
            state, now, Outcome.HELD,
            f"upgrade {plan.upgrade_id} held at wave {state.wave + 1}: {why}; a person decides "
            "(resume, approve or roll back)",
        )  # fmt: skip
        return Transition(state=transition.state, notes=(*notes, *transition.notes))
    state = _set(state, now, namespaces=_with_records(state, names, state="promoted"))
    if state.wave + 1 < len(plan.waves):
        transition = _enter_group(state, now, Stage.WAVE, state.wave + 1)
        return Transition(state=transition.state, notes=(*notes, *transition.notes))
    if plan.style is UpgradeStyle.NAMESPACE_LABEL:
        state = _set(state, now, stage=Stage.FINALIZE, step=Step.MOVE_TAG,
                     pending=MoveTag(tag=plan.tag, revision=plan.to_revision))  # fmt: skip
        return Transition(state=state, notes=notes)
    transition = _promoted(state, now)
    return Transition(state=transition.state, notes=(*notes, *transition.notes))


def _promoted(state: UpgradeState, now: datetime) -> Transition:
    plan = state.plan
    return _notify(
        state, now, Outcome.PROMOTED,
        f"upgrade {plan.upgrade_id} promoted: tag {plan.tag} on {plan.to_revision}, "
        f"{len(plan.namespaces)} namespaces and {len(plan.gateways)} gateway(s) moved",
    )  # fmt: skip


def _rollout_timed_out(state: UpgradeState, now: datetime, why: str) -> Transition:
    if state.stage is Stage.ROLLBACK:
        return _notify(
            state, now, Outcome.FAILED,
            f"upgrade {state.plan.upgrade_id}: rollback did not complete: {why} "
            f"(first cause: {state.rollback_reason}); a person must act",
        )  # fmt: skip
    return _enter_rollback(state, now, why)


def _not_restarted_notes(result: ProxyStatus) -> tuple[Note, ...]:
    """Once per group (when its verification ends): per namespace, the pods the upgrade does
    not restart, with their revision, so the timeline, log and report show them."""
    by_namespace: dict[str, list[str]] = {}
    for pod in result.not_restarted:
        by_namespace.setdefault(pod.split("/", 1)[0], []).append(pod)
    return tuple(
        Note(
            message=f"{len(pods)} pod(s) not restarted by this upgrade (left on their "
            f"revision, not verified): {'; '.join(pods[:10])}"
            + (f"; and {len(pods) - 10} more" if len(pods) > 10 else ""),
            reason="NotRestarted",
            namespace=namespace,
        )
        for namespace, pods in by_namespace.items()
    )


def _poll_again(state: UpgradeState, now: datetime, reason: str) -> Transition:
    """Wait one poll interval (never past the deadline); ``step`` says what to re-check."""
    assert state.deadline is not None
    until = min(now + state.plan.poll_interval, state.deadline)
    return Transition(state=_set(state, now, pending=WaitUntil(until=until, reason=reason)))


# -- the transition function ------------------------------------------------------------------


def advance(state: UpgradeState, result: Result, now: datetime) -> Transition:
    """Given the result of ``state.pending``, decide what comes next."""
    pending = state.pending
    if pending is None:
        return Transition(state=state)
    plan = state.plan

    if isinstance(pending, Notify):
        return Transition(state=_set(state, now, pending=None, step=Step.NONE))

    if isinstance(pending, MoveTag):
        _expect(result, Done, pending)
        note = Note(
            message=f"tag {pending.tag} now points at {pending.revision}", reason="TagMoved"
        )
        if state.stage is Stage.MOVE_TAG:
            transition = _enter_gateway_or_wave(state, now)
        elif state.stage is Stage.FINALIZE:
            transition = Transition(state=_set(
                state, now, step=Step.RELABEL,
                pending=LabelNamespaces(
                    namespaces=(*plan.gateway_namespaces, *plan.namespaces), value=plan.tag),
            ))  # fmt: skip
        else:  # rollback: tag back, find what else moved onto the new revision, restart it all
            action = FindMoved(revision=plan.to_revision, skip=_rollback_targets(state))
            transition = Transition(
                state=_set(state, now, step=Step.FIND_MOVED, pending=action, rescheduled=())
            )
        return Transition(state=transition.state, notes=(note, *transition.notes))

    if isinstance(pending, FindMoved):
        _expect(result, FoundMoved, pending)
        assert isinstance(result, FoundMoved)
        covered = set(pending.skip)
        extra = tuple(t for t in dict.fromkeys(result.targets) if t not in covered)
        state = _set(state, now, rescheduled=extra)
        notes = tuple(
            Note(
                message=f"{t.describe()} runs {pending.revision} outside the moved namespaces "
                "(pods created after the tag moved); the rollback restarts it too",
                reason="MovedOutsidePlan",
                namespace=t.namespace,
                warning=True,
            )
            for t in extra
        )
        transition = _restart(state, now)
        return Transition(state=transition.state, notes=(*notes, *transition.notes))

    if isinstance(pending, LabelNamespaces):
        _expect(result, Done, pending)
        if state.stage is Stage.FINALIZE:
            return _promoted(state, now)
        return _restart(state, now)

    if isinstance(pending, Restart):
        _expect(result, Restarted, pending)
        assert isinstance(result, Restarted)
        deadline = now + plan.rollout_timeout
        state = _set(
            state, now, restarted_at=result.at, deadline=deadline, step=Step.ROLLOUT,
            pending=CheckRollout(targets=pending.targets),
        )  # fmt: skip
        if state.stage is Stage.WAVE:
            names = plan.waves[state.wave]
            state = _set(state, now, namespaces=_with_records(state, names, restarted_at=result.at))
        return Transition(state=state)

    if isinstance(pending, CheckRollout):
        _expect(result, RolloutStatus, pending)
        assert isinstance(result, RolloutStatus) and state.deadline is not None
        if result.failed:
            return _rollout_timed_out(state, now, f"rollout failed: {result.failed}")
        if result.complete:
            state = _set(
                state, now, step=Step.VERIFY,
                pending=VerifyProxies(targets=pending.targets, revision=_expected_revision(state)),
            )  # fmt: skip
            return Transition(state=state)
        if now >= state.deadline:
            waiting = ", ".join(result.waiting) or "rollout"
            return _rollout_timed_out(
                state,
                now,
                f"rollout deadline {plan.rollout_timeout} exceeded waiting for {waiting}",
            )
        return _poll_again(state, now, "rollout")

    if isinstance(pending, VerifyProxies):
        _expect(result, ProxyStatus, pending)
        assert isinstance(result, ProxyStatus) and state.deadline is not None
        if not result.mismatched:
            transition = _after_verified(state, now)
        elif now >= state.deadline:
            sample = "; ".join(result.mismatched[:5])
            transition = _rollout_timed_out(
                state, now,
                f"{len(result.mismatched)} pod(s) not on revision {pending.revision}: {sample}",
            )  # fmt: skip
        else:
            return _poll_again(state, now, "proxies")
        return Transition(
            state=transition.state, notes=(*_not_restarted_notes(result), *transition.notes)
        )

    if isinstance(pending, WaitUntil):
        _expect(result, Done, pending)
        if now < pending.until:
            return Transition(state=state)  # woke early: wait again
        if state.step is Step.ROLLOUT:
            return Transition(
                state=_set(state, now, pending=CheckRollout(targets=_current_targets(state)))
            )
        if state.step is Step.VERIFY:
            return Transition(state=_set(state, now, pending=VerifyProxies(
                targets=_current_targets(state), revision=_expected_revision(state))))  # fmt: skip
        return Transition(state=_set(state, now, step=Step.JUDGE, pending=_judge_action(state)))

    if isinstance(pending, Judge):
        _expect(result, Judged, pending)
        assert isinstance(result, Judged)
        return _decide(state, result, now)

    raise UnexpectedResultError(f"unknown pending action {pending!r}")


def _expect(result: Result, kind: type, pending: Action) -> None:
    if not isinstance(result, kind):
        raise UnexpectedResultError(
            f"{pending.kind} needs a {kind.__name__} result, got {type(result).__name__}"
        )


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


# -- operator decisions and maintenance windows -------------------------------------------------


class OperatorDecisionError(ValueError):
    """An operator verb that does not apply to the upgrade's current state."""


def held(state: UpgradeState) -> bool:
    """The upgrade stopped on thin evidence and waits for a person."""
    return state.finished and state.outcome is Outcome.HELD


def abort(state: UpgradeState, now: datetime, reason: str) -> Transition:
    """Operator abort: roll back every moved namespace (and the gateway) now.

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
    return _enter_rollback(reopened, now, f"aborted by operator: {reason}")


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
