"""Operator verbs (pause, resume, approve, abort, upgrade, rollback, approve-prune) and the
standby inbox.

Verbs arrive from HTTP threads; the service's own memory (paused, queued request) lives in
the state ConfigMap beside the engine's state, so a restart loses nothing.

Replicas: only the Lease holder acts. A standby that receives a verb does not refuse it: it
queues it in the state ConfigMap's ``inbox`` key (``inbox`` module) and answers "queued";
the leader, on each pass of its loop, applies the queued verbs in order through the same
methods the HTTP API calls, records in the timeline and the log what it did and for whom,
and removes exactly the entries it applied. A verb the leader refuses is dropped with its
reason; ``/api/status`` shows the verbs still waiting (``queued_requests``).

Who and why: every verb takes a ``Requester`` (the sender and reason the HTTP request
named). The verb's timeline note names them (``paused by alice: db migration``); an abort's
rollback reason, and so the rollback alerts' description, reads ``aborted by alice: …``;
the resolution of the held alert an approve or abort ends carries the annotations
``requested_by`` and ``reason``. The verb's timeline items carry the sender as
``requester`` (``Requester.to_json``: ``requested_by``, ``reason`` and, through an
authenticating proxy, ``authenticated_by`` and ``claimed_by``). A verb queued by a standby
keeps its whole requester through the inbox, so the leader records it exactly as a verb
sent to it directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from analyzer.core.alerts import AlertName
from analyzer.core.ports import ClusterError
from analyzer.core.upgrade import Note, OperatorDecisionError, abort, approve, held
from analyzer.core.upgrade.soak import SoakError, rollback_promoted
from analyzer.service.context import ServiceContext
from analyzer.service.control import (
    NOBODY,
    ControlAnswer,
    ControlRefusedError,
    QueuedForLeader,
    Requester,
    StandbyCannotQueueError,
    UpgradeRequestBody,
    abort_reason,
)
from analyzer.service.inbox import InboxError, QueuedRequest
from analyzer.service.worker import EngineWorker

log = logging.getLogger("canary_analyzer.service")


class OperatorVerbs:
    """The verbs the HTTP API calls, and the leader's application of queued ones."""

    #: Passes on which applying a queued verb failed unexpectedly before it is dropped.
    QUEUED_REQUEST_ATTEMPTS = 3

    def __init__(self, context: ServiceContext, worker: EngineWorker):
        self.context = context
        self.worker = worker
        self._applied: set[str] = set()  # applied, not yet removed (a write failed)
        self._failed: dict[str, int] = {}  # id → passes on which applying failed
        self.queued_upgrade_note: Note | None = None  # for the timeline the request starts
        self.queued_upgrade_requester: dict[str, str] = {}  # and who sent it

    def _queue_if_standby(
        self, verb: str, requester: Requester, body: dict[str, Any] | None = None
    ) -> QueuedForLeader | None:
        """On a standby: queue the verb for the leader and say so; None on the leader."""
        context = self.context
        leadership = context.leadership
        if leadership.leads(context.clock.now()):
            return None
        leader = leadership.holder
        via = leadership.identity or "a standby"
        try:
            request = context.inbox.queue(verb, context.clock.now(), via, body, requester.to_json())
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
            extra={
                "fields": {
                    "verb": verb,
                    "id": request.id,
                    "leader": leader,
                    "via": via,
                    **requester.to_json(),
                }
            },
        )
        with context.lock:
            context.view.queued_requests = [*context.view.queued_requests, request.to_json()]
        return QueuedForLeader(request_id=request.id, verb=verb, leader=leader)

    def _remember_paused(self, paused: bool) -> None:
        """Pause or resume in the service's memory (the state ConfigMap) and the metric."""
        context = self.context
        with context.lock:
            context.memory.paused = paused
            context.memory.paused_at = context.clock.now().isoformat() if paused else None
            context.save_memory()
        context.metrics.paused.set(1 if paused else 0)

    def _note(self, message: str, reason: str, requester: Requester) -> None:
        """The verb's timeline note (``paused by alice: db migration``) and log line."""
        log.warning(message, extra={"fields": requester.to_json()})
        self.context.timeline.record_note(
            Note(message=message, reason=reason), self.context.clock.now(), requester.to_json()
        )

    def _held_resolved(self, requester: Requester) -> None:
        """End the held alert; its resolution says who decided, and why."""
        self.context.pager.resolve_all(AlertName.HELD, annotations=requester.to_json())

    def pause(self, requester: Requester = NOBODY) -> ControlAnswer:
        if queued := self._queue_if_standby("pause", requester):
            return queued
        self._remember_paused(True)
        self.worker.resume.clear()
        self.context.interrupt.set()  # wake a waiting engine so it stops at the next boundary
        self._note(f"paused by {requester.text()}", "Paused", requester)
        return {"message": "paused: no new step starts until resume (a rollback still completes)",
                "paused": True}  # fmt: skip

    def resume(self, requester: Requester = NOBODY) -> ControlAnswer:
        if queued := self._queue_if_standby("resume", requester):
            return queued
        self._remember_paused(False)
        self.context.interrupt.clear()
        self.worker.resume.set()
        self._note(f"resumed by {requester.text()}", "Resumed", requester)
        return {"message": "resumed", "paused": False}

    def approve(self, requester: Requester = NOBODY) -> ControlAnswer:
        if queued := self._queue_if_standby("approve", requester):
            return queued
        state = self.worker.load_state()
        if state is None or not held(state):
            raise ControlRefusedError("nothing to approve: no upgrade is held")
        engine = self.worker.engine(state.plan.upgrade_id)
        try:
            state = engine.decide(
                lambda s, now: approve(
                    s, now, requester.text() if requester.actor else "an operator (API)"
                )
            )
        except OperatorDecisionError as error:
            raise ControlRefusedError(str(error)) from None
        self._held_resolved(requester)
        self.context.view.state = state
        return {"message": f"approved: upgrade {state.plan.upgrade_id} goes on in the window"}

    def approve_prune(self, requester: Requester = NOBODY) -> ControlAnswer:
        """Prune the soaked, unused old revision offered by CanaryAnalyzerPruneReady."""
        context = self.context
        if context.prune_path is None:
            raise ControlRefusedError("prune is off (setting upgrade.prune)")
        if queued := self._queue_if_standby("approve-prune", requester):
            return queued
        log.warning("prune approved", extra={"fields": requester.to_json()})
        done, message = context.prune_path.approve(context.clock.now(), requester)
        if not done:
            raise ControlRefusedError(message)
        return {"message": message}

    def rollback(self, requester: Requester = NOBODY) -> ControlAnswer:
        """Roll a promoted upgrade back during its soak: the tag back to the old revision
        (still installed) and every moved workload restarted onto it, by the engine's own
        rollback stage (``core.upgrade.soak.rollback_promoted``)."""
        if queued := self._queue_if_standby("rollback", requester):
            return queued
        return self._roll_back_promoted(requester)

    def rollback_automatic(self, reason: str) -> ControlAnswer:
        """The rollback ``upgrade.soak_auto_rollback`` starts on a soak regression."""
        return self._roll_back_promoted(
            Requester(actor="canary-analyzer (upgrade.soak_auto_rollback)", reason=reason))

    def _roll_back_promoted(self, requester: Requester) -> ControlAnswer:
        context, worker = self.context, self.worker
        if worker.running():
            raise ControlRefusedError("an upgrade is running: `canary-analyzer abort` rolls it back")
        state = worker.load_state()
        if state is None:
            raise ControlRefusedError("nothing to roll back: no upgrade is recorded")
        offer = context.prune_gate.offer if context.prune_gate is not None else None
        if offer is not None and offer.upgrade_id == state.plan.upgrade_id and (
                offer.state == "pruned"):
            raise ControlRefusedError(f"revision {offer.revision} was pruned: it cannot be "
                                      "rolled back to")
        try:
            installed = state.plan.from_revision in context.cluster.revisions()
        except ClusterError as error:
            raise ControlRefusedError(f"cannot check that revision {state.plan.from_revision} "
                                      f"is still installed: {error}") from None
        if not installed:
            raise ControlRefusedError(f"revision {state.plan.from_revision} is no longer "
                                      "installed: there is nothing to roll back to")
        engine = worker.engine(state.plan.upgrade_id)
        try:
            reason = requester.reason or "rollback requested through the API"
            who = requester.actor or "operator"
            engine.decide(lambda s, now: rollback_promoted(s, now, reason, who))
        except (SoakError, OperatorDecisionError) as error:
            raise ControlRefusedError(str(error)) from None
        self._note(f"rollback of promoted upgrade {state.plan.upgrade_id} requested by "
                   f"{requester.text()}", "RollbackRequested", requester)
        worker.start(None, "rolling back the promoted upgrade")
        return {"message": f"rolling back upgrade {state.plan.upgrade_id}: tag "
                f"{state.plan.tag} back to {state.plan.from_revision}, every moved workload "
                "restarted onto it"}

    def abort(self, requester: Requester = NOBODY) -> ControlAnswer:
        if queued := self._queue_if_standby("abort", requester):
            return queued
        context, worker = self.context, self.worker
        if worker.running():
            worker.abort_requester = requester
            worker.abort.set()
            worker.resume.set()
            context.interrupt.set()
            return {"message": "abort requested: rolling back what moved at the next step"}
        state = worker.load_state()
        if state is None or (state.finished and not held(state)):
            with context.lock:
                dropped = context.memory.request
                context.memory.request = None
                context.save_memory()
            if dropped:
                self._note(
                    f"queued upgrade to {dropped.get('to_revision')} dropped by {requester.text()}",
                    "RequestDropped",
                    requester,
                )
                return {"message": f"queued upgrade to {dropped.get('to_revision')} dropped"}
            raise ControlRefusedError("nothing to abort: no upgrade is running, held or queued")
        engine = worker.engine(state.plan.upgrade_id)
        try:
            engine.decide(lambda s, now: abort(s, now, *abort_reason(requester)))
        except OperatorDecisionError as error:
            raise ControlRefusedError(str(error)) from None
        self._held_resolved(requester)
        worker.start(None, "aborted by an operator: rolling back")
        return {"message": "aborted: rolling back what moved"}

    def request_upgrade(
        self, body: UpgradeRequestBody, requester: Requester = NOBODY
    ) -> ControlAnswer:
        if queued := self._queue_if_standby(
            "upgrade", requester, body.model_dump(exclude_none=True)
        ):
            return queued
        context = self.context
        state = self.worker.load_state()
        if state is not None and (not state.finished or held(state)):
            raise ControlRefusedError(
                f"upgrade {state.plan.upgrade_id} is not finished ({state.stage.value}); "
                "finish, approve or abort it first"
            )
        with context.lock:
            context.memory.request = body.model_dump(exclude_none=True)
            context.memory.refused = None
            context.save_memory()
        hours = context.hours.state(context.clock.now())
        when = (
            "now"
            if hours.open
            else f"when the window opens ({hours.opens_at.isoformat() if hours.opens_at else '?'})"
        )
        log.info(
            "upgrade requested",
            extra={"fields": {**context.memory.request, **requester.to_json()}},
        )
        context.view.message = (
            f"upgrade to {body.to_revision} requested by {requester.text()}; starts {when}"
        )
        return {
            "message": f"upgrade to {body.to_revision} queued; starts {when}",
            "request": context.memory.request,
        }

    # -- verbs queued by standbys (the loop, on the leader) --------------------------------

    def read_queued(self) -> None:
        """A standby's pass: show the verbs still waiting in ``/api/status``."""
        context = self.context
        try:
            waiting = context.inbox.pending()
        except InboxError as error:
            log.warning("cannot read the queued verbs", extra={"fields": {"error": str(error)}})
            return
        with context.lock:
            context.view.queued_requests = [request.to_json() for request in waiting]

    def apply_queued(self) -> bool:
        """The leader's pass: apply each verb standbys queued, oldest first, then remove
        exactly those. True when any was applied (the state or memory may have changed)."""
        context = self.context
        try:
            waiting = context.inbox.pending()
        except InboxError as error:
            log.warning(
                "cannot read the verbs standbys queued; trying again on the next pass",
                extra={"fields": {"error": str(error)}},
            )
            return False
        done: list[str] = []
        applied_any = False
        for request in waiting:
            if request.id in self._applied:
                done.append(request.id)  # applied on an earlier pass; its removal failed
                continue
            if not context.leadership.leads(context.clock.now()):
                break  # the next leader applies the rest
            if not self._apply(request):
                break  # keeps the order: the rest waits behind it
            applied_any = True
            self._applied.add(request.id)
            done.append(request.id)
        if done:
            try:
                context.inbox.remove(done)
            except InboxError as error:
                log.warning(
                    "applied queued verbs but could not remove them; removed on the next pass",
                    extra={"fields": {"ids": done, "error": str(error)}},
                )
            else:
                self._applied.difference_update(done)
        with context.lock:
            context.view.queued_requests = [r.to_json() for r in waiting if r.id not in done]
        return applied_any

    def _apply(self, request: QueuedRequest) -> bool:
        """Apply one queued verb through the HTTP API's own method; log and record in the
        timeline what happened. False when it should be tried again on the next pass."""
        requester = Requester.from_json(request.requester)
        verbs: dict[str, Callable[[], ControlAnswer]] = {
            "pause": lambda: self.pause(requester),
            "resume": lambda: self.resume(requester),
            "approve": lambda: self.approve(requester),
            "abort": lambda: self.abort(requester),
            "rollback": lambda: self.rollback(requester),
            "approve-prune": lambda: self.approve_prune(requester),
            "upgrade": lambda: self.request_upgrade(
                UpgradeRequestBody.model_validate(request.body or {}), requester
            ),
        }
        verb = verbs.get(request.verb)
        fields = {"id": request.id, "verb": request.verb, "via": request.via, "at": request.at,
                  **requester.to_json()}  # fmt: skip
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
            failures = self._failed.get(request.id, 0) + 1
            self._failed[request.id] = failures
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
        self._failed.pop(request.id, None)
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
        self.context.timeline.record_note(note, self.context.clock.now(), requester.to_json())
        if request.verb == "upgrade" and not refused:
            self.queued_upgrade_note = note  # the upgrade's own timeline starts with it
            self.queued_upgrade_requester = requester.to_json()
        return True
