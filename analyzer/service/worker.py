"""The engine worker: runs the upgrade engine in a thread and stops it at action boundaries.

The engine calls ``gate`` before every action: that is where pause blocks, where an abort,
closing maintenance hours, a lost lease or a shutdown stop it — always at an action
boundary, with the state already persisted, so the next run resumes exactly there. The
worker also observes the engine (timeline, metrics, the last verdicts for ``/api/status``)
and has the upgrade report written when a run ends.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from analyzer.core.alerts import AlertName
from analyzer.core.alerts.builders import data_source_errors
from analyzer.core.ports import ClusterError
from analyzer.core.upgrade import (
    Stage,
    UpgradePlan,
    UpgradeState,
    UpgradeSummary,
    abort,
    group_fits_window,
)
from analyzer.core.verdicts import VerdictAt
from analyzer.errors import CanaryAnalyzerError
from analyzer.service.context import ServiceContext
from analyzer.service.control import NOBODY, Requester, abort_reason
from analyzer.service.engine import UpgradeEngine
from analyzer.service.memory import Phase

if TYPE_CHECKING:
    from analyzer.service.analysis import AnalysisOutcome

log = logging.getLogger("canary_analyzer.service")


class StopRun(Exception):
    """Stops the engine at an action boundary; the state is saved and resumes later."""

    def __init__(self, reason: str, phase: Phase):
        super().__init__(reason)
        self.reason = reason
        self.phase = phase


class AbortRequested(Exception):
    """An operator asked to abort: the worker rolls back what moved."""


class EngineWorker:
    """One engine run at a time, in a thread; ``resume``/``abort``/``stopping`` steer it."""

    #: Consecutive failed attempts (cluster or Prometheus unreachable) before on-call is paged.
    FAILURES_BEFORE_PAGE = 3

    def __init__(self, context: ServiceContext):
        self.context = context
        setup = context.judging
        self.judging = setup.judging_for(lambda: setup.rules.rules, self.record_analysis)
        self.resume = threading.Event()
        self.resume.set()
        self.abort = threading.Event()
        self.abort_requester: Requester = NOBODY  # who asked for the abort, and why
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures: list[str] = []

    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, plan: UpgradePlan | None, message: str) -> None:
        """Run the engine: a new ``plan``, or (None) the recorded upgrade where it stopped."""
        self.context.interrupt.clear()
        self.abort.clear()
        self.context.set_phase(Phase.RUNNING, message)
        log.info(message)
        self._thread = threading.Thread(target=self._work, args=(plan,), name="engine", daemon=True)
        self._thread.start()

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait for the worker to stop (tests and shutdown); True when it did."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.running()

    def engine(self, upgrade_id: str | None) -> UpgradeEngine:
        context = self.context
        return UpgradeEngine(
            context.cluster,
            context.stores.engine,
            self.judging,
            context.clock,
            notifier=context.pager,
            observer=self._observe,
            link=context.reports.link(upgrade_id, context.settings.service.public_url),
        )

    def load_state(self) -> UpgradeState | None:
        """The recorded upgrade; what was last seen when the cluster does not answer."""
        try:
            return self.engine(None).load()
        except ClusterError as error:
            log.warning("cannot read the upgrade state", extra={"fields": {"error": str(error)}})
            return self.context.view.state

    def _work(self, plan: UpgradePlan | None) -> None:
        context = self.context
        recorded = self.load_state()
        upgrade_id = (
            plan.upgrade_id
            if plan is not None
            else (recorded.plan.upgrade_id if recorded else None)
        )
        engine = self.engine(upgrade_id)
        try:
            try:
                state = engine.run(plan, gate=self._gate)
            except AbortRequested:
                state = self._abort_now(engine)
            self._finished(state)
        except StopRun as stop:
            log.info("engine stopped", extra={"fields": {"reason": stop.reason}})
            context.set_phase(stop.phase, stop.reason)
        except CanaryAnalyzerError as error:
            self._failures.append(str(error))
            log.error("upgrade step failed; will retry", extra={"fields": {"error": str(error)}})
            context.set_phase(
                Phase.RUNNING, f"last attempt failed: {error}; retrying on the next tick"
            )
            if len(self._failures) >= self.FAILURES_BEFORE_PAGE:
                context.pager.fire(
                    data_source_errors(
                        errors=self._failures[-5:],
                        consecutive=len(self._failures),
                        now=context.clock.now(),
                        source="kubernetes/prometheus",
                    )
                )
        except Exception as error:
            log.exception("engine failed")
            context.view.worker_error = f"{type(error).__name__}: {error}"
            context.set_phase(Phase.FAILED, f"engine failed: {context.view.worker_error}")
        finally:
            self.write_report()

    def _abort_now(self, engine: UpgradeEngine) -> UpgradeState:
        self.context.set_phase(Phase.ROLLING_BACK, "aborted by an operator: rolling back")
        self.context.metrics.rollbacks.inc()
        reason, who = abort_reason(self.abort_requester)
        self.abort_requester = NOBODY
        engine.decide(lambda state, now: abort(state, now, reason, who))
        self.context.interrupt.clear()
        return engine.run(None, gate=self._gate)

    def _gate(self, state: UpgradeState) -> None:
        """Before each action: stop, abort, pause or hold for the maintenance hours."""
        context = self.context
        context.view.state = state
        if self._failures:  # the engine got this far again: the sources answer
            self._failures.clear()
            context.pager.resolve_all(AlertName.DATA_SOURCE_ERRORS)
        rolling_back = state.stage is Stage.ROLLBACK
        while True:
            if self.stopping.is_set():
                raise StopRun("shutting down; the upgrade resumes from the saved state", Phase.IDLE)
            now = context.clock.now()
            if not context.leadership.leads(now):
                raise StopRun("lost the lease; another replica continues", Phase.STANDBY)
            if self.abort.is_set() and not rolling_back:
                self.abort.clear()
                raise AbortRequested
            if rolling_back or self.resume.is_set():
                break
            context.set_phase(Phase.PAUSED, "paused by an operator; resume to go on")
            self.resume.wait(0.2)  # woken by resume, abort or stop; re-checked each pass
        if rolling_back:
            context.set_phase(Phase.ROLLING_BACK, f"rolling back: {state.rollback_reason}")
            return
        hours = context.hours.state(now)
        context.view.hours = hours
        if not hours.open or not group_fits_window(
            state, now, hours.closes_at, context.settings.upgrade.rollout_estimate
        ):
            raise StopRun(
                "the next wave could not finish before the maintenance window closes; "
                "it starts in the next window",
                Phase.WAITING_WINDOW,
            )
        context.set_phase(Phase.RUNNING, context.view.message)

    def _observe(self, state: UpgradeState, notes, pending) -> None:
        context = self.context
        context.view.state = state
        context.timeline.record(state, notes, pending)  # and writes it to the state ConfigMap
        if context.history is not None:  # each restart and verdict, once, for backtests
            context.history.observe(state)
        if any(note.reason == "RollingBack" for note in notes):
            context.metrics.rollbacks.inc()
        plan = state.plan
        context.metrics.namespaces_total.set(len(plan.namespaces))
        context.metrics.namespaces_done.set(
            sum(1 for r in state.namespaces if r.state == "promoted")
        )
        for note in notes:
            log.info(
                note.message, extra={"fields": {"reason": note.reason, "namespace": note.namespace}}
            )

    def record_analysis(self, outcome: AnalysisOutcome) -> None:
        """Each analysis the judging makes: metrics, and the last verdicts for status."""
        context = self.context
        now = context.clock.now()
        context.metrics.record_verdicts(outcome.verdicts, now.timestamp())
        with context.lock:
            for verdict in outcome.verdicts.values():
                context.view.last_verdicts.insert(0, VerdictAt(verdict, now))
            del context.view.last_verdicts[20:]

    def _finished(self, state: UpgradeState) -> None:
        self.context.view.state = state
        self.write_report()  # before the phase says "done": the report is there when it does
        phase = {"promoted": Phase.DONE, "rolled_back": Phase.DONE, "failed": Phase.FAILED,
                 "held": Phase.HELD}  # fmt: skip
        outcome = state.outcome.value if state.outcome else "done"
        self.context.set_phase(
            phase.get(outcome, Phase.DONE), f"upgrade {state.plan.upgrade_id} ended: {outcome}"
        )

    def write_report(self) -> None:
        """The upgrade's report, through the writer the command wired in (if any)."""
        context = self.context
        state = context.view.state
        reports = context.reports
        if state is None or reports.write is None:
            return
        try:
            reports.write(
                reports.directory / reports.name(state.plan.upgrade_id),
                UpgradeSummary.of(state),
                context.timeline.items,
            )
        except Exception:  # a report must never break the upgrade
            log.exception("could not write the upgrade report")
