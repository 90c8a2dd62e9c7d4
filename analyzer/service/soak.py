"""After a promotion: wait out the soak, then ask once for approval to prune the old revision.

Why it exists: the product stopped at "promoted" and left ``istioctl uninstall --revision
<old>`` to a person who had to judge when it was safe (docs/operator.md, "After the
upgrade"). With ``upgrade.prune`` on, the service waits ``upgrade.soak`` after the promotion
(the old revision stays installed: a rollback is still one tag move away), then reads what
still uses the old revision, cluster-wide (analyzer/core/revisions.py). When nothing does,
it fires ``CanaryAnalyzerPruneReady`` with the in-use report and waits; ``POST
/api/approve-prune`` checks use again right before and deletes the revision's control plane
as ``canary-analyzer prune`` does. A Helm-owned revision is never deleted: the alert and the
refusal name the release to ``helm uninstall``.

Judging the promoted namespaces during the soak, the regression page and the rollback it
offers live in ``service/soak_judge.py``; a regression there keeps this gate from offering
the prune (the loop asks ``SoakWatch.blocks_prune`` first).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from analyzer.core.alerts import Alert, AlertName, Severity
from analyzer.core.revisions import (
    ControlPlaneObject,
    PrunePlan,
    RevisionInputs,
    RevisionUse,
    inventory,
    plan_prune,
)
from analyzer.core.upgrade import Outcome, UpgradeState

log = logging.getLogger("canary_analyzer.soak")


class RevisionsPort(Protocol):
    """What the prune needs of the cluster (``adapters.istio_revisions.IstioRevisions``)."""

    def inputs(self) -> RevisionInputs: ...

    def revision_objects(self, revision: str) -> list[ControlPlaneObject]: ...

    def delete(self, obj: ControlPlaneObject) -> bool: ...


class NotInstalledError(ValueError):
    """The revision has nothing installed: there is nothing to prune."""


def plan_for(revisions: RevisionsPort, revision: str) -> PrunePlan:
    """The prune of ``revision`` as the cluster is now."""
    report = inventory(revisions.inputs())
    use = report.get(revision) or RevisionUse(revision)
    return plan_prune(revision, use, revisions.revision_objects(revision))


def run_prune(revisions: RevisionsPort, revision: str, dry_run: bool,
              say: Callable[[str], None]) -> tuple[PrunePlan, list[str] | None]:
    """Plan the prune; unless ``dry_run`` or refused, check use again right before and
    delete, webhooks first. The plan that decided, and what was deleted (None: nothing
    attempted). ``NotInstalledError`` when the revision has nothing installed."""
    plan = plan_for(revisions, revision)
    if not plan.use.installed and not plan.delete and not plan.helm_releases:
        raise NotInstalledError(f"revision {revision} is not installed (see "
                                "`canary-analyzer revisions`)")
    if not plan.may_proceed or dry_run:
        return plan, None
    plan = plan_for(revisions, revision)
    if not plan.may_proceed:
        return plan, None
    deleted = []
    for obj in plan.delete:
        gone = revisions.delete(obj)
        deleted.append(obj.describe())
        say(f"deleted {obj.describe()}" + ("" if gone else " (already gone)"))
    return plan, deleted


def prune_ready_alert(plan: PrunePlan, upgrade_id: str, now: datetime,
                      link: str | None = None) -> Alert:
    """WARNING: the soak ended, nothing uses the old revision; a person approves the prune."""
    use = plan.use
    objects = "\n".join(f"- {obj.describe()}" for obj in plan.delete) or "- none"
    completed = f"{len(use.completed)} completed and {len(use.failed)} failed pods"
    return Alert(
        name=AlertName.PRUNE_READY,
        severity=Severity.WARNING,
        summary=f"Revision {plan.revision} is unused after the soak: approve its removal",
        description=(
            f"Upgrade {upgrade_id} was promoted and soaked. Nothing uses revision "
            f"{plan.revision}: no running pod, namespace, tag, pinned workload or gateway "
            f"({completed} still carry its proxy; they never run again and do not count).\n"
            f"Approve: POST /api/approve-prune (use is checked again first). It deletes:\n"
            f"{objects}"),
        starts_at=now,
        labels={"revision": plan.revision, "upgrade_id": upgrade_id},
        link=link,
    )


@dataclass
class PruneOffer:
    """What the gate knows about the current promotion's old revision (for ``status``)."""

    upgrade_id: str
    revision: str
    soak_ends: datetime
    state: str = "soaking"  # soaking | in-use | helm | ready | pruned | refused | withheld
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"upgrade_id": self.upgrade_id, "revision": self.revision,
                "soak_ends": self.soak_ends.isoformat(), "state": self.state,
                "detail": self.detail}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PruneOffer:
        """The inverse of ``to_json``; ``KeyError``, ``ValueError`` or ``TypeError`` when
        the data is not an offer."""
        return cls(upgrade_id=str(data["upgrade_id"]), revision=str(data["revision"]),
                   soak_ends=datetime.fromisoformat(data["soak_ends"]),
                   state=str(data.get("state", "soaking")), detail=str(data.get("detail", "")))


class PruneGate:
    """Decides, pass after pass, when to offer the prune; applies it once approved.

    What it knows (the offer, and the ready alert while it fires) is ``document()``; the
    service keeps it in its memory in the state ConfigMap, beside the soak's findings, and
    a standby or a new leader takes it back with ``recall``: a new leader neither offers
    again nor fires ``CanaryAnalyzerPruneReady`` a second time, and resolves the alert the
    previous leader fired (``adopt``: the dispatcher's ``adopt``)."""

    def __init__(self, revisions: Callable[[], RevisionsPort], soak: timedelta,
                 fire: Callable[[Alert], Any], resolve: Callable[[Alert], Any],
                 adopt: Callable[[Alert], Any] = lambda _alert: None) -> None:
        self._revisions = revisions
        self._soak = soak
        self._fire = fire
        self._resolve = resolve
        self._adopt = adopt
        self._lock = threading.Lock()
        self.offer: PruneOffer | None = None
        self._alert: Alert | None = None

    def document(self) -> dict[str, Any] | None:
        """The offer as kept in the service memory (``to_json`` and the ready alert while
        it fires, ``alert``); None before any promotion."""
        with self._lock:
            if self.offer is None:
                return None
            return {**self.offer.to_json(),
                    "alert": self._alert.to_json() if self._alert is not None else None}

    def recall(self, document: dict[str, Any] | None, take_over: bool) -> None:
        """Take the offer as kept (the leader's). ``take_over``: this replica leads from now
        on, so the ready alert the keeper fired is adopted (kept firing, resolved by the
        approval; never sent as new). Nothing kept, or unreadable: what this replica knows
        stays."""
        if not document:
            return
        try:
            offer = PruneOffer.from_json(document)
            alert = Alert.from_json(document["alert"]) if document.get("alert") else None
        except (KeyError, ValueError, TypeError) as error:
            log.warning("cannot read the remembered prune offer: %s", error)
            return
        with self._lock:
            self.offer, self._alert = offer, alert
            if take_over and alert is not None:
                self._adopt(alert)

    def _offer_for(self, state: UpgradeState | None) -> PruneOffer | None:
        """The offer of a finished, promoted upgrade (made on first sight); else None."""
        if state is None or not state.finished or state.outcome is not Outcome.PROMOTED:
            return None
        plan = state.plan
        if self.offer is None or self.offer.upgrade_id != plan.upgrade_id:
            self.offer = PruneOffer(plan.upgrade_id, plan.from_revision,
                                    state.updated_at + self._soak)
        return self.offer

    def withhold(self, state: UpgradeState | None, detail: str) -> None:
        """A soak look found a regression: this upgrade's prune is never offered (an offer
        already made is taken back, its alert resolved); ``approve`` refuses it."""
        with self._lock:
            offer = self._offer_for(state)
            if offer is None or offer.state in ("pruned", "refused", "withheld"):
                return
            if offer.state == "ready":
                self._end_alert()
            offer.state, offer.detail = "withheld", detail

    def tick(self, state: UpgradeState | None, now: datetime) -> None:
        """Call on every pass of the service loop while no upgrade runs."""
        with self._lock:
            offer = self._offer_for(state)
            if offer is None or offer.state in ("pruned", "ready", "withheld") or (
                now < offer.soak_ends
            ):
                return
            prune = plan_for(self._revisions(), offer.revision)
            if prune.blockers or prune.helm_releases or not prune.delete:
                self._end_alert()  # a refused approval found a use: no longer ready
            if prune.blockers:
                offer.state, offer.detail = "in-use", "; ".join(prune.blockers)
            elif prune.helm_releases:
                offer.state, offer.detail = "helm", prune.refusal() or ""
            elif not prune.delete:
                offer.state, offer.detail = "pruned", "nothing of it is installed any more"
            else:
                offer.state, offer.detail = "ready", "approve: POST /api/approve-prune"
                self._alert = prune_ready_alert(prune, offer.upgrade_id, now)
                self._fire(self._alert)
                log.warning("prune of %s ready for approval", offer.revision)

    def approve(self, say: Callable[[str], None] = lambda _line: None) -> tuple[bool, str]:
        """(done, message): prune the offered revision now, after checking use again."""
        with self._lock:
            offer = self.offer
            if offer is None or offer.state != "ready":
                state = offer.state if offer else "no promoted upgrade"
                return False, f"nothing to prune: {state}"
            try:
                plan, deleted = run_prune(self._revisions(), offer.revision, False, say)
            except NotInstalledError as error:
                offer.state, offer.detail = "pruned", str(error)
                self._end_alert()
                return True, str(error)
            if deleted is None:
                offer.state, offer.detail = "refused", plan.refusal() or ""
                return False, offer.detail
            offer.state, offer.detail = "pruned", f"deleted {len(deleted)} objects"
            self._end_alert()
            return True, f"revision {offer.revision} pruned: " + ", ".join(deleted)

    def _end_alert(self) -> None:
        """Resolve the ready alert, if one fires (the lock is held)."""
        if self._alert is not None:
            self._resolve(self._alert)
            self._alert = None
