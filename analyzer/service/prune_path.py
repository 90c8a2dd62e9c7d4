"""The soak and the prune as on-call follows them: the timeline, the report, the revisions
in ``/api/status``, and an approval given in someone's name.

Why it exists: ``PruneGate`` (``soak.py``) decides when the prune is offered and applies
it, but kept what it knew to itself: nothing in the timeline or the report said that the
upgrade was soaking, until when, that the prune was offered, who approved it, what was
deleted, or why an approval was refused. ``PrunePath`` wraps the gate for the loop and the
verbs and records each step once as a timeline note (reasons ``SoakStarted``,
``SoakEnded``, ``PruneBlocked``, ``PruneHelmOwned``, ``PruneOffered``, ``PruneApproved``,
``PruneDeleted``, ``Pruned``, ``PruneRefused``, ``PruneFailed``), then has the upgrade's report written
again so it tells the same story.

``SeenRevisions`` is the gate's revisions source, remembering the inventory last read
through it (the same one ``canary-analyzer revisions`` prints): the gate's own reads after
the soak, and a read at most every ``refresh`` while soaking. ``/api/status`` shows it
under ``revisions`` without a cluster-wide list per request.

A note is recorded only if the timeline does not hold the same one already (``Pruned``:
any), so a restarted service or a new leader does not tell the same step twice.

What the gate knows is kept: every change of the offer (``PruneGate.document``) goes to
``remember`` (the service memory in the state ConfigMap, beside the soak's findings), and
``recall`` takes it back — on a standby's every pass (its ``/api/status`` shows the
leader's ``prune``) and on becoming leader (the ready alert is taken over, not fired again).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from analyzer.core.ports import ClusterError
from analyzer.core.revisions import RevisionInputs, RevisionUse, inventory, use_json
from analyzer.core.upgrade import Note, UpgradeState
from analyzer.service.control import NOBODY, Requester
from analyzer.service.soak import PruneGate, PruneOffer, RevisionsPort
from analyzer.service.timeline import KeptTimeline

log = logging.getLogger("canary_analyzer.soak")

#: How often the inventory is read while the upgrade soaks (the gate reads it itself after).
INVENTORY_REFRESH = timedelta(minutes=1)


class _Remembering:
    """A ``RevisionsPort`` that hands every inventory it reads to ``SeenRevisions``."""

    def __init__(self, inner: RevisionsPort, seen: SeenRevisions) -> None:
        self._inner = inner
        self._seen = seen

    def inputs(self) -> RevisionInputs:
        read = self._inner.inputs()
        self._seen.remember(read)
        return read

    def revision_objects(self, revision: str):  # type: ignore[no-untyped-def]
        return self._inner.revision_objects(revision)

    def delete(self, obj):  # type: ignore[no-untyped-def]
        return self._inner.delete(obj)


class SeenRevisions:
    """The gate's revisions source (call it for a port), keeping the last inventory read."""

    def __init__(self, factory: Callable[[], RevisionsPort], now: Callable[[], datetime],
                 refresh: timedelta = INVENTORY_REFRESH) -> None:
        self._factory = factory
        self._now = now
        self.refresh_every = refresh
        self._lock = threading.Lock()
        self.report: dict[str, RevisionUse] | None = None
        self.read_at: datetime | None = None

    def __call__(self) -> RevisionsPort:
        return _Remembering(self._factory(), self)

    def remember(self, inputs: RevisionInputs) -> None:
        report = inventory(inputs)
        with self._lock:
            self.report, self.read_at = report, self._now()

    def refresh(self, now: datetime, force: bool = False) -> None:
        """Read the inventory again if the last read is older than ``refresh_every`` (or
        ``force``). Never raises: the status keeps the last inventory read."""
        with self._lock:
            due = force or self.read_at is None or now - self.read_at >= self.refresh_every
        if not due:
            return
        try:
            self().inputs()
        except ClusterError as error:
            log.warning("cannot read the revisions", extra={"fields": {"error": str(error)}})
        except Exception:
            log.exception("cannot read the revisions")

    def to_json(self) -> dict[str, Any] | None:
        """``{"read_at", "revisions": [...]}`` (each as ``revisions -o json``), or None."""
        with self._lock:
            if self.report is None or self.read_at is None:
                return None
            return {"read_at": self.read_at.isoformat(),
                    "revisions": [use_json(use) for use in self.report.values()]}


class ReportRefresh:
    """Writes the upgrade's report again off the caller's thread: rendering takes a while,
    and the loop that calls ``PrunePath.tick`` also renews the Lease. Requests that arrive
    while a write runs are folded into one more write after it."""

    def __init__(self, write: Callable[[], None]) -> None:
        self._write = write
        self._lock = threading.Lock()
        self._wanted = False
        self._running = False
        self.idle = threading.Event()
        self.idle.set()

    def __call__(self) -> None:
        with self._lock:
            self._wanted = True
            if self._running:
                return
            self._running = True
            self.idle.clear()
        threading.Thread(target=self._run, name="prune-report", daemon=True).start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if not self._wanted:
                    self._running = False
                    self.idle.set()
                    return
                self._wanted = False
            try:
                self._write()
            except Exception:  # a report must never break the service
                log.exception("could not write the upgrade report")


class PrunePath:
    """The gate as the loop and the verbs use it, telling the timeline and the report."""

    def __init__(self, gate: PruneGate, timeline: KeptTimeline,
                 write_report: Callable[[], None] = lambda: None,
                 seen: SeenRevisions | None = None,
                 remember: Callable[[dict[str, Any] | None], bool] = lambda _doc: True) -> None:
        """``write_report`` is called on a thread of its own (``ReportRefresh``);
        ``remember(document)`` keeps the gate's ``document()``, True once kept."""
        self.gate = gate
        self.timeline = timeline
        self.write_report = ReportRefresh(write_report)
        self.seen = seen
        self._remember = remember
        self._kept: dict[str, Any] | None = gate.document()

    # -- what is kept -----------------------------------------------------------------------

    def recall(self, document: dict[str, Any] | None, take_over: bool = False) -> None:
        """Take the offer as kept in the service memory (``PruneGate.recall``)."""
        self.gate.recall(document, take_over)
        if document:
            self._kept = self.gate.document()

    def _keep(self) -> None:
        """Remember the gate's document if it changed since last kept (or a write failed)."""
        document = self.gate.document()
        if document != self._kept and self._remember(document):
            self._kept = document

    def withhold(self, state: UpgradeState | None, detail: str) -> None:
        """A soak regression: the prune is never offered for this upgrade (kept)."""
        self.gate.withhold(state, detail)
        self._keep()

    # -- the loop ---------------------------------------------------------------------------

    def tick(self, state: UpgradeState | None, now: datetime) -> None:
        """A pass of the loop with no upgrade running: the gate decides, the steps it took
        are recorded."""
        try:
            self.gate.tick(state, now)
        finally:
            self._keep()
        offer = self.gate.offer
        if offer is None or state is None or offer.upgrade_id != state.plan.upgrade_id:
            return
        if self.seen is not None and (offer.state == "soaking" or self.seen.read_at is None):
            self.seen.refresh(now)  # while soaking; and once on a new leader, for the status
        if self._record_offer(offer, state, now):
            self.write_report()

    def _record_offer(self, offer: PruneOffer, state: UpgradeState, now: datetime) -> bool:
        revision, ends = offer.revision, offer.soak_ends.isoformat()
        recorded = self._record(
            "SoakStarted",
            f"soak started: revision {revision} stays installed until at least {ends} "
            f"(upgrade.soak), then the prune is offered if nothing uses it",
            state.updated_at)
        if offer.state in ("soaking", "withheld"):  # withheld: the soak's own notes tell it
            return recorded
        recorded |= self._record("SoakEnded", f"soak of upgrade {offer.upgrade_id} ended at "
                                 f"{ends}", offer.soak_ends)
        if offer.state == "in-use":
            recorded |= self._record(
                "PruneBlocked", f"prune of {revision} not offered, still in use: {offer.detail}",
                now, warning=True)
        elif offer.state == "helm":
            recorded |= self._record("PruneHelmOwned", offer.detail, now, warning=True)
        elif offer.state == "ready":
            recorded |= self._record(
                "PruneOffered", f"nothing uses revision {revision}: prune offered "
                "(CanaryAnalyzerPruneReady); approve with POST /api/approve-prune or "
                "`canary-analyzer approve-prune`", now)
        elif offer.state == "pruned":  # found gone: told once, unless the approval told it
            recorded |= self._record("Pruned", f"revision {revision}: {offer.detail}", now,
                                     any_message=True)
        return recorded

    def _record(self, reason: str, message: str, at: datetime, warning: bool = False,
                any_message: bool = False) -> bool:
        """Append the note unless the timeline holds it already (``any_message``: a note of
        that reason, whatever it says); True when appended."""
        if any(item.get("reason") == reason and (any_message or item.get("message") == message)
               for item in self.timeline.items):
            return False
        self.timeline.record_note(Note(message=message, reason=reason, warning=warning), at)
        return True

    # -- the verb ---------------------------------------------------------------------------

    def approve(self, now: datetime, requester: Requester = NOBODY) -> tuple[bool, str]:
        """Approve the prune in ``requester``'s name: (done, message). Each step is recorded
        as it happens: the approval as the first object goes, each object deleted, then the
        end (or the refusal, or the failure midway: the offer then stands)."""
        offer = self.gate.offer
        revision = offer.revision if offer is not None else "?"
        approved = f"prune of {revision} approved by {requester.text()}"
        who = requester.to_json()
        deleted: list[str] = []

        def say(line: str) -> None:
            if not deleted:
                self._record_anyway("PruneApproved", approved, now, requester=who)
            deleted.append(line)
            self._record_anyway("PruneDeleted", line, now)

        try:
            done, message = self.gate.approve(say=say)
        except Exception as error:  # the cluster failed midway: the offer stands
            self._keep()
            self._record_anyway(
                "PruneFailed", f"{approved} failed after {len(deleted)} deletions: "
                f"{type(error).__name__}: {error}; the offer stands, approve again", now,
                warning=True, requester=who)
            self.write_report()
            raise
        self._keep()
        if done:
            if not deleted:  # nothing was left to delete
                self._record_anyway("PruneApproved", approved, now, requester=who)
            self._record_anyway("Pruned", message, now)
            if self.seen is not None:
                self.seen.refresh(now, force=True)  # the status shows the revision gone
        else:
            self._record_anyway("PruneRefused", f"prune approval by {requester.text()} "
                                f"refused: {message}", now, warning=True, requester=who)
        self.write_report()
        return done, message

    def _record_anyway(self, reason: str, message: str, at: datetime, warning: bool = False,
                       requester: dict[str, str] | None = None) -> None:
        self.timeline.record_note(Note(message=message, reason=reason, warning=warning), at,
                                  requester)

    # -- status -----------------------------------------------------------------------------

    def offer_json(self) -> dict[str, Any] | None:
        """The offer as ``/api/status`` shows it under ``prune``; adds ``blockers`` (each
        use named) when in use."""
        offer = self.gate.offer
        if offer is None:
            return None
        found = offer.to_json()
        if offer.state == "in-use":
            found["blockers"] = [line for line in offer.detail.split("; ") if line]
        return found

    def revisions_json(self) -> dict[str, Any] | None:
        return self.seen.to_json() if self.seen is not None else None
