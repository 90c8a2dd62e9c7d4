"""The service loop: one pass (``tick``, every few seconds under apscheduler) decides whether
this replica may act (Lease), whether the maintenance hours are open, whether an upgrade is
pending (requested through the API, declared in settings, or detected), and starts or
resumes the engine worker.

The upgrade's timeline (``timeline`` module) is written whenever the engine adds items,
loaded at start, on becoming leader and by a standby on each pass, so ``/api/status`` and
the report tell the whole upgrade after a restart or a leader change.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from analyzer.core.ports import ClusterError
from analyzer.core.upgrade import Stage, UpgradeState, UpgradeStyle, held
from analyzer.service.context import ServiceContext
from analyzer.service.memory import Phase
from analyzer.service.night_plan import NightOutlook, plan_night
from analyzer.service.preflight import (
    PreflightError,
    UpgradeRequest,
    parse_gateway,
    preflight,
)
from analyzer.service.verbs import OperatorVerbs
from analyzer.service.worker import EngineWorker

log = logging.getLogger("canary_analyzer.service")

#: why a promoted upgrade's prune is withheld (``prune.detail`` in ``/api/status``)
WITHHELD = ("a soak look found a regression: no prune for this upgrade; "
            "`canary-analyzer rollback` is offered instead")


def revision_key(revision: str) -> tuple:
    """``1-15-4`` → (1, 15, 4): revision names compare as versions."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"[-.]", revision))


class ServiceLoop:
    """One pass of the loop at a time (apscheduler runs it with ``max_instances=1``)."""

    def __init__(self, context: ServiceContext, worker: EngineWorker, verbs: OperatorVerbs):
        self.context = context
        self.worker = worker
        self.verbs = verbs
        self._leading = False  # as of the last pass: a change to True reloads the timeline

    def tick(self) -> None:
        """One pass of the service loop. Never raises (the scheduler keeps calling it)."""
        try:
            self._tick()
        except Exception as error:  # the loop must survive anything and say so
            log.exception("service loop failed")
            self.context.view.message = f"service loop error: {type(error).__name__}: {error}"

    def _tick(self) -> None:
        context, worker, view = self.context, self.worker, self.context.view
        now = context.clock.now()
        context.metrics.heartbeat.set(now.timestamp())
        leading = context.leadership.tick(now)
        became_leader, self._leading = leading and not self._leading, leading
        context.metrics.leader.set(1 if leading else 0)
        context.metrics.paused.set(1 if context.memory.paused else 0)
        view.hours = context.hours.state(now)
        if context.shadow is not None:  # judge-only: no verbs, no engine (service.shadow)
            context.shadow.tick(now, leading)
            return
        if worker.running():
            if leading:
                self.verbs.apply_queued()  # pause and abort act on the running engine
                context.timeline.save()  # only if a write failed: the worker writes new items
            return
        state = worker.load_state()
        view.state = state
        upgrade_id = state.plan.upgrade_id if state is not None else None
        if not leading or became_leader:
            context.timeline.load(upgrade_id)  # the leader's; a new leader goes on with it
            context.reload_memory()  # paused, requests, soak and prune as the leader left them
            if context.soak_watch is not None:  # the soak as the leader left it
                context.soak_watch.recall(context.memory.soak)
            if context.prune_path is not None:  # a new leader takes over the ready alert
                context.prune_path.recall(context.memory.prune, take_over=leading)
        else:
            context.timeline.save()  # writes nothing unless a write failed earlier
        if not leading:
            self.verbs.read_queued()
            holder = context.leadership.holder or "another replica"
            context.set_phase(Phase.STANDBY, f"standby: {holder} leads")
            return
        if self.verbs.apply_queued():
            if worker.running():  # an abort started the rollback
                return
            state = worker.load_state()  # an approve or abort changed it
            view.state = state
        if state is not None and not state.finished:
            self._resume(state)
            return
        if state is not None and held(state):
            context.set_phase(Phase.HELD, "held: approve or abort")
            return
        body, request = self._pending_request(state)
        if request is None and context.soak_watch is not None:
            context.soak_watch.tick(state, context.clock.now())  # soaking: the due look
            if worker.running():  # a regression started the automatic rollback
                return
        soak = context.soak_watch
        if request is None and context.prune_path is not None:
            if soak is not None and soak.blocks_prune(state):  # a soak regression: never offered
                context.prune_path.withhold(state, WITHHELD)
            context.prune_path.tick(state, context.clock.now())  # soaked: offer the prune
        if request is None:
            context.set_phase(
                Phase.DONE if state is not None else Phase.IDLE,
                view.message if state else "no upgrade pending",
            )
            return
        if context.memory.paused:
            context.set_phase(Phase.PAUSED, "paused by an operator; an upgrade is pending")
            return
        if not view.hours.open:
            opens = view.hours.opens_at.isoformat() if view.hours.opens_at else "?"
            context.set_phase(
                Phase.WAITING_WINDOW,
                f"upgrade to {request.to_revision} pending; window opens {opens}",
            )
            return
        self._start_new(body, request)

    def _resume(self, state: UpgradeState) -> None:
        """A recorded upgrade that has not finished: go on with it when it may."""
        context = self.context
        if state.stage is Stage.ROLLBACK:
            self.worker.start(None, "resuming the rollback")  # never waits for the hours
        elif context.memory.paused:
            context.set_phase(Phase.PAUSED, "paused by an operator; resume to go on")
        elif not context.view.hours.open:
            context.set_phase(
                Phase.WAITING_WINDOW,
                f"upgrade waits for the window ({context.hours.describe()})",
            )
        else:
            self.worker.start(None, "resuming the recorded upgrade")

    # -- what to upgrade -----------------------------------------------------------------

    def _pending_request(
        self, last: UpgradeState | None
    ) -> tuple[dict[str, Any] | None, UpgradeRequest | None]:
        """The API request if queued, else the declared one, else a detected one (opt-in).
        An upgrade that already ended (rolled back, failed) is not retried on its own."""
        memory, settings = self.context.memory, self.context.settings
        body = memory.request
        upgrade = settings.upgrade
        if body is None and settings.service.to_revision:
            body = {"to_revision": settings.service.to_revision,
                    "from_revision": settings.service.from_revision}  # fmt: skip
        if body is None and settings.service.detect_upgrades:
            body = self._detected()
        if body is None:
            return None, None
        queued = body is memory.request
        if not queued and memory.refused and memory.refused.get("request") == body:
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
        cluster = self.context.cluster
        try:
            tag = cluster.tags().get(self.context.settings.upgrade.tag)
            revisions = cluster.revisions()
        except ClusterError as error:
            log.warning("cannot look for new revisions", extra={"fields": {"error": str(error)}})
            return None
        if tag is None:
            return None
        newer = [
            r.name
            for r in revisions.values()
            if r.ready and r.injector and revision_key(r.name) > revision_key(tag.revision)
        ]
        if not newer:
            return None
        return {"to_revision": max(newer, key=revision_key), "from_revision": tag.revision}

    def _start_new(self, body: dict[str, Any], request: UpgradeRequest) -> None:
        context = self.context
        memory, clock = context.memory, context.clock
        try:
            checked = preflight(context.cluster, request)
        except PreflightError as error:
            log.error(
                "upgrade request refused by preflight",
                extra={"fields": {"problems": list(error.problems)}},
            )
            with context.lock:  # the refused body itself: a declared one is not retried
                memory.refused = {"request": body, "problems": list(error.problems)}
                if memory.request == body:  # a newer request made meanwhile waits its turn
                    memory.request = None
                context.save_memory()
            context.set_phase(
                Phase.IDLE, f"upgrade to {request.to_revision} refused: {'; '.join(error.problems)}"
            )
            return
        if checked.reach is not None:  # what the tag reaches, as preflight worked it out
            log.info("\n".join(checked.reach.lines()))
        for warning in checked.warnings:
            log.warning(warning)
        setup = context.judging
        outlook = NightOutlook()
        if setup.outlook is not None:  # as ``upgrade`` does: thin evidence and the forecast
            outlook = setup.outlook(setup.rules.rules, checked.namespaces, clock.now())
        for warning in outlook.warnings:
            log.warning(warning)
        night = plan_night(request, checked, context.settings, clock.now(), outlook)
        plan = night.plan
        for each in plan.forecast:
            log.info("forecast: %s", each.describe())
        with context.lock:
            if memory.request == body:  # from here on the engine's state carries it; a
                memory.request = None  # newer request made while this was planned waits
            memory.refused = None
            context.save_memory()
        context.timeline.reset(plan.upgrade_id)  # a new upgrade, a new timeline
        if self.verbs.queued_upgrade_note is not None:  # it came through a standby: say so
            context.timeline.record_note(self.verbs.queued_upgrade_note, clock.now(),
                                         self.verbs.queued_upgrade_requester)
            self.verbs.queued_upgrade_note = None
        for note in night.notes():  # on-call reads in the report what judges a quiet one
            context.timeline.record_note(note, clock.now())
        self.worker.start(plan, f"starting upgrade {plan.upgrade_id}")
