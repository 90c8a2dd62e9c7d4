"""Whether a restart moves a workload's pods, and when its rollout is complete.

Why it exists: preflight, the restart and the rollout wait must agree on what ``kubectl
rollout restart`` and ``kubectl rollout status`` do with a Deployment, StatefulSet or
DaemonSet (kubernetes/kubectl ``pkg/polymorphichelpers/rollout_status.go``, kube-controller-
manager's update strategies); these are those rules, as pure functions of the object.
"""

from __future__ import annotations

from typing import Any

from analyzer.adapters.kubernetes.objects import controller_of, meta_of


def unrollable(kind: str, obj: dict[str, Any]) -> tuple[str, str] | None:
    """(why, fix) when ``kubectl rollout restart`` does not move this workload's pods.

    kube-controller-manager replaces OnDelete pods only when they are deleted, and keeps the
    ordinals below a StatefulSet's ``partition`` on the current revision
    (kubernetes ``pkg/controller/statefulset/stateful_set_utils.go`` ``newVersionedStatefulSetPod``,
    ``pkg/controller/daemon/daemon_controller.go`` ``updateDaemonSet``); yet kubectl counts both as rolled out
    (``pkg/polymorphichelpers/rollout_status.go``). A workload managed by another controller
    (an operator, an Argo Rollout) has its template reconciled by that controller."""
    meta, spec = meta_of(obj), obj.get("spec") or {}
    namespace, name = meta.get("namespace"), meta.get("name")
    owner = controller_of(obj)
    if owner is not None:
        return (
            f"managed by {owner[0]} {owner[1]}, which would undo or bypass a restart",
            f"upgrade it through its owner ({owner[0]} {namespace}/{owner[1]})",
        )
    strategy = spec.get("updateStrategy") or {}
    resource = kind.lower()
    if kind in ("StatefulSet", "DaemonSet") and strategy.get("type") == "OnDelete":
        patch = '{"spec":{"updateStrategy":{"type":"RollingUpdate"}}}'
        return (
            "updateStrategy OnDelete: its pods change only when deleted",
            f"kubectl -n {namespace} patch {resource} {name} -p '{patch}'",
        )
    partition = (strategy.get("rollingUpdate") or {}).get("partition") or 0
    if kind == "StatefulSet" and int(partition) > 0:
        patch = '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}'
        return (
            f"partition {partition}: the pods below ordinal {partition} keep the old revision",
            f"kubectl -n {namespace} patch {resource} {name} -p '{patch}'",
        )
    return None


#: controllers of pods a restart moves (through a Deployment's ReplicaSets) or that run to
#: completion (Jobs, reported as not restarted but never named by preflight)
STANDARD_POD_CONTROLLERS = frozenset({"ReplicaSet", "StatefulSet", "DaemonSet", "Job"})


def rollout_problem(kind: str, obj: dict[str, Any]) -> tuple[bool, str | None, str]:
    """kubectl's rollout-status rules: (complete, failure reason, what it waits for)."""
    spec, status, meta = obj.get("spec") or {}, obj.get("status") or {}, meta_of(obj)
    name = f"{meta.get('namespace')}/{meta.get('name')}"
    if (meta.get("generation") or 0) > (status.get("observedGeneration") or 0):
        return False, None, f"{name}: update not yet observed"
    if kind == "Deployment":
        for condition in status.get("conditions") or []:
            if condition.get("type") == "Progressing" and (
                condition.get("reason") == "ProgressDeadlineExceeded"
            ):
                return False, f"{name} exceeded its progress deadline", name
        replicas = spec.get("replicas", 1)
        updated = status.get("updatedReplicas") or 0
        if updated < replicas:
            return False, None, f"{name}: {updated} of {replicas} updated"
        if (status.get("replicas") or 0) > updated:
            return False, None, f"{name}: old replicas pending termination"
        if (status.get("availableReplicas") or 0) < updated:
            return (
                False,
                None,
                f"{name}: {status.get('availableReplicas') or 0} of {updated} available",
            )
        return True, None, ""
    strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
    if strategy != "RollingUpdate":
        return True, None, ""  # kubectl: status is only available for RollingUpdate
    if kind == "StatefulSet":
        replicas = spec.get("replicas", 1)
        if (status.get("readyReplicas") or 0) < replicas:
            return False, None, f"{name}: {status.get('readyReplicas') or 0} of {replicas} ready"
        partition = ((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition")
        if partition:
            if (status.get("updatedReplicas") or 0) < replicas - partition:
                return False, None, f"{name}: partitioned roll out waiting"
            return True, None, ""
        if status.get("updateRevision") != status.get("currentRevision"):
            return False, None, f"{name}: pods not yet on the update revision"
        return True, None, ""
    desired = status.get("desiredNumberScheduled") or 0
    if (status.get("updatedNumberScheduled") or 0) < desired:
        return (
            False,
            None,
            f"{name}: {status.get('updatedNumberScheduled') or 0} of {desired} updated",
        )
    if (status.get("numberAvailable") or 0) < desired:
        return False, None, f"{name}: {status.get('numberAvailable') or 0} of {desired} available"
    return True, None, ""
