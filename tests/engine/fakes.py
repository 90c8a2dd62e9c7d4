"""In-memory stand-ins for the engine's ports: a cluster with Istio, scripted judging, crashes.

Why: the engine's branches (promote, rollback, hold, resume after a crash at any call) must
be walked quickly and deterministically. These fakes implement the product's own Protocols
(``MeshCluster``, ``Judging``), never the kubernetes client's objects.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from analyzer.core.mesh import ClusterNotFoundError, RevisionInfo, TagInfo, UnrollableWorkload
from analyzer.core.reach import (
    LabelSelector,
    NamespaceInfo,
    PodInfo,
    ReachInputs,
    Requirement,
    Webhook,
    WorkloadInfo,
)
from analyzer.core.upgrade import (
    Judge,
    Judged,
    NamespaceJudgement,
    ProxyStatus,
    RolloutStatus,
    Target,
)
from analyzer.core.verdicts import Verdict


class Crash(BaseException):
    """Simulated kill -9: not an Exception, so nothing in the product catches it."""


@dataclass
class FakeWorkload:
    namespace: str
    kind: str
    name: str
    annotations: dict[str, str] = field(default_factory=dict)
    restarts: int = 0
    pod_revision: str = "1-14-6"
    pending_checks: int = 0  # rollout checks left before complete


@dataclass
class FakeMesh:
    """A cluster: revisions, one tag, namespaces with labels, workloads with pods."""

    namespaces: dict[str, dict[str, str]]
    workloads: list[FakeWorkload]
    revisions_ready: dict[str, bool] = field(
        default_factory=lambda: {"1-14-6": True, "1-15-4": True}
    )
    tag_revision: dict[str, str] = field(default_factory=lambda: {"default": "1-14-6"})
    rollout_checks: int = 1  # checks that report "in progress" after each restart
    never_ready: set[str] = field(default_factory=set)  # namespaces whose 1-15-4 pods never ready
    never_ready_any: set[str] = field(default_factory=set)  # … whatever their revision
    wrong_revision: set[str] = field(default_factory=set)  # namespaces injected with 1-0-0
    calls: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    events: list[tuple[str, str, str]] = field(default_factory=list)
    crash_at_call: int | None = None  # raise Crash right after this call number (1-based)
    #: per namespace, pods the upgrade never restarts (Job pods, bare pods…): reported by
    #: proxy_status as not restarted, never as mismatched
    unmanaged: dict[str, list[str]] = field(default_factory=dict)
    unrollable: list[UnrollableWorkload] = field(default_factory=list)

    @classmethod
    def standard(cls, names: Sequence[str] = ("a", "b", "c", "d", "e", "f")) -> FakeMesh:
        namespaces = {n: {"istio.io/rev": "default"} for n in names}
        namespaces["istio-ingress"] = {"istio.io/rev": "default"}
        workloads = [FakeWorkload("istio-ingress", "Deployment", "istio-ingressgateway")]
        for n in names:
            workloads.append(FakeWorkload(n, "Deployment", "web"))
            workloads.append(FakeWorkload(n, "StatefulSet", "db"))
        return cls(namespaces=namespaces, workloads=workloads)

    # -- bookkeeping -----------------------------------------------------------------------

    def _call(self, name: str, write: bool = False) -> None:
        self.calls.append(name)
        if write:
            self.writes.append(name)

    def _after_call(self) -> None:
        if self.crash_at_call is not None and len(self.calls) >= self.crash_at_call:
            self.crash_at_call = None
            raise Crash(f"killed after call {len(self.calls)}: {self.calls[-1]}")

    def restarts(self) -> dict[str, int]:
        return {f"{w.namespace}/{w.name}": w.restarts for w in self.workloads}

    def _selected(self, target: Target) -> list[FakeWorkload]:
        if target.namespace not in self.namespaces:
            raise ClusterNotFoundError(f"namespace {target.namespace} not found")
        return [
            w
            for w in self.workloads
            if w.namespace == target.namespace
            and (target.name is None or (w.kind, w.name) == (target.kind, target.name))
        ]

    def _injected_revision(self, namespace: str) -> str:
        if namespace in self.wrong_revision:
            return "1-0-0"
        value = self.namespaces[namespace].get("istio.io/rev", "")
        return self.tag_revision.get(value, value)

    # -- MeshCluster -----------------------------------------------------------------------

    def revisions(self) -> dict[str, RevisionInfo]:
        self._call("revisions")
        return {
            n: RevisionInfo(name=n, ready=r, injector=True) for n, r in self.revisions_ready.items()
        }

    def tags(self) -> dict[str, TagInfo]:
        self._call("tags")
        return {t: TagInfo(name=t, revision=r) for t, r in self.tag_revision.items()}

    def namespace_labels(self, namespace: str) -> dict[str, str] | None:
        self._call("namespace_labels")
        labels = self.namespaces.get(namespace)
        return dict(labels) if labels is not None else None

    def namespaces_labelled(self, value: str) -> list[str]:
        self._call("namespaces_labelled")
        return sorted(
            n for n, labels in self.namespaces.items() if labels.get("istio.io/rev") == value
        )

    def reach_inputs(self, tag: str) -> ReachInputs:
        """The tag's ``rev.namespace`` webhook only (namespaces labelled with the tag); one
        pod per workload, owned by it, on the workload's current revision."""
        self._call("reach_inputs")
        if tag not in self.tag_revision:
            raise ClusterNotFoundError(f"tag {tag} not found")
        webhook = Webhook(
            name="rev.namespace.sidecar-injector.istio.io",
            namespace_selector=LabelSelector(
                (Requirement("istio.io/rev", "In", (tag,)),
                 Requirement("istio-injection", "DoesNotExist"))
            ),
        )  # fmt: skip
        return ReachInputs(
            tag=tag,
            webhook_config=f"istio-revision-tag-{tag}",
            webhooks=(webhook,),
            namespaces=tuple(NamespaceInfo(n, dict(v)) for n, v in self.namespaces.items()),
            workloads=tuple(WorkloadInfo(w.namespace, w.kind, w.name) for w in self.workloads),
            pods=tuple(
                PodInfo(w.namespace, f"{w.name}-0", {}, w.kind, w.name, w.pod_revision)
                for w in self.workloads
            ),
        )

    def workload_exists(self, target: Target) -> bool:
        self._call("workload_exists")
        return bool(self._selected(target)) if target.namespace in self.namespaces else False

    def move_tag(self, tag: str, revision: str) -> TagInfo:
        self._call(f"move_tag {tag}={revision}", write=True)
        if tag not in self.tag_revision:
            raise ClusterNotFoundError(f"tag {tag} not found")
        self.tag_revision[tag] = revision
        self._after_call()
        return TagInfo(name=tag, revision=revision)

    def set_revision_label(self, namespaces: Sequence[str], value: str) -> None:
        self._call(f"label {','.join(namespaces)}={value}", write=True)
        for namespace in namespaces:
            self.namespaces[namespace]["istio.io/rev"] = value
        self._after_call()

    def restart(self, targets: Sequence[Target], step_id: str, at: datetime) -> datetime:
        self._call(f"restart {','.join(t.describe() for t in targets)}", write=True)
        earliest = at
        for target in targets:
            for workload in self._selected(target):
                if workload.annotations.get("step") == step_id:
                    earliest = min(earliest, datetime.fromisoformat(workload.annotations["at"]))
                    continue
                workload.annotations.update(step=step_id, at=at.isoformat())
                workload.restarts += 1
                workload.pod_revision = self._injected_revision(workload.namespace)
                workload.pending_checks = self.rollout_checks
        self._after_call()
        return earliest

    def rollout_status(self, targets: Sequence[Target]) -> RolloutStatus:
        self._call("rollout_status")
        waiting = []
        for target in targets:
            for workload in self._selected(target):
                stuck = workload.namespace in self.never_ready and workload.pod_revision == "1-15-4"
                if stuck or workload.namespace in self.never_ready_any:
                    waiting.append(f"{workload.namespace}/{workload.name}")
                elif workload.pending_checks > 0:
                    workload.pending_checks -= 1
                    waiting.append(f"{workload.namespace}/{workload.name}")
        self._after_call()
        return RolloutStatus(complete=not waiting, waiting=tuple(waiting))

    def proxy_status(self, targets: Sequence[Target], revision: str) -> ProxyStatus:
        self._call("proxy_status")
        checked, wrong, left = 0, [], []
        for target in targets:
            if target.kind is None:
                left += [f"{target.namespace}/{pod}" for pod in self.unmanaged.get(
                    target.namespace, [])]  # fmt: skip
            for workload in self._selected(target):
                checked += 1
                if workload.pod_revision != revision:
                    wrong.append(
                        f"{workload.namespace}/{workload.name}-0: revision {workload.pod_revision}"
                    )
        self._after_call()
        return ProxyStatus(checked=checked, mismatched=tuple(wrong), not_restarted=tuple(left))

    def unrollable_workloads(self, targets: Sequence[Target]) -> list[UnrollableWorkload]:
        self._call("unrollable_workloads")
        return [w for w in self.unrollable if any(t.namespace == w.namespace for t in targets)]

    def record_event(self, namespace: str, reason: str, message: str, warning: bool) -> None:
        self.events.append((namespace, reason, message))


@dataclass
class ScriptedJudging:
    """Verdicts from a script: ``script(namespace, judge_call_number) -> Verdict``."""

    script: Callable[[str, int], Verdict] = lambda _n, _i: Verdict.PASS
    actions: list[Judge] = field(default_factory=list)

    def judge(self, action: Judge) -> Judged:
        self.actions.append(action)
        number = len(self.actions)
        verdicts = {}
        for name in action.judged:
            verdict = self.script(name, number)
            rules = (
                {"rule": "error-rate", "verdict": verdict.value, "before": 0.001, "after": 0.05,
                 "reason": f"scripted {verdict.value}"},
            )  # fmt: skip
            verdicts[name] = NamespaceJudgement(
                verdict=verdict, reason=f"scripted {verdict.value}", rules=rules
            )
        return Judged(verdicts=verdicts)


def fail_in(names: set[str]) -> Callable[[str, int], Verdict]:
    return lambda name, _i: Verdict.FAIL if name in names else Verdict.PASS
