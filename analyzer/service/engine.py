"""The engine: the ONE place where the upgrade state machine's actions touch the world.

Why it exists: core decides, this applies. Loop: persist state (ConfigMap) → apply the
pending action through an adapter → hand the result to ``core.upgrade.advance`` → persist
the new state → … Because the state (with its pending action) is written BEFORE each side
effect and every action is idempotent (restarts carry the plan step id), a process killed
at any point resumes from the ConfigMap and never restarts a workload twice for one step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from analyzer.core.alerts import Alert
from analyzer.core.alerts.upgrade import RESOLVED_BY_OUTCOME, outcome_alert, rollback_started_alert
from analyzer.core.ports import (
    ClusterError,
    ClusterUnreachableError,
    MeshCluster,
    NotificationError,
    Notifier,
    StateStore,
)
from analyzer.core.reach import ReachInputs, SelectorError, compute_reach
from analyzer.core.upgrade import (
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
    Note,
    Notify,
    OperatorDecisionError,
    ProxyStatus,
    Restart,
    Restarted,
    Result,
    RolloutStatus,
    StateSchemaError,
    Target,
    Transition,
    UpgradePlan,
    UpgradeState,
    VerifyProxies,
    WaitUntil,
    advance,
    start,
    state_document,
    state_from_document,
)
from analyzer.core.verdicts import Verdict
from analyzer.errors import BadInputError, CanaryAnalyzerError, UnreachableError
from analyzer.service.clock import Clock

if TYPE_CHECKING:
    pass

log = logging.getLogger("canary_analyzer.engine")

# judging over Prometheus lives in ``service.judging``; kept importable from here

#: Called before each action; may block (paused) or raise to stop the run (state is saved).
Gate = Callable[[UpgradeState], None]


class Judging(Protocol):
    """Judges restarted namespaces (Prometheus + rules in production, scripted in tests)."""

    def judge(self, action: Judge) -> Judged: ...


class StateConflictError(BadInputError):
    """Another, unfinished upgrade is recorded in the state ConfigMap."""


class StateCorruptError(CanaryAnalyzerError):
    """The state ConfigMap holds something this version cannot read."""


@dataclass
class LogNotifier:
    """Notifier that only logs: the default until Alertmanager/webhook sinks are configured."""

    sent: list[Alert] | None = None

    def send(self, alerts: Sequence[Alert]) -> None:
        for alert in alerts:
            if self.sent is not None:
                self.sent.append(alert)
            log.warning(
                "alert",
                extra={"fields": {"alert": alert.name.value, "summary": alert.summary}},
            )


Observer = Callable[[UpgradeState, Sequence[Note], Action | None], None]


class UpgradeEngine:
    """Runs (or resumes) one upgrade to the end, persisting state before each action."""

    def __init__(
        self,
        cluster: MeshCluster,
        store: StateStore,
        judging: Judging,
        clock: Clock,
        notifier: Notifier | None = None,
        observer: Observer | None = None,
        link: str | None = None,
    ) -> None:
        self.cluster = cluster
        self.store = store
        self.judging = judging
        self.clock = clock
        self.notifier = notifier or LogNotifier()
        self.observer = observer
        self.link = link  # where on-call finds the report, put in alerts

    # -- state ---------------------------------------------------------------------------

    def load(self) -> UpgradeState | None:
        document = self.store.load()
        if not document:
            return None
        try:
            return state_from_document(document)
        except StateSchemaError as error:
            raise StateCorruptError(str(error)) from None

    def _save(self, state: UpgradeState) -> None:
        self.store.save(state_document(state))

    def resumable(self) -> UpgradeState | None:
        """The unfinished upgrade recorded in the store, if any."""
        state = self.load()
        return state if state is not None and not state.finished else None

    # -- running -------------------------------------------------------------------------

    def run(self, plan: UpgradePlan | None, gate: Gate | None = None) -> UpgradeState:
        """Resume the recorded unfinished upgrade, else start ``plan``.

        ``gate(state)`` is called before each action is applied: it may block (paused) or
        raise (stop: window closing, lost leadership, shutdown, abort). The state is already
        persisted at that point, so a later ``run(None)`` resumes exactly there."""
        state = self.resumable()
        if state is not None:
            if plan is not None and not _same_upgrade(state.plan, plan):
                raise StateConflictError(
                    f"an unfinished upgrade {state.plan.upgrade_id} (tag {state.plan.tag} "
                    f"{state.plan.from_revision} → {state.plan.to_revision}) is recorded; "
                    "finish or abort it first"
                )
            log.info(
                "resuming upgrade",
                extra={"fields": {"upgrade": state.plan.upgrade_id, "stage": state.stage.value,
                                  "pending": state.pending.kind if state.pending else None}},
            )  # fmt: skip
            self._emit(state, (), state.pending)
        else:
            if plan is None:
                raise BadInputError("nothing to resume and no plan given")
            transition = start(plan, self.clock.now())
            state = transition.state
            self._save(state)
            self._emit(state, transition.notes, state.pending)
        while state.pending is not None:
            if gate is not None:
                gate(state)
            result = self._apply(state.pending, state)
            transition = advance(state, result, self.clock.now())
            state = transition.state
            self._save(state)  # before the next action's side effect
            self._emit(state, transition.notes, state.pending)
        return state

    def decide(self, decision: Callable[[UpgradeState, datetime], Transition]) -> UpgradeState:
        """Apply an operator decision (``core.upgrade.abort``/``approve``) to the recorded
        state and persist it; the next ``run(None)`` carries it out."""
        state = self.load()
        if state is None:
            raise OperatorDecisionError("no upgrade is recorded")
        transition = decision(state, self.clock.now())
        self._save(transition.state)
        self._emit(transition.state, transition.notes, transition.state.pending)
        return transition.state

    def _emit(self, state: UpgradeState, notes: Sequence[Note], pending: Action | None) -> None:
        for note in notes:
            level = logging.WARNING if note.warning else logging.INFO
            log.log(
                level,
                note.message,
                extra={"fields": {"reason": note.reason, "namespace": note.namespace,
                                  "upgrade": state.plan.upgrade_id}},
            )  # fmt: skip
            if note.namespace:
                self._event(note.namespace, note.reason, note.message, note.warning)
            if note.reason == "RollingBack":
                self._page(rollback_started_alert(state, self.clock.now(), self.link))
        if self.observer is not None:
            self.observer(state, notes, pending)

    def _event(self, namespace: str, reason: str, message: str, warning: bool) -> None:
        try:
            self.cluster.record_event(namespace, reason, message, warning)
        except ClusterError as error:  # events are best effort
            log.warning("could not record event", extra={"fields": {"error": str(error)}})

    def _page(self, alert: Alert) -> None:
        try:
            self.notifier.send([alert])
        except NotificationError as error:
            log.error("notification failed", extra={"fields": {"error": str(error)}})

    def _apply(self, action: Action, state: UpgradeState) -> Result:
        try:
            return self._dispatch(action, state)
        except ClusterUnreachableError as error:
            raise UnreachableError(
                f"cluster unreachable during {action.kind}: {error}; state is saved, rerun "
                "the same command to resume"
            ) from None

    def _dispatch(self, action: Action, state: UpgradeState) -> Result:
        if isinstance(action, MoveTag):
            info = self.cluster.move_tag(action.tag, action.revision)
            for warning in info.warnings:
                log.warning(warning)
            return Done()
        if isinstance(action, LabelNamespaces):
            self.cluster.set_revision_label(action.namespaces, action.value)
            for namespace in action.namespaces:
                self._event(namespace, "RevisionLabelSet", f"istio.io/rev={action.value}", False)
            return Done()
        if isinstance(action, Restart):
            # stamped now, when the patch is applied (as kubectl's objectrestarter.go does),
            # never at planning time: a pause or the next window may lie in between
            now = self.clock.now()
            return Restarted(at=self.cluster.restart(action.targets, action.step_id, now))
        if isinstance(action, CheckRollout):
            return self.cluster.rollout_status(action.targets)
        if isinstance(action, VerifyProxies):
            return self.cluster.proxy_status(action.targets, action.revision)
        if isinstance(action, FindMoved):
            return self._find_moved(action, state)
        if isinstance(action, WaitUntil):
            self.clock.sleep_until(action.until)
            return Done()
        if isinstance(action, Judge):
            return self.judging.judge(self._clean_controls(action, state))
        if isinstance(action, Notify):
            for name in RESOLVED_BY_OUTCOME.get(action.outcome, ()):
                resolve_all = getattr(self.notifier, "resolve_all", None)
                if resolve_all is not None:
                    resolve_all(name)
            self._page(outcome_alert(state, self.clock.now(), self.link))
            return Done()
        raise TypeError(f"unknown action {action!r}")

    def _find_moved(self, action: FindMoved, state: UpgradeState) -> FoundMoved:
        """What the tag reaches that runs the new revision beyond the rollback's own targets
        (pods rescheduled or scaled up after the tag moved, namespaces left out of the plan).
        Best effort: a cluster that refuses the reads leaves the rollback as planned."""
        try:
            reach = compute_reach(self.cluster.reach_inputs(state.plan.tag))
        except ClusterUnreachableError:
            raise
        except (ClusterError, SelectorError) as error:
            log.warning(
                "could not look for pods moved outside the plan; rolling back the plan only",
                extra={"fields": {"error": str(error)}},
            )
            return FoundMoved()
        return FoundMoved(targets=reach.on_revision(action.revision, skip=action.skip))

    def _clean_controls(self, action: Judge, state: UpgradeState) -> Judge:
        """Pods outside the plan on an unexpected revision (e.g. rescheduled overnight after
        the tag moved) are reported, and their namespace stops serving as a control: its
        proxies changed inside the windows."""
        plan = state.plan
        expected = {
            r.name: plan.to_revision if r.state == "promoted" else plan.from_revision
            for r in state.namespaces
            if r.name in action.controls
        }
        dirty: set[str] = set()
        for revision in sorted(set(expected.values())):
            names = [n for n, rev in expected.items() if rev == revision]
            try:
                status = self.cluster.proxy_status([Target(namespace=n) for n in names], revision)
            except ClusterError as error:
                log.warning(
                    "could not check the controls' proxies", extra={"fields": {"error": str(error)}}
                )
                continue
            strays = [m for m in status.mismatched if "no sidecar" not in m]
            for namespace in {m.split("/", 1)[0] for m in strays}:
                found = [m for m in strays if m.startswith(f"{namespace}/")]
                message = (
                    f"pods outside the plan on an unexpected revision (expected {revision}): "
                    f"{'; '.join(found[:5])}; not used as a control"
                )
                log.warning(message, extra={"fields": {"namespace": namespace}})
                self._event(namespace, "UnexpectedProxyRevision", message, True)
                dirty.add(namespace)
        if not dirty:
            return action
        return action.model_copy(
            update={"controls": tuple(c for c in action.controls if c not in dirty)}
        )


def _same_upgrade(recorded: UpgradePlan, requested: UpgradePlan) -> bool:
    return (recorded.tag, recorded.to_revision) == (requested.tag, requested.to_revision)


# -- dry run ----------------------------------------------------------------------------------


class DryRunCluster:
    """Reads from the real cluster, writes nothing: records each write it would make."""

    def __init__(self, cluster: MeshCluster, clock: Clock) -> None:
        self._cluster = cluster
        self._clock = clock
        self.writes: list[str] = []

    def revisions(self):  # type: ignore[no-untyped-def]
        return self._cluster.revisions()

    def tags(self):  # type: ignore[no-untyped-def]
        return self._cluster.tags()

    def namespace_labels(self, namespace: str) -> dict[str, str] | None:
        return self._cluster.namespace_labels(namespace)

    def namespaces_labelled(self, value: str) -> list[str]:
        return self._cluster.namespaces_labelled(value)

    def workload_exists(self, target: Target) -> bool:
        return self._cluster.workload_exists(target)

    def reach_inputs(self, tag: str) -> ReachInputs:
        return self._cluster.reach_inputs(tag)

    def move_tag(self, tag: str, revision: str):  # type: ignore[no-untyped-def]
        from analyzer.core.ports import TagInfo

        self.writes.append(f"would point tag {tag} at revision {revision}")
        return TagInfo(name=tag, revision=revision)

    def set_revision_label(self, namespaces: Sequence[str], value: str) -> None:
        self.writes.append(f"would label {', '.join(namespaces)} istio.io/rev={value}")

    def restart(self, targets: Sequence[Target], step_id: str, at: datetime) -> datetime:
        self.writes.append(f"would restart {', '.join(t.describe() for t in targets)}")
        return at

    def rollout_status(self, targets: Sequence[Target]) -> RolloutStatus:
        return RolloutStatus(complete=True)

    def proxy_status(self, targets: Sequence[Target], revision: str) -> ProxyStatus:
        self.writes.append(f"would verify every pod runs revision {revision}")
        return ProxyStatus()

    def unrollable_workloads(self, targets: Sequence[Target]):  # type: ignore[no-untyped-def]
        return self._cluster.unrollable_workloads(targets)

    def record_event(self, namespace: str, reason: str, message: str, warning: bool) -> None:
        return None


class DryRunJudging:
    """Judging in a dry run: nothing was restarted, so every wave 'passes' with that reason."""

    def judge(self, action: Judge) -> Judged:
        return Judged(
            verdicts={
                name: NamespaceJudgement(
                    verdict=Verdict.PASS, reason="dry run: would judge after the restart"
                )
                for name in action.judged
            }
        )


class MemoryStateStore:
    """State kept in memory (dry runs and tests)."""

    def __init__(self) -> None:
        self.document: dict[str, Any] | None = None
        self.saves = 0

    def load(self) -> dict[str, Any] | None:
        return self.document

    def save(self, document: dict[str, Any]) -> None:
        self.saves += 1
        self.document = document
