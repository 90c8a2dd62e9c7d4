"""The long-running service: runs upgrades unattended inside maintenance hours.

``UpgradeService`` is the one object the command builds and the HTTP API talks to; its
work is spread over modules by concern:

- ``loop``: one pass of the loop (leadership, maintenance hours, what to upgrade, starting
  or resuming the engine);
- ``worker``: the engine in a thread, stopped at action boundaries (pause, abort, closing
  hours, a lost lease, shutdown), its observer and the report when a run ends;
- ``verbs``: the operator verbs from HTTP threads, and the standby inbox;
- ``status``: the ``/api/status`` document and readiness;
- ``context``: the collaborators (grouped: ``ServiceStores``, ``JudgingSetup``,
  ``ReportShelf``) and the state the parts share (``memory``).

The command wires in what belongs to other layers — the HTML report writer and the report
listing (``ReportShelf``), the judging over Prometheus (``JudgingSetup``) — so the service
imports nothing of the presentation layer.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from analyzer.core.alerts import AlertName
from analyzer.core.alerts.builders import rules_invalid
from analyzer.core.ports import MeshCluster, StateStore
from analyzer.core.rules import RuleProblem, RuleSet
from analyzer.core.shadow import WorkloadTemplates
from analyzer.service.alerting import AlertDispatcher
from analyzer.service.clock import Clock
from analyzer.service.context import JudgingSetup, ReportShelf, ServiceContext, ServiceStores
from analyzer.service.control import (
    NOBODY,
    ControlAnswer,
    ControlRefusedError,
    Requester,
    UpgradeRequestBody,
)
from analyzer.service.history import RestartHistory
from analyzer.service.leadership import Leadership
from analyzer.service.loop import ServiceLoop
from analyzer.service.maintenance import MaintenanceHours
from analyzer.service.memory import Phase, ServiceMemory, ServiceView
from analyzer.service.prune_path import PrunePath, SeenRevisions
from analyzer.service.self_metrics import SelfMetrics
from analyzer.service.shadow import ShadowWatch
from analyzer.service.soak import PruneGate
from analyzer.service.soak_judge import SoakWatch
from analyzer.service.status import readiness, status_document
from analyzer.service.verbs import OperatorVerbs
from analyzer.service.worker import EngineWorker
from analyzer.settings import Settings

__all__ = [
    "JudgingSetup",
    "Leadership",
    "Phase",
    "ReportShelf",
    "ServiceMemory",
    "ServiceStores",
    "ServiceView",
    "UpgradeService",
]

log = logging.getLogger("canary_analyzer.service")


class UpgradeService:
    """Coordinates maintenance hours, leadership, requests, operator verbs and the engine."""

    def __init__(
        self,
        *,
        settings: Settings,
        cluster: MeshCluster,
        stores: ServiceStores,
        judging: JudgingSetup,
        hours: MaintenanceHours,
        clock: Clock,
        interrupt: threading.Event,
        pager: AlertDispatcher,
        metrics: SelfMetrics,
        leadership: Leadership | None = None,
        reports: ReportShelf | None = None,
        prune_gate: PruneGate | None = None,
        soak_watch: SoakWatch | None = None,
        revisions: SeenRevisions | None = None,
        history: RestartHistory | None = None,
        workload_templates: WorkloadTemplates | None = None,
    ):
        """``reports`` without a writer (or none: the settings' directory) writes no
        report; ``leadership`` without an elector (or none) always leads."""
        self.context = ServiceContext(
            settings=settings,
            cluster=cluster,
            stores=stores,
            judging=judging,
            reports=reports or ReportShelf(settings.service.reports_dir),
            hours=hours,
            leadership=leadership or Leadership(),
            clock=clock,
            interrupt=interrupt,
            pager=pager,
            metrics=metrics,
            prune_gate=prune_gate,
            soak_watch=soak_watch,
            history=history,
        )
        self.worker = EngineWorker(self.context)
        if settings.service.mode == "shadow":  # judge-only: the loop never starts the engine
            if workload_templates is None:
                raise ValueError("shadow mode needs a source of workload templates")
            self.context.shadow = ShadowWatch(
                self.context, self.worker.judging, workload_templates, history
            )
        self.verbs = OperatorVerbs(self.context, self.worker)
        self.loop = ServiceLoop(self.context, self.worker, self.verbs)
        if soak_watch is not None:
            soak_watch.attach(self.context, self.verbs.rollback_automatic)
        if prune_gate is not None:  # ``revisions``: the gate's source, for ``/api/status``
            self.context.prune_path = PrunePath(
                prune_gate, self.context.timeline, self.worker.write_report, revisions,
                self._remember_prune,
            )
            self.context.prune_path.recall(self.memory.prune)  # as kept before a restart
        if self.memory.paused:
            self.worker.resume.clear()
        judging.rules.on_invalid = self._rules_invalid
        judging.rules.on_valid = self._rules_valid

    # -- what tests, the command and the status page read ----------------------------------

    @property
    def view(self) -> ServiceView:
        return self.context.view

    @property
    def memory(self) -> ServiceMemory:
        return self.context.memory

    @property
    def metrics(self) -> SelfMetrics:
        return self.context.metrics

    @property
    def service_store(self) -> StateStore:
        return self.context.stores.service

    @property
    def reports_dir(self) -> Path:
        return self.context.reports.directory

    def _remember_prune(self, document: dict[str, Any] | None) -> bool:
        """Keep the prune offer in the service memory (the state ConfigMap); True once
        written (a failed write is tried again on the next pass)."""
        context = self.context
        with context.lock:
            context.memory.prune = document
            try:
                context.save_memory()
            except Exception as error:
                log.warning("could not remember the prune offer", extra={"fields": {
                    "error": str(error)}})  # fmt: skip
                return False
        return True

    # -- the loop's jobs (apscheduler) -------------------------------------------------------

    def tick(self) -> None:
        """One pass of the service loop. Never raises (the scheduler keeps calling it)."""
        self.loop.tick()

    def tick_alerts(self) -> None:
        """Re-send firing alerts and beat the heartbeat (its own job: a slow sink must not
        delay the loop)."""
        try:
            self.context.pager.tick(healthy=self.view.worker_error is None)
        except Exception:
            log.exception("alert delivery round failed")

    def check_rules(self) -> None:
        try:
            self.context.judging.rules.check()
        except Exception:
            log.exception("rules check failed")

    def _rules_invalid(self, problems: list[RuleProblem], kept: RuleSet) -> None:
        context = self.context
        context.pager.fire(
            rules_invalid(
                problems,
                rules_dir=str(context.judging.rules.directory),
                now=context.clock.now(),
                kept=kept.names(),
            )
        )

    def _rules_valid(self, _rules: RuleSet) -> None:
        self.context.pager.resolve_all(AlertName.RULES_INVALID)

    # -- the engine worker -----------------------------------------------------------------

    def worker_running(self) -> bool:
        return self.worker.running()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait for the worker to stop (tests and shutdown); True when it did."""
        return self.worker.wait_idle(timeout)

    # -- operator verbs (HTTP threads) -------------------------------------------------------

    def pause(self, requester: Requester = NOBODY) -> ControlAnswer:
        self._acting("pause")
        return self.verbs.pause(requester)

    def resume(self, requester: Requester = NOBODY) -> ControlAnswer:
        self._acting("resume")
        return self.verbs.resume(requester)

    def approve(self, requester: Requester = NOBODY) -> ControlAnswer:
        self._acting("approve")
        return self.verbs.approve(requester)

    def abort(self, requester: Requester = NOBODY) -> ControlAnswer:
        self._acting("abort")
        return self.verbs.abort(requester)

    def approve_prune(self, requester: Requester = NOBODY) -> ControlAnswer:
        self._acting("approve-prune")
        return self.verbs.approve_prune(requester)

    def rollback(self, requester: Requester = NOBODY) -> ControlAnswer:
        self._acting("rollback")
        return self.verbs.rollback(requester)

    def request_upgrade(
        self, body: UpgradeRequestBody, requester: Requester = NOBODY
    ) -> ControlAnswer:
        self._acting("upgrade")
        return self.verbs.request_upgrade(body, requester)

    def _acting(self, verb: str) -> None:
        """Shadow mode acts on nothing: every verb is refused (HTTP 409), in words."""
        if self.context.shadow is not None:
            raise ControlRefusedError(
                f"{verb} refused: the service runs in shadow mode (service.mode: shadow); it "
                "judges restarts and acts on nothing. Run it with service.mode: act to upgrade"
            )

    # -- status ------------------------------------------------------------------------------

    def readiness(self) -> tuple[bool, str]:
        return readiness(self.context)

    def status(self) -> dict[str, Any]:
        return status_document(self.context)

    # -- shutdown ----------------------------------------------------------------------------

    def stop(self, timeout: float = 30.0) -> None:
        """Graceful stop: let the current action finish, persist, release the lease."""
        self.worker.stopping.set()
        self.worker.resume.set()
        self.context.interrupt.set()
        self.wait_idle(timeout)
        self.context.timeline.save()  # anything a failed write left in memory
        self.context.leadership.release()
        self.context.pager.close()
