"""The long-running service: runs upgrades unattended inside maintenance windows.

One loop (``tick``, every few seconds under apscheduler) decides whether this replica may act
(Lease), whether the window is open, whether an upgrade is pending (requested through the
API, declared in settings, or detected), and starts or resumes the engine in a worker
thread. The engine calls ``_gate`` before every action: that is where pause blocks, where an
abort, a closing window, a lost lease or a shutdown stop it — always at an action boundary,
with the state already persisted, so the next run resumes exactly there.

Operator verbs (pause, resume, approve, abort, upgrade) arrive from HTTP threads; the
service's own memory (paused, queued request) lives in the state ConfigMap beside the
engine's state, so a restart loses nothing. So does the upgrade's timeline (``timeline``
module): written whenever the engine adds items, loaded at start, on becoming leader and by
a standby on each pass, so ``/api/status`` and the report tell the whole upgrade after a
restart or a leader change.

Replicas: only the Lease holder acts. A standby that receives a verb does not refuse it: it
queues it in the state ConfigMap's ``inbox`` key (``inbox`` module) and answers "queued";
the leader, on each pass of its loop, applies the queued verbs in order through the same
methods the HTTP API calls, records in the timeline and the log what it did and for whom,
and removes exactly the entries it applied. A verb the leader refuses is dropped with its
reason; ``/api/status`` shows the verbs still waiting (``queued_requests``).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from analyzer.core.alerts import AlertName
from analyzer.core.alerts.builders import data_source_errors, rules_invalid
from analyzer.core.mesh import ClusterError, MeshCluster, StateStore, VersionedStore
from analyzer.core.rules import RuleProblem, RuleSet
from analyzer.core.upgrade import (
    Note,
    OperatorDecisionError,
    Stage,
    UpgradeState,
    UpgradeStyle,
    UpgradeSummary,
    abort,
    approve,
    group_fits_window,
    held,
    summary,
)
from analyzer.core.verdicts import VerdictAt
from analyzer.errors import CanaryAnalyzerError
from analyzer.service.alerting import AlertDispatcher
from analyzer.service.analysis import AnalysisOutcome
from analyzer.service.clock import Clock
from analyzer.service.engine import Judging, MemoryStateStore, UpgradeEngine
from analyzer.service.inbox import (
    ControlInbox,
    InboxError,
    MemoryVersionedStore,
    QueuedRequest,
)
from analyzer.service.maintenance import MaintenanceWindow, WindowState
from analyzer.service.preflight import (
    PreflightError,
    UpgradeRequest,
    build_plan,
    parse_gateway,
    preflight,
)
from analyzer.service.rules_reload import RulesWatcher
from analyzer.service.self_metrics import SelfMetrics
from analyzer.service.soak import PruneGate
from analyzer.service.timeline import KeptTimeline
from analyzer.settings import Settings
from analyzer.views.http_api import (
    ControlAnswer,
    ControlRefusedError,
    QueuedForLeader,
    StandbyCannotQueueError,
    UpgradeRequestBody,
)
from analyzer.views.reports import write_upgrade_report
from analyzer.views.status_page import list_reports

log = logging.getLogger("canary_analyzer.service")


class StopRun(Exception):
    """Stops the engine at an action boundary; the state is saved and resumes later."""

    def __init__(self, reason: str, phase: str):
        super().__init__(reason)
        self.reason = reason
        self.phase = phase


class AbortRequested(Exception):
    """An operator asked to abort: the worker rolls back what moved."""


class LeadershipView:
    """Whether this replica may act. ``None`` elector: a single replica always leads."""

    def __init__(self, elector=None):
        self.elector = elector

    def leads(self, now: datetime) -> bool:
        return self.elector is None or self.elector.is_leader(now)

    def tick(self, now: datetime) -> bool:
        return True if self.elector is None else self.elector.tick(now)

    @property
    def holder(self) -> str | None:
        return None if self.elector is None else self.elector.holder

    @property
    def identity(self) -> str | None:
        return None if self.elector is None else self.elector.identity

    def release(self) -> None:
        if self.elector is not None:
            self.elector.release()


@dataclass
class ServiceMemory:
    """What the service must not forget across restarts (kept in the state ConfigMap)."""

    paused: bool = False
    paused_at: str | None = None
    request: dict[str, Any] | None = None
    refused: dict[str, Any] | None = None  # the last request preflight refused, and why

    @classmethod
    def from_document(cls, document: dict[str, Any] | None) -> ServiceMemory:
        document = document or {}
        return cls(
            paused=bool(document.get("paused", False)),
            paused_at=document.get("paused_at"),
            request=document.get("request"),
            refused=document.get("refused"),
        )

    def to_document(self) -> dict[str, Any]:
        return {
            "paused": self.paused,
            "paused_at": self.paused_at,
            "request": self.request,
            "refused": self.refused,
        }


@dataclass
class ServiceView:
    """The latest facts for ``/api/status`` (updated by the loop and the engine)."""

    phase: str = "idle"
    message: str = ""
    state: UpgradeState | None = None
    window: WindowState | None = None
    last_verdicts: list[VerdictAt] = field(default_factory=list)  # newest first
    worker_error: str | None = None
    queued_requests: list[dict[str, Any]] = field(default_factory=list)  # as last read


def _revision_key(revision: str) -> tuple:
    """``1-15-4`` → (1, 15, 4): revision names compare as versions."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"[-.]", revision))


class UpgradeService:
    """Coordinates windows, leadership, requests, operator verbs and the engine."""

    #: Consecutive failed attempts (cluster or Prometheus unreachable) before on-call is paged.
    FAILURES_BEFORE_PAGE = 3
    #: Passes on which applying a queued verb failed unexpectedly before it is dropped.
    QUEUED_REQUEST_ATTEMPTS = 3

    def __init__(
        self,
        *,
        settings: Settings,
        cluster: MeshCluster,
        engine_store: StateStore,
        service_store: StateStore,
        judging_for: Callable[[Callable[[], RuleSet], Callable[[AnalysisOutcome], None]], Judging],
        rules: RulesWatcher,
        pager: AlertDispatcher,
        metrics: SelfMetrics,
        window: MaintenanceWindow,
        clock: Clock,
        interrupt: threading.Event,
        leadership: LeadershipView | None = None,
        reports_dir: Path | None = None,
        timeline_store: StateStore | None = None,
        inbox_store: VersionedStore | None = None,
        evidence_check: Callable[[RuleSet, Sequence[str], datetime], Sequence[str]] | None = None,
        prune_gate: PruneGate | None = None,
    ):
        """``timeline_store`` keeps the upgrade timeline across restarts (the state
        ConfigMap's ``timeline`` key); without one it lives in memory only.
        ``inbox_store`` holds the verbs standbys queue for the leader (the state
        ConfigMap's ``inbox`` key), shared by all replicas; in memory without one.
        ``evidence_check(rules, namespaces, now)`` warns, as a new upgrade starts, of planned
        namespaces too quiet to be judged (``analysis.planned_evidence_warnings``)."""
        self.settings = settings
        self.cluster = cluster
        self.engine_store = engine_store
        self.service_store = service_store
        self.rules = rules
        self.pager = pager
        self.metrics = metrics
        self.window = window
        self.clock = clock
        self.interrupt = interrupt
        self.leadership = leadership or LeadershipView()
        self.reports_dir = reports_dir or settings.service.reports_dir
        self.rollout_estimate = settings.upgrade.rollout_estimate
        self.view = ServiceView()
        self._judging = judging_for(lambda: self.rules.rules, self._record_analysis)
        self._lock = threading.RLock()
        self._resume = threading.Event()
        self._resume.set()
        self._abort = threading.Event()
        self._stopping = threading.Event()
        self._worker: threading.Thread | None = None
        self._timeline = KeptTimeline(timeline_store or MemoryStateStore())
        self._timeline.load()  # a restarted service shows the timeline so far
        self._leading = False  # as of the last pass: a change to True reloads the timeline
        self._failures: list[str] = []
        self._inbox = ControlInbox(inbox_store or MemoryVersionedStore())
        self._evidence_check = evidence_check
        self._applied_requests: set[str] = set()  # applied, not yet removed (a write failed)
        self._failed_requests: dict[str, int] = {}  # id → passes on which applying failed
        self._queued_upgrade_note: Note | None = None  # for the timeline the request starts
        self.memory = ServiceMemory.from_document(self._load_memory())
        if self.memory.paused:
            self._resume.clear()
        rules.on_invalid = self._rules_invalid
        rules.on_valid = self._rules_valid
        self.prune_gate = prune_gate  # after a promotion: soak, then offer the prune

    # -- the loop ------------------------------------------------------------------------

    def tick(self) -> None:
        """One pass of the service loop. Never raises (the scheduler keeps calling it)."""
        try:
            self._tick()
        except Exception as error:  # the loop must survive anything and say so
            log.exception("service loop failed")
            self.view.message = f"service loop error: {type(error).__name__}: {error}"

    def _tick(self) -> None:
        now = self.clock.now()
        self.metrics.heartbeat.set(now.timestamp())
        leading = self.leadership.tick(now)
        became_leader, self._leading = leading and not self._leading, leading
        self.metrics.leader.set(1 if leading else 0)
        self.metrics.paused.set(1 if self.memory.paused else 0)
        self.view.window = self.window.state(now)
        if self.worker_running():
            if leading:
                self._apply_queued_requests()  # pause and abort act on the running engine
                self._timeline.save()  # only if a write failed: the worker writes new items
            return
        state = self._load_state()
        self.view.state = state
        upgrade_id = state.plan.upgrade_id if state is not None else None
        if not leading or became_leader:
            self._timeline.load(upgrade_id)  # the leader's timeline; a new leader goes on with it
        else:
            self._timeline.save()  # writes nothing unless a write failed earlier
        if not leading:
            self._read_queued_requests()
            self._set_phase(
                "standby", f"standby: {self.leadership.holder or 'another replica'} leads"
            )
            return
        if self._apply_queued_requests():
            if self.worker_running():  # an abort started the rollback
                return
            state = self._load_state()  # an approve or abort changed it
            self.view.state = state
        if state is not None and not state.finished:
            if state.stage is Stage.ROLLBACK:
                self._start_worker(None, "resuming the rollback")  # never waits for a window
                return
            if self.memory.paused:
                self._set_phase("paused", "paused by an operator; resume to go on")
                return
            if not self.view.window.open:
                self._set_phase(
                    "waiting-window", f"upgrade waits for the window ({self.window.describe()})"
                )
                return
            self._start_worker(None, "resuming the recorded upgrade")
            return
        if state is not None and held(state):
            self._set_phase("held", "held: approve or abort")
            return
        body, request = self._pending_request(state)
        if request is None and self.prune_gate is not None:
            self.prune_gate.tick(state, now)
        if request is None:
            self._set_phase(
                "done" if state is not None else "idle",
                self.view.message if state else "no upgrade pending",
            )
            return
        if self.memory.paused:
            self._set_phase("paused", "paused by an operator; an upgrade is pending")
            return
        if not self.view.window.open:
            opens = self.view.window.opens_at.isoformat() if self.view.window.opens_at else "?"
            self._set_phase(
                "waiting-window", f"upgrade to {request.to_revision} pending; window opens {opens}"
            )
            return
        self._start_new(body, request)

    def tick_alerts(self) -> None:
        """Re-send firing alerts and beat the heartbeat (its own job: a slow sink must not
        delay the loop)."""
        try:
            self.pager.tick(healthy=self.view.worker_error is None)
        except Exception:
            log.exception("alert delivery round failed")

    def _set_phase(self, phase: str, message: str = "") -> None:
        self.view.phase = phase
        if message:
            self.view.message = message
        metrics_phase = {"standby": "idle"}.get(phase, phase)
        self.metrics.set_phase(metrics_phase)

    # -- what to upgrade -----------------------------------------------------------------

    def _pending_request(
        self, last: UpgradeState | None
    ) -> tuple[dict[str, Any] | None, UpgradeRequest | None]:
        """The API request if queued, else the declared one, else a detected one (opt-in).
        An upgrade that already ended (rolled back, failed) is not retried on its own."""
        body = self.memory.request
        upgrade = self.settings.upgrade
        if body is None and self.settings.service.to_revision:
            body = {"to_revision": self.settings.service.to_revision,
                    "from_revision": self.settings.service.from_revision}  # fmt: skip
        if body is None and self.settings.service.detect_upgrades:
            body = self._detected()
        if body is None:
            return None, None
        queued = body is self.memory.request
        if not queued and self.memory.refused and self.memory.refused.get("request") == body:
            return None, None  # preflight refused this declared upgrade; fix it or request one
        tag = body.get("tag") or upgrade.tag
        if (
            last is not None
            and not queued
            and (last.plan.tag, last.plan.to_revision) == (tag, body["to_revision"])
        ):
            return None, None  # that upgrade ran already; a new API request is needed to retry
        namespaces = body.get("namespaces")
        return body, UpgradeRequest(
            to_revision=body["to_revision"],
            from_revision=body.get("from_revision"),
            tag=tag,
            style=UpgradeStyle(upgrade.style),
            gateways=tuple(parse_gateway(g) for g in upgrade.gateways),
            namespaces=tuple(namespaces) if namespaces else None,
            exclude_unrollable=upgrade.exclude_unrollable,
        )

    def _detected(self) -> dict[str, Any] | None:
        """A newer ready istiod revision than the tag points at."""
        try:
            tag = self.cluster.tags().get(self.settings.upgrade.tag)
            revisions = self.cluster.revisions()
        except ClusterError as error:
            log.warning("cannot look for new revisions", extra={"fields": {"error": str(error)}})
            return None
        if tag is None:
            return None
        newer = [
            r.name
            for r in revisions.values()
            if r.ready and r.injector and _revision_key(r.name) > _revision_key(tag.revision)
        ]
        if not newer:
            return None
        return {"to_revision": max(newer, key=_revision_key), "from_revision": tag.revision}

    def _start_new(self, body: dict[str, Any], request: UpgradeRequest) -> None:
        try:
            checked = preflight(self.cluster, request)
        except PreflightError as error:
            log.error(
                "upgrade request refused by preflight",
                extra={"fields": {"problems": list(error.problems)}},
            )
            with self._lock:
                self.memory.refused = {
                    "request": self.memory.request,
                    "problems": list(error.problems),
                }
                self.memory.request = None
                self._save_memory()
            self._set_phase(
                "idle", f"upgrade to {request.to_revision} refused: {'; '.join(error.problems)}"
            )
            return
        if checked.reach is not None:  # what the tag reaches, as preflight worked it out
            log.info("\n".join(checked.reach.lines()))
        for warning in checked.warnings:
            log.warning(warning)
        quiet: Sequence[str] = ()
        if self._evidence_check is not None:
            quiet = self._evidence_check(self.rules.rules, checked.namespaces, self.clock.now())
        for warning in quiet:
            log.warning(warning)
        plan = build_plan(request, checked, self.settings, self.clock.now())
        with self._lock:
            self.memory.request = None  # from here on the engine's state carries it
            self.memory.refused = None
            self._save_memory()
        self._timeline.reset(plan.upgrade_id)  # a new upgrade, a new timeline
        if self._queued_upgrade_note is not None:  # it came through a standby: say so first
            self._timeline.record_note(self._queued_upgrade_note, self.clock.now())
            self._queued_upgrade_note = None
        for warning in quiet:  # on-call reads in the report why the night may hold there
            self._timeline.record_note(
                Note(message=warning, reason="ThinEvidence", warning=True), self.clock.now()
            )
        self._start_worker(plan, f"starting upgrade {plan.upgrade_id}")

    # -- the worker ----------------------------------------------------------------------

    def worker_running(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def _start_worker(self, plan, message: str) -> None:
        self.interrupt.clear()
        self._abort.clear()
        self._set_phase("running", message)
        log.info(message)
        self._worker = threading.Thread(target=self._work, args=(plan,), name="engine", daemon=True)
        self._worker.start()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait for the worker to stop (tests and shutdown); True when it did."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
        return not self.worker_running()

    def _engine(self, upgrade_id: str | None) -> UpgradeEngine:
        return UpgradeEngine(
            self.cluster,
            self.engine_store,
            self._judging,
            self.clock,
            notifier=self.pager,
            observer=self._observe,
            link=self._report_link(upgrade_id),
        )

    def _work(self, plan) -> None:
        recorded = self._load_state()
        upgrade_id = (
            plan.upgrade_id
            if plan is not None
            else (recorded.plan.upgrade_id if recorded else None)
        )
        engine = self._engine(upgrade_id)
        try:
            try:
                state = engine.run(plan, gate=self._gate)
            except AbortRequested:
                state = self._abort_now(engine)
            self._finished(state)
        except StopRun as stop:
            log.info("engine stopped", extra={"fields": {"reason": stop.reason}})
            self._set_phase(stop.phase, stop.reason)
        except CanaryAnalyzerError as error:
            self._failures.append(str(error))
            log.error("upgrade step failed; will retry", extra={"fields": {"error": str(error)}})
            self._set_phase("running", f"last attempt failed: {error}; retrying on the next tick")
            if len(self._failures) >= self.FAILURES_BEFORE_PAGE:
                self.pager.fire(
                    data_source_errors(
                        errors=self._failures[-5:],
                        consecutive=len(self._failures),
                        now=self.clock.now(),
                        source="kubernetes/prometheus",
                    )
                )
        except Exception as error:
            log.exception("engine failed")
            self.view.worker_error = f"{type(error).__name__}: {error}"
            self._set_phase("failed", f"engine failed: {self.view.worker_error}")
        finally:
            self._write_report()

    def _abort_now(self, engine: UpgradeEngine) -> UpgradeState:
        self._set_phase("rolling-back", "aborted by an operator: rolling back")
        self.metrics.rollbacks.inc()
        engine.decide(lambda state, now: abort(state, now, "abort requested through the API"))
        self.interrupt.clear()
        return engine.run(None, gate=self._gate)

    def _gate(self, state: UpgradeState) -> None:
        """Before each action: stop, abort, pause or hold for the window."""
        self.view.state = state
        if self._failures:  # the engine got this far again: the sources answer
            self._failures.clear()
            self.pager.resolve_all(AlertName.DATA_SOURCE_ERRORS)
        rolling_back = state.stage is Stage.ROLLBACK
        while True:
            if self._stopping.is_set():
                raise StopRun("shutting down; the upgrade resumes from the saved state", "idle")
            now = self.clock.now()
            if not self.leadership.leads(now):
                raise StopRun("lost the lease; another replica continues", "standby")
            if self._abort.is_set() and not rolling_back:
                self._abort.clear()
                raise AbortRequested
            if rolling_back or self._resume.is_set():
                break
            self._set_phase("paused", "paused by an operator; resume to go on")
            self._resume.wait(0.2)  # woken by resume, abort or stop; re-checked each pass
        if rolling_back:
            self._set_phase("rolling-back", f"rolling back: {state.rollback_reason}")
            return
        window = self.window.state(now)
        self.view.window = window
        if not window.open or not group_fits_window(
            state, now, window.closes_at, self.rollout_estimate
        ):
            raise StopRun(
                "the next wave could not finish before the maintenance window closes; "
                "it starts in the next window",
                "waiting-window",
            )
        self._set_phase("running", self.view.message)

    def _observe(self, state: UpgradeState, notes, pending) -> None:
        self.view.state = state
        self._timeline.record(state, notes, pending)  # and writes it to the state ConfigMap
        if any(note.reason == "RollingBack" for note in notes):
            self.metrics.rollbacks.inc()
        plan = state.plan
        self.metrics.namespaces_total.set(len(plan.namespaces))
        self.metrics.namespaces_done.set(sum(1 for r in state.namespaces if r.state == "promoted"))
        for note in notes:
            log.info(
                note.message, extra={"fields": {"reason": note.reason, "namespace": note.namespace}}
            )

    def _record_analysis(self, outcome: AnalysisOutcome) -> None:
        now = self.clock.now()
        self.metrics.record_verdicts(outcome.verdicts, now.timestamp())
        with self._lock:
            for verdict in outcome.verdicts.values():
                self.view.last_verdicts.insert(0, VerdictAt(verdict, now))
            del self.view.last_verdicts[20:]

    def _finished(self, state: UpgradeState) -> None:
        self.view.state = state
        self._write_report()  # before the phase says "done": the report is there when it does
        phase = {"promoted": "done", "rolled_back": "done", "failed": "failed", "held": "held"}
        outcome = state.outcome.value if state.outcome else "done"
        self._set_phase(
            phase.get(outcome, "done"), f"upgrade {state.plan.upgrade_id} ended: {outcome}"
        )

    # -- reports -------------------------------------------------------------------------

    def _report_name(self, upgrade_id: str | None) -> str | None:
        return f"upgrade-{upgrade_id}.html" if upgrade_id else None

    def _report_link(self, upgrade_id: str | None) -> str | None:
        name = self._report_name(upgrade_id)
        base = self.settings.service.public_url
        return f"{base.rstrip('/')}/reports/{name}" if base and name else None

    def _write_report(self) -> None:
        state = self.view.state
        if state is None:
            return
        try:
            write_upgrade_report(
                self.reports_dir / self._report_name(state.plan.upgrade_id),
                UpgradeSummary.of(state),
                self._timeline.items,
            )
        except Exception:  # a report must never break the upgrade
            log.exception("could not write the upgrade report")

    # -- operator verbs (HTTP threads) ---------------------------------------------------

    def _queue_if_standby(
        self, verb: str, body: dict[str, Any] | None = None
    ) -> QueuedForLeader | None:
        """On a standby: queue the verb for the leader and say so; None on the leader."""
        if self.leadership.leads(self.clock.now()):
            return None
        leader = self.leadership.holder
        via = self.leadership.identity or "a standby"
        try:
            request = self._inbox.queue(verb, self.clock.now(), via, body)
        except InboxError as error:
            log.warning(
                "could not queue a verb for the leader",
                extra={"fields": {"verb": verb, "leader": leader, "error": str(error)}},
            )
            raise StandbyCannotQueueError(
                f"this replica is on standby and could not queue {verb} for the leader "
                f"({error}); send the request to the leader ({leader or 'unknown'})"
            ) from None
        log.info(
            "verb queued for the leader",
            extra={"fields": {"verb": verb, "id": request.id, "leader": leader, "via": via}},
        )
        with self._lock:
            self.view.queued_requests = [*self.view.queued_requests, request.to_json()]
        return QueuedForLeader(request_id=request.id, verb=verb, leader=leader)

    def pause(self) -> ControlAnswer:
        if queued := self._queue_if_standby("pause"):
            return queued
        with self._lock:
            self.memory.paused = True
            self.memory.paused_at = self.clock.now().isoformat()
            self._save_memory()
        self._resume.clear()
        self.interrupt.set()  # wake a waiting engine so it stops at the next boundary
        self.metrics.paused.set(1)
        log.warning("paused by an operator")
        return {"message": "paused: no new step starts until resume (a rollback still completes)",
                "paused": True}  # fmt: skip

    def resume(self) -> ControlAnswer:
        if queued := self._queue_if_standby("resume"):
            return queued
        with self._lock:
            self.memory.paused = False
            self.memory.paused_at = None
            self._save_memory()
        self.interrupt.clear()
        self._resume.set()
        self.metrics.paused.set(0)
        log.info("resumed by an operator")
        return {"message": "resumed", "paused": False}

    def approve(self) -> ControlAnswer:
        if queued := self._queue_if_standby("approve"):
            return queued
        state = self._load_state()
        if state is None or not held(state):
            raise ControlRefusedError("nothing to approve: no upgrade is held")
        engine = self._engine(state.plan.upgrade_id)
        try:
            state = engine.decide(lambda s, now: approve(s, now, "an operator (API)"))
        except OperatorDecisionError as error:
            raise ControlRefusedError(str(error)) from None
        self.pager.resolve_all(AlertName.HELD)
        self.view.state = state
        return {"message": f"approved: upgrade {state.plan.upgrade_id} goes on in the window"}

    def abort(self) -> ControlAnswer:
        if queued := self._queue_if_standby("abort"):
            return queued
        if self.worker_running():
            self._abort.set()
            self._resume.set()
            self.interrupt.set()
            return {"message": "abort requested: rolling back what moved at the next step"}
        state = self._load_state()
        if state is None or (state.finished and not held(state)):
            with self._lock:
                dropped = self.memory.request
                self.memory.request = None
                self._save_memory()
            if dropped:
                return {"message": f"queued upgrade to {dropped.get('to_revision')} dropped"}
            raise ControlRefusedError("nothing to abort: no upgrade is running, held or queued")
        engine = self._engine(state.plan.upgrade_id)
        try:
            engine.decide(lambda s, now: abort(s, now, "abort requested through the API"))
        except OperatorDecisionError as error:
            raise ControlRefusedError(str(error)) from None
        self.pager.resolve_all(AlertName.HELD)
        self._start_worker(None, "aborted by an operator: rolling back")
        return {"message": "aborted: rolling back what moved"}

    def approve_prune(self) -> ControlAnswer:
        """Prune the soaked, unused old revision offered by CanaryAnalyzerPruneReady."""
        if self.prune_gate is None:
            raise ControlRefusedError("prune is off (setting upgrade.prune)")
        if not self.leadership.leads(self.clock.now()):
            raise ControlRefusedError("only the leader prunes: send it to the leader")
        done, message = self.prune_gate.approve()
        if not done:
            raise ControlRefusedError(message)
        return {"message": message}

    def request_upgrade(self, body: UpgradeRequestBody) -> ControlAnswer:
        if queued := self._queue_if_standby("upgrade", body.model_dump(exclude_none=True)):
            return queued
        state = self._load_state()
        if state is not None and (not state.finished or held(state)):
            raise ControlRefusedError(
                f"upgrade {state.plan.upgrade_id} is not finished ({state.stage.value}); "
                "finish, approve or abort it first"
            )
        with self._lock:
            self.memory.request = body.model_dump(exclude_none=True)
            self.memory.refused = None
            self._save_memory()
        window = self.window.state(self.clock.now())
        when = (
            "now"
            if window.open
            else f"when the window opens ({window.opens_at.isoformat() if window.opens_at else '?'})"
        )
        log.info("upgrade requested", extra={"fields": self.memory.request})
        self.view.message = f"upgrade to {body.to_revision} requested; starts {when}"
        return {
            "message": f"upgrade to {body.to_revision} queued; starts {when}",
            "request": self.memory.request,
        }

    # -- verbs queued by standbys (the loop, on the leader) --------------------------------

    def _read_queued_requests(self) -> None:
        """A standby's pass: show the verbs still waiting in ``/api/status``."""
        try:
            waiting = self._inbox.pending()
        except InboxError as error:
            log.warning("cannot read the queued verbs", extra={"fields": {"error": str(error)}})
            return
        with self._lock:
            self.view.queued_requests = [request.to_json() for request in waiting]

    def _apply_queued_requests(self) -> bool:
        """The leader's pass: apply each verb standbys queued, oldest first, then remove
        exactly those. True when any was applied (the state or memory may have changed)."""
        try:
            waiting = self._inbox.pending()
        except InboxError as error:
            log.warning(
                "cannot read the verbs standbys queued; trying again on the next pass",
                extra={"fields": {"error": str(error)}},
            )
            return False
        done: list[str] = []
        applied_any = False
        for request in waiting:
            if request.id in self._applied_requests:
                done.append(request.id)  # applied on an earlier pass; its removal failed
                continue
            if not self.leadership.leads(self.clock.now()):
                break  # the next leader applies the rest
            finished = self._apply_queued(request)
            if not finished:
                break  # keeps the order: the rest waits behind it
            applied_any = True
            self._applied_requests.add(request.id)
            done.append(request.id)
        if done:
            try:
                self._inbox.remove(done)
            except InboxError as error:
                log.warning(
                    "applied queued verbs but could not remove them; removed on the next pass",
                    extra={"fields": {"ids": done, "error": str(error)}},
                )
            else:
                self._applied_requests.difference_update(done)
        with self._lock:
            self.view.queued_requests = [r.to_json() for r in waiting if r.id not in done]
        return applied_any

    def _apply_queued(self, request: QueuedRequest) -> bool:
        """Apply one queued verb through the HTTP API's own method; log and record in the
        timeline what happened. False when it should be tried again on the next pass."""
        verbs: dict[str, Callable[[], ControlAnswer]] = {
            "pause": self.pause,
            "resume": self.resume,
            "approve": self.approve,
            "abort": self.abort,
            "upgrade": lambda: self.request_upgrade(
                UpgradeRequestBody.model_validate(request.body or {})
            ),
        }
        verb = verbs.get(request.verb)
        fields = {"id": request.id, "verb": request.verb, "via": request.via, "at": request.at}
        try:
            if verb is None:
                raise ControlRefusedError(f"unknown verb {request.verb!r}")
            answer = verb()
        except ControlRefusedError as error:
            outcome, refused = f"refused: {error}", True
        except ValidationError as error:
            problems = "; ".join(str(e.get("msg")) for e in error.errors())
            outcome, refused = f"refused: invalid upgrade request: {problems}", True
        except Exception as error:  # unexpected (e.g. the cluster): try again, a few times
            failures = self._failed_requests.get(request.id, 0) + 1
            self._failed_requests[request.id] = failures
            log.exception("applying a queued verb failed", extra={"fields": fields})
            if failures < self.QUEUED_REQUEST_ATTEMPTS:
                return False
            outcome, refused = (
                f"dropped after {failures} failed attempts: {type(error).__name__}: {error}",
                True,
            )
        else:
            if isinstance(answer, QueuedForLeader):  # lost the lease meanwhile: queued anew
                outcome, refused = f"handed on to the next leader ({answer.request_id})", False
            else:
                outcome, refused = f"applied: {answer.get('message', '')}", False
        self._failed_requests.pop(request.id, None)
        message = f"{request.describe()}: {outcome}"
        if refused:
            log.warning(message, extra={"fields": fields})
        else:
            log.info(message, extra={"fields": fields})
        note = Note(
            message=message,
            reason="QueuedRequestRefused" if refused else "QueuedRequestApplied",
            warning=refused,
        )
        self._timeline.record_note(note, self.clock.now())
        if request.verb == "upgrade" and not refused:
            self._queued_upgrade_note = note  # the upgrade's own timeline starts with it
        return True

    # -- status --------------------------------------------------------------------------

    def readiness(self) -> tuple[bool, str]:
        if self.view.worker_error:
            return False, f"engine failed: {self.view.worker_error}"
        return True, f"{self.view.phase}: {self.view.message}"

    def status(self) -> dict[str, Any]:
        state = self.view.state
        upgrade = None
        if state is not None:
            document = summary(state)
            upgrade = {
                **document,
                "stage": state.stage.value,
                "step": state.step.value,
                "wave": state.wave + 1,
                "waves": [list(w) for w in state.plan.waves],
                "namespaces_total": len(state.plan.namespaces),
                "namespaces_done": sum(1 for r in state.namespaces if r.state == "promoted"),
                "updated_at": state.updated_at.isoformat(),
                "report": self._report_name(state.plan.upgrade_id),
            }
        window = self.view.window or self.window.state(self.clock.now())
        return {
            "phase": self.view.phase,
            "message": self.view.message,
            "paused": self.memory.paused,
            "leader": self.leadership.holder or self.leadership.identity,
            "is_leader": self.leadership.leads(self.clock.now()),
            "window": {**window.to_dict(), "schedule": self.window.describe()},
            "upgrade": upgrade,
            "pending_request": self.memory.request,
            "refused_request": self.memory.refused,
            "queued_requests": list(self.view.queued_requests),
            "last_verdicts": [v.to_status_item() for v in self.view.last_verdicts],
            "timeline": [
                {
                    **item,
                    "at": item["at"].isoformat()
                    if hasattr(item["at"], "isoformat")
                    else item["at"],
                }
                for item in self._timeline.items[-100:]
            ],
            "rules": {"names": self.rules.rules.names(), "invalid": self.rules.invalid},
            "reports": list_reports(self.reports_dir),
            "prune": self.prune_gate.offer.to_json()
            if self.prune_gate is not None and self.prune_gate.offer is not None
            else None,
        }

    # -- rules hot reload ----------------------------------------------------------------

    def check_rules(self) -> None:
        try:
            self.rules.check()
        except Exception:
            log.exception("rules check failed")

    def _rules_invalid(self, problems: list[RuleProblem], kept: RuleSet) -> None:
        self.pager.fire(
            rules_invalid(
                problems,
                rules_dir=str(self.rules.directory),
                now=self.clock.now(),
                kept=kept.names(),
            )
        )

    def _rules_valid(self, _rules: RuleSet) -> None:
        self.pager.resolve_all(AlertName.RULES_INVALID)

    # -- persistence ---------------------------------------------------------------------

    def _load_state(self) -> UpgradeState | None:
        try:
            return self._engine(None).load()
        except ClusterError as error:
            log.warning("cannot read the upgrade state", extra={"fields": {"error": str(error)}})
            return self.view.state

    def _load_memory(self) -> dict[str, Any] | None:
        try:
            return self.service_store.load()
        except ClusterError as error:
            log.warning("cannot read the service memory", extra={"fields": {"error": str(error)}})
            return None

    def _save_memory(self) -> None:
        self.service_store.save(self.memory.to_document())

    # -- shutdown ------------------------------------------------------------------------

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful stop: let the current action finish, persist, release the lease."""
        self._stopping.set()
        self._resume.set()
        self.interrupt.set()
        self.wait_idle(timeout)
        self._timeline.save()  # anything a failed write left in memory
        self.leadership.release()
        self.pager.close()
