"""After a restart: which pods moved to the new proxy, which were never ours to move, and
how healthy the new pods are.

Why it exists: verification counts only pods owned (by controller ``ownerReferences``) by
the workloads a step restarted; Job, bare and operator-managed pods are reported with their
revision, never failed; preflight names what a restart can never move. All of it traces a
pod to its workload the same way (Pod → ReplicaSet → Deployment, Pod → StatefulSet or
DaemonSet).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from analyzer.adapters.kubernetes.api import ClusterApi
from analyzer.adapters.kubernetes.objects import controller_of, meta_of
from analyzer.adapters.kubernetes.pods import injection_skipped, pod_revision, revision_text
from analyzer.adapters.kubernetes.workloads import STANDARD_POD_CONTROLLERS, unrollable
from analyzer.core.health_gates import HealthSignals, pod_health
from analyzer.core.ports import UnrollableWorkload
from analyzer.core.upgrade import ProxyStatus, Target


class ProxyChecks(ClusterApi):
    """Pods classified by owner; their proxies verified; their health read."""

    def _classify_pods(
        self, target: Target
    ) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str]]]:
        """(pods owned by the workloads the target restarts, [(other pod, why not)]).

        Ownership follows the controller ownerReferences: Pod → ReplicaSet → Deployment,
        Pod → StatefulSet, Pod → DaemonSet. For a namespace target every other pod of the
        namespace is listed (Job and CronJob pods, bare pods, pods of other controllers or
        of unrollable workloads); for one workload, only its own pods it does not roll."""
        workloads = self._workloads(target)
        restarted: set[tuple[str, str]] = set()
        left_alone: dict[tuple[str, str], str] = {}
        for kind, obj in workloads:
            reason = unrollable(kind, obj)
            key = (kind, str(meta_of(obj).get("name")))
            if reason is None:
                restarted.add(key)
            else:
                left_alone[key] = reason[0]
        replica_sets = self._replica_set_owners(target.namespace)
        pods = self._items(
            f"pods in {target.namespace}", self.core.list_namespaced_pod, target.namespace
        )
        owned: list[dict[str, Any]] = []
        others: list[tuple[dict[str, Any], str]] = []
        for pod in pods:
            owner = controller_of(pod)
            workload: tuple[str, str] | None = None
            if owner is None:
                label = "bare pod"
            elif owner[0] == "ReplicaSet":
                rs_owner = replica_sets.get(owner[1])
                if rs_owner is not None and rs_owner[0] == "Deployment":
                    workload = rs_owner
                    label = f"Deployment {rs_owner[1]}"
                else:
                    label = f"ReplicaSet {owner[1]}" + (
                        f" of {rs_owner[0]} {rs_owner[1]}" if rs_owner else " without a Deployment"
                    )
            elif owner[0] in ("StatefulSet", "DaemonSet"):
                workload = owner
                label = f"{owner[0]} {owner[1]}"
            else:
                label = f"{owner[0]} {owner[1]}"
            if workload is not None and workload in restarted:
                owned.append(pod)
            elif workload is not None and workload in left_alone:
                others.append((pod, f"{label}: {left_alone[workload]}"))
            elif target.kind is None:
                others.append((pod, label))
        return owned, others

    def proxy_status(self, targets: Sequence[Target], revision: str) -> ProxyStatus:
        """Every running, non-terminating pod owned by a workload the targets restart must
        report ``revision``, unless the injector skips it; every other pod beside them is
        listed as not restarted by this upgrade, with its revision, and never fails."""
        checked, wrong, left = 0, [], []
        for target in targets:
            owned, others = self._classify_pods(target)
            for pod in owned:
                meta = meta_of(pod)
                phase = (pod.get("status") or {}).get("phase")
                if meta.get("deletionTimestamp") or phase in ("Succeeded", "Failed"):
                    continue
                name = f"{meta.get('namespace')}/{meta.get('name')}"
                found = pod_revision(pod)
                skipped = injection_skipped(pod)
                if skipped is not None:
                    left.append(f"{name} ({skipped}): {revision_text(pod)}")
                    continue
                checked += 1
                if found != revision:
                    wrong.append(f"{name}: {revision_text(pod)}")
            for pod, why in others:
                meta = meta_of(pod)
                if meta.get("deletionTimestamp"):
                    continue
                phase = (pod.get("status") or {}).get("phase")
                state = f", {phase}" if phase and phase != "Running" else ""
                left.append(
                    f"{meta.get('namespace')}/{meta.get('name')} ({why}{state}): "
                    f"{revision_text(pod)}"
                )
        return ProxyStatus(checked=checked, mismatched=tuple(wrong), not_restarted=tuple(left))

    def pod_health(self, namespaces: Sequence[str], since: datetime) -> dict[str, HealthSignals]:
        """Per namespace, the volume-free health of the pods created since its restart
        (container restarts, crash loops, proxies not ready; ``core.quiet.pod_health``)."""
        return {
            namespace: pod_health(
                self._items(f"pods in {namespace}", self.core.list_namespaced_pod, namespace),
                since,
            )
            for namespace in namespaces
        }

    def unrollable_workloads(self, targets: Sequence[Target]) -> list[UnrollableWorkload]:
        """Workloads of the targets a restart does not roll, and, for a namespace, what
        owns pods there that no standard workload manages (an Argo Rollout's ReplicaSets,
        an operator's pods): the upgrade could never move those pods."""
        found: list[UnrollableWorkload] = []
        for target in targets:
            for kind, obj in self._workloads(target):
                reason = unrollable(kind, obj)
                if reason is not None:
                    meta = meta_of(obj)
                    found.append(UnrollableWorkload(
                        str(meta.get("namespace")), kind, str(meta.get("name")), *reason
                    ))  # fmt: skip
            if target.kind is not None:
                continue
            seen: set[tuple[str, str]] = set()
            replica_sets = self._replica_set_owners(target.namespace)
            for pod in self._items(
                f"pods in {target.namespace}", self.core.list_namespaced_pod, target.namespace
            ):
                owner = controller_of(pod)
                if owner is None:
                    continue  # a bare pod: reported at verification, never restarted
                if owner[0] == "ReplicaSet":
                    rs_owner = replica_sets.get(owner[1])
                    if rs_owner is not None and rs_owner[0] == "Deployment":
                        continue
                    owner = rs_owner or owner
                elif owner[0] in STANDARD_POD_CONTROLLERS:
                    continue
                if owner in seen:
                    continue
                seen.add(owner)
                found.append(UnrollableWorkload(
                    target.namespace, owner[0], owner[1],
                    "its pods are managed by a controller the upgrade does not restart",
                    f"restart it with its own tooling after the upgrade "
                    f"({owner[0]} {target.namespace}/{owner[1]})",
                ))  # fmt: skip
        return found
