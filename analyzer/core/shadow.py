"""Shadow mode's decisions: which restarts happened on their own, when each can be judged,
against which controls, and what an upgrade would have done with the verdict.

Why it exists: for its first weeks in a cluster the service may run judge-only
(``service.mode: shadow``): it watches the restarts that happen anyway (a ``kubectl rollout
restart``, a new image), judges them with the same rules and windows as an upgrade's
restart, records the verdicts and acts on nothing. People compare the verdicts with what
they saw before they let it act. This module decides; ``service.shadow`` applies.

A restart is seen the way kubectl makes one: ``kubectl rollout restart`` stamps the pod
template's ``kubectl.kubernetes.io/restartedAt`` annotation with the time, RFC 3339
(kubectl ``pkg/polymorphichelpers/objectrestarter.go``), and any other template change (a
new image) bumps the workload's ``metadata.generation``. Pure: the workloads and "now" are
arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from analyzer.core.verdicts import Verdict


@dataclass(frozen=True)
class WorkloadTemplate:
    """What shadow mode reads of one workload: its pod template's ``restartedAt`` stamp
    (None: never restarted by kubectl, or not a time) and its ``metadata.generation``."""

    namespace: str
    kind: str
    name: str
    generation: int
    restarted_at: datetime | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.namespace, self.kind, self.name)

    @property
    def fingerprint(self) -> tuple[int, datetime | None]:
        return (self.generation, self.restarted_at)


class WorkloadTemplates(Protocol):
    """Where shadow mode reads workloads from (the Kubernetes adapter, read-only)."""

    def workload_templates(self, namespaces: Sequence[str]) -> list[WorkloadTemplate]: ...


@dataclass(frozen=True)
class SeenRestart:
    """A namespace restarted outside the service: when, which workloads, and how it was seen
    (``restartedAt``: kubectl's stamp; ``template``: another pod-template change, timed at
    the pass that saw it)."""

    namespace: str
    restarted_at: datetime
    workloads: tuple[str, ...]
    cause: str

    def to_json(self) -> dict[str, object]:
        return {
            "namespace": self.namespace,
            "restarted_at": self.restarted_at.isoformat(),
            "workloads": list(self.workloads),
            "cause": self.cause,
        }


def detect_restarts(
    previous: Mapping[tuple[str, str, str], WorkloadTemplate] | None,
    current: Iterable[WorkloadTemplate],
    now: datetime,
) -> list[SeenRestart]:
    """The namespaces whose workloads' pod templates changed since ``previous`` (None: the
    first look, which only learns what is there). A new ``restartedAt`` gives the restart
    its time; a generation bump without one is timed ``now`` (at most one pass late). A
    workload appearing for the first time is a deployment, not a restart: not counted.
    Several workloads of one namespace make one restart, at the earliest time."""
    if previous is None:
        return []
    found: dict[str, list[tuple[datetime, str, str]]] = {}
    for workload in current:
        before = previous.get(workload.key)
        if before is None or before.fingerprint == workload.fingerprint:
            continue
        stamped = workload.restarted_at is not None and workload.restarted_at != before.restarted_at
        moment = workload.restarted_at if stamped and workload.restarted_at <= now else now
        cause = "restartedAt" if stamped else "template"
        found.setdefault(workload.namespace, []).append(
            (moment, f"{workload.kind}/{workload.name}", cause)
        )
    return [
        SeenRestart(
            namespace=namespace,
            restarted_at=min(moment for moment, _, _ in changes),
            workloads=tuple(sorted(name for _, name, _ in changes)),
            cause="restartedAt" if any(c == "restartedAt" for _, _, c in changes) else "template",
        )
        for namespace, changes in sorted(found.items())
    ]


@dataclass(frozen=True)
class ShadowWindows:
    """The windows an upgrade's restart is judged over (the ``windows`` settings)."""

    before: timedelta
    settle: timedelta
    after: timedelta
    step: timedelta

    def due(self, restarted_at: datetime) -> datetime:
        """When the after-window has ended and the restart can be judged."""
        return restarted_at + self.settle + self.after


@dataclass
class PendingRestart:
    """A seen restart waiting for its after-window to end."""

    seen: SeenRestart
    due: datetime
    #: namespaces restarted close to it (their windows overlap): never its controls
    overlapping: set[str] = field(default_factory=set)


def merge_restart(
    pending: list[PendingRestart], seen: SeenRestart, windows: ShadowWindows
) -> list[PendingRestart]:
    """Add a seen restart: a namespace already waiting restarted again before its verdict,
    so the waiting judgement starts over at the later restart (its after-window would mix
    two restarts). Restarts whose windows overlap mark each other as not-controls."""
    kept = [p for p in pending if p.seen.namespace != seen.namespace]
    entry = PendingRestart(seen=seen, due=windows.due(seen.restarted_at))
    for other in kept:
        if _overlap(other, entry, windows):
            other.overlapping.add(seen.namespace)
            entry.overlapping.add(other.seen.namespace)
    return [*kept, entry]


def _overlap(a: PendingRestart, b: PendingRestart, windows: ShadowWindows) -> bool:
    start_a, start_b = a.seen.restarted_at - windows.before, b.seen.restarted_at - windows.before
    return start_a < b.due and start_b < a.due


def due_restarts(
    pending: Sequence[PendingRestart], now: datetime
) -> tuple[list[PendingRestart], list[PendingRestart]]:
    """(due now, still waiting)."""
    due = [p for p in pending if p.due <= now]
    return due, [p for p in pending if p.due > now]


def shadow_controls(
    entry: PendingRestart, watched: Sequence[str], recently_restarted: Iterable[str]
) -> tuple[str, ...]:
    """Controls as an upgrade picks them: the other watched namespaces, less any restarted
    within the restart's windows (pending ones that overlap, and ones judged recently)."""
    excluded = {entry.seen.namespace, *entry.overlapping, *recently_restarted}
    return tuple(n for n in watched if n not in excluded)


#: What an upgrade would have done with each verdict (shadow mode does none of it).
WOULD = {
    Verdict.PASS: "would promote (go on to the next wave)",
    Verdict.FAIL: "would roll back the upgrade and page on-call",
    Verdict.INCONCLUSIVE: "would extend the after-window, then apply upgrade.on_inconclusive",
    Verdict.ERROR: "would stop and page on-call: the data source failed",
}
