"""The transition function: ``start(plan, now)`` and ``advance(state, result, now)``, entering
stages, deciding on verdicts (promote, extend, hold, roll back). See the package docstring.
"""

from __future__ import annotations

from datetime import datetime

from analyzer.core.upgrade.groups import (
    _after_start,
    _current_targets,
    _expected_revision,
    _horizon,
    _judged_after,
    _ready_at,
    _rollback_targets,
    _step_id,
)
from analyzer.core.upgrade.looks import _judge_action, _look_again
from analyzer.core.upgrade.plan import (
    InconclusivePolicy,
    LookPolicy,
    Outcome,
    Stage,
    Step,
    UpgradePlan,
    UpgradeStyle,
)
from analyzer.core.upgrade.state import (
    NamespaceRecord,
    Note,
    Transition,
    UnexpectedResultError,
    UpgradeState,
    _set,
    _with_records,
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
    Notify,
    ProxyStatus,
    Restart,
    Restarted,
    Result,
    RolloutStatus,
    VerifyProxies,
    WaitUntil,
)
from analyzer.core.verdicts import Verdict

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
        state,
        now,
        stage=stage,
        wave=wave,
        extensions=0,
        steps_looked=0,
        restarted_at=None,
        rolled_out_at=None,
        deadline=None,
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
    state = _set(
        state, now, rolled_out_at=now, namespaces=_with_records(state, names, state="judging")
    )
    until = _ready_at(state)
    return Transition(
        state=_set(state, now, step=Step.WAIT, pending=WaitUntil(until=until, reason="after window")),
        notes=(Note(message=f"wave {state.wave + 1} on {plan.to_revision} (rolled out "
                    f"{now.isoformat()}); after-window from {_after_start(state).isoformat()}; "
                    f"judging at {until.isoformat()}", reason="ProxiesVerified"),),
    )  # fmt: skip


def _decide(state: UpgradeState, result: Judged, now: datetime) -> Transition:
    plan = state.plan
    names = plan.waves[state.wave]
    records = list(state.namespaces)
    for index, record in enumerate(records):
        judgement = result.verdicts.get(record.name)
        if judgement is not None and record.name in names:
            records[index] = record.model_copy(
                update={"verdict": judgement.verdict, "reason": judgement.reason,
                        "rules": judgement.rules, "evidence": judgement.evidence}
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
    every_step = plan.looks is LookPolicy.EVERY_STEP
    if unsure and every_step and _judged_after(state) < _horizon(plan):
        return _look_again(state, now, unsure)
    if unsure:
        if not every_step and state.extensions < plan.max_extensions:
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
        if every_step:
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
