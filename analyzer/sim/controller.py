"""The cluster's controllers: Deployment/ReplicaSet, StatefulSet, DaemonSet and the kubelet.

Behaviour follows kube-controller-manager closely enough for kubectl's rollout rules and
the engine's checks: a changed pod template bumps ``metadata.generation`` (store) and rolls
the workload within ``maxSurge``/``maxUnavailable`` (Deployment, through ReplicaSets),
by descending ordinal (StatefulSet) or node by node (DaemonSet); statuses carry
``observedGeneration``, replica counts and the ``Progressing`` condition with
``ProgressDeadlineExceeded``. Pods are admitted through the sidecar injector when created
and become Ready after the scenario's delay unless a fault holds them back.

Pods no rollout ever touches live here too, as in a real cluster: a Job's pods (the Job
controller, kubernetes/kubernetes pkg/controller/job/job_controller.go, makes one pod per
missing completion with ``restartPolicy: Never``, labels ``job-name`` and
``batch.kubernetes.io/job-name``, and marks the Job ``Complete`` once it succeeded), pods
that finished (phase ``Succeeded``: the kubelet, pkg/kubelet/kubelet_pods.go getPhase, once
every container of a never-restarting pod exited 0), bare pods, and pods of a ReplicaSet an
operator owns (the ReplicaSet controller keeps any ReplicaSet's replicas, whoever owns it).
A container's ``command: [sleep, N]`` tells the simulated kubelet when its process exits.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import math
import random
from collections.abc import Callable
from typing import Any

from analyzer.sim.clock import SimClock, rfc3339
from analyzer.sim.deletion import GarbageCollector
from analyzer.sim.faults import FaultState
from analyzer.sim.injection import AdmissionDenied, SidecarInjector, proxy_revision
from analyzer.sim.resources import (
    DAEMONSETS,
    DEPLOYMENTS,
    EVENTS,
    JOBS,
    NAMESPACES,
    NODES,
    PODS,
    REPLICASETS,
    STATEFULSETS,
    ResourceType,
)
from analyzer.sim.selectors import selector_from_spec
from analyzer.sim.store import ApiError, InternalError, ObjectStore

log = logging.getLogger("canary_analyzer.sim.controller")

#: A repeating event (same object, reason, message) is recorded at most once per this many
#: simulated seconds.
EVENT_REPEAT_SECONDS = 300.0
_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: dict[str, Any]) -> str:
    """A stable 10-character hash of a pod template, like ``pod-template-hash``."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(_HASH_ALPHABET[byte % len(_HASH_ALPHABET)] for byte in digest[:10])


def resolve_int_or_percent(value: Any, total: int, round_up: bool) -> int:
    """``maxSurge``/``maxUnavailable``: an int, or a percentage of ``total``."""
    if value is None:
        value = "25%"
    if isinstance(value, str) and value.endswith("%"):
        exact = int(value[:-1]) * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value)


def _owner_ref(owner: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": owner["apiVersion"], "kind": owner["kind"],
            "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
            "controller": True, "blockOwnerDeletion": True}


def _owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    return any(ref.get("uid") == owner["metadata"]["uid"]
               for ref in obj["metadata"].get("ownerReferences") or [])


def _terminating(pod: dict[str, Any]) -> bool:
    return "deletionTimestamp" in pod["metadata"]


def _exits_after(pod: dict[str, Any]) -> float | None:
    """Seconds after start when every app container of a never-restarting pod has exited 0
    (``command: [sleep, N]``); None when some container runs on."""
    spec = pod.get("spec") or {}
    if spec.get("restartPolicy", "Always") == "Always":
        return None
    longest = 0.0
    for container in spec.get("containers") or []:
        if container.get("name") == "istio-proxy":
            continue  # the proxy quits with the app (native sidecar or /quitquitquit)
        command = container.get("command") or []
        if len(command) != 2 or command[0] != "sleep":
            return None
        try:
            longest = max(longest, float(command[1]))
        except ValueError:  # not a number of seconds: runs on
            return None
    return longest


def _pod_ready(pod: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


class Controller:
    """Reconciles every workload toward its spec; call ``reconcile()`` on every tick."""

    def __init__(self, store: ObjectStore, clock: SimClock, injector: SidecarInjector,
                 faults: FaultState, ready_delay: float, termination_delay: float,
                 seed: int = 1) -> None:
        self._store = store
        self._clock = clock
        self._injector = injector
        self._faults = faults
        self._ready_delay = ready_delay
        self._termination_delay = termination_delay
        self._random = random.Random(seed)
        self._pod_born: dict[str, float] = {}  # pod uid → simulated second of creation
        self._pod_ready_since: dict[str, float] = {}
        self._pod_deleted: dict[str, float] = {}
        self._progress_mark: dict[str, float] = {}  # deployment uid → last progress
        self._seen_template: dict[str, str] = {}  # deployment uid → template hash seen
        self._sts_templates: dict[str, dict[str, Any]] = {}  # revision name → template
        self._instant_ready = False
        self._events_sent: dict[tuple[str, str, str], float] = {}
        self._ip_counter = 10
        self.garbage = GarbageCollector(store, clock, self.delete_pod)

    # -- entry points -----------------------------------------------------------------------

    def reconcile(self, instant_ready: bool = False) -> None:
        """One pass over every controller; ``instant_ready`` brings the seed cluster up."""
        self._instant_ready = instant_ready
        with self._store.lock:
            for deployment in self._store.list(DEPLOYMENTS)[0]:
                self._guard(self._sync_deployment, deployment)
            for replica_set in self._store.list(REPLICASETS)[0]:
                self._guard(self._sync_replica_set, replica_set)
            for stateful_set in self._store.list(STATEFULSETS)[0]:
                self._guard(self._sync_stateful_set, stateful_set)
            for daemon_set in self._store.list(DAEMONSETS)[0]:
                self._guard(self._sync_daemon_set, daemon_set)
            for job in self._store.list(JOBS)[0]:
                self._guard(self._sync_job, job)
            self._run_kubelet()
            for deployment in self._store.list(DEPLOYMENTS)[0]:
                self._guard(self._deployment_status, deployment)
            self.garbage.collect()

    def delete_pod(self, namespace: str, name: str) -> dict[str, Any]:
        """Graceful pod deletion: mark terminating; the kubelet removes it later."""
        pod = self._store.get(PODS, namespace, name)
        if _terminating(pod):
            return pod
        pod["metadata"]["deletionTimestamp"] = rfc3339(self._clock.wall_now())
        pod["metadata"]["deletionGracePeriodSeconds"] = int(self._termination_delay)
        self._pod_deleted[pod["metadata"]["uid"]] = self._clock.elapsed()
        return self._store.update(PODS, namespace, name, pod, internal=True)

    def admit_external_pod(self, pod: dict[str, Any], namespace: dict[str, Any]
                           ) -> dict[str, Any]:
        """Mutating admission for a pod created through the API."""
        try:
            return self._injector.admit(pod, (namespace.get("metadata") or {}).get("labels")
                                        or {})
        except AdmissionDenied as error:
            raise InternalError(str(error)) from None

    def create_standalone_pod(self, namespace: str, pod: dict[str, Any], ready_now: bool
                              ) -> dict[str, Any]:
        """A pod created directly (not by a controller here): admitted, scheduled, stored;
        ``ready_now`` brings it up at once (the seed cluster)."""
        namespace_obj = self._store.find(NAMESPACES, None, namespace) or {}
        pod = self.admit_external_pod(pod, namespace_obj)
        spec = pod.setdefault("spec", {})
        nodes = [n["metadata"]["name"] for n in self._store.list(NODES)[0]] or ["sim-node-1"]
        spec.setdefault("nodeName", self._random.choice(nodes))
        spec.setdefault("restartPolicy", "Always")
        pod["status"] = {"phase": "Pending", "qosClass": "BestEffort",
                         "conditions": [{"type": "PodScheduled", "status": "True"}]}
        created = self._store.create(PODS, namespace, pod)
        self._pod_born[created["metadata"]["uid"]] = self._clock.elapsed() - (
            self._ready_delay if ready_now else 0.0)
        return created

    def _guard(self, sync: Callable[[dict[str, Any]], None], obj: dict[str, Any]) -> None:
        if "deletionTimestamp" in obj["metadata"]:
            # being deleted: no new pods or ReplicaSets (kubernetes pkg/controller/deployment
            # deployment_controller.go syncDeployment, replicaset/replica_set.go
            # syncReplicaSet act only while DeletionTimestamp is nil)
            return
        try:
            sync(obj)
        except ApiError as error:  # an object changed under us: next tick retries
            log.debug("reconcile of %s skipped: %s", obj["metadata"]["name"], error)

    # -- pods -------------------------------------------------------------------------------

    def _pods(self, namespace: str, owner: dict[str, Any], include_terminating: bool = False
              ) -> list[dict[str, Any]]:
        pods, _ = self._store.list(PODS, namespace, lambda pod: _owned_by(pod, owner),
                                   copy_objects=False)
        return [pod for pod in pods if include_terminating or not _terminating(pod)]

    def _create_pod(self, owner: dict[str, Any], template: dict[str, Any], name: str | None,
                    extra_labels: dict[str, str], node: str | None = None) -> bool:
        namespace = owner["metadata"]["namespace"]
        metadata = copy.deepcopy(template.get("metadata") or {})
        metadata["labels"] = {**(metadata.get("labels") or {}), **extra_labels}
        metadata["ownerReferences"] = [_owner_ref(owner)]
        if name:
            metadata["name"] = name
        else:
            suffix = "".join(self._random.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
            metadata["name"] = f"{owner['metadata']['name']}-{suffix}"
            metadata["generateName"] = f"{owner['metadata']['name']}-"
        nodes = [n["metadata"]["name"] for n in self._store.list(NODES)[0]] or ["sim-node-1"]
        spec = copy.deepcopy(template.get("spec") or {})
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("schedulerName", "default-scheduler")
        spec["nodeName"] = node or self._random.choice(nodes)
        pod = {"metadata": metadata, "spec": spec}
        namespace_obj = self._store.find(NAMESPACES, None, namespace) or {}
        try:
            pod = self._injector.admit(pod, namespace_obj.get("metadata", {}).get("labels") or {})
        except AdmissionDenied as error:
            self._event(owner, "Warning", "FailedCreate", f"Error creating: {error}")
            return False
        self._ip_counter += 1
        pod["status"] = {"phase": "Pending", "qosClass": "BestEffort",
                         "hostIP": "10.0.0.10",
                         "podIP": f"10.244.{self._ip_counter // 250 % 250}.{self._ip_counter % 250}",
                         "conditions": [{"type": "PodScheduled", "status": "True"}]}
        created = self._store.create(PODS, namespace, pod)
        now = self._clock.elapsed()
        self._pod_born[created["metadata"]["uid"]] = now - (
            self._ready_delay if self._instant_ready else 0.0)
        return True

    def _workload_name(self, pod: dict[str, Any]) -> str | None:
        """The Deployment/StatefulSet/DaemonSet a pod belongs to (through its ReplicaSet)."""
        for ref in pod["metadata"].get("ownerReferences") or []:
            if ref.get("kind") == "ReplicaSet":
                template_hash_label = (pod["metadata"].get("labels") or {}).get(
                    "pod-template-hash")
                if template_hash_label:
                    return ref["name"].removesuffix(f"-{template_hash_label}")
                return ref["name"]
            return ref.get("name")
        return (pod["metadata"].get("labels") or {}).get("app")

    def _run_kubelet(self) -> None:
        now = self._clock.elapsed()
        for pod in self._store.list(PODS, copy_objects=False)[0]:
            uid = pod["metadata"]["uid"]
            namespace, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
            if _terminating(pod):
                deleted = self._pod_deleted.setdefault(uid, now)
                if now - deleted >= self._termination_delay or self._instant_ready:
                    self._store.delete(PODS, namespace, name)
                    for table in (self._pod_born, self._pod_ready_since, self._pod_deleted):
                        table.pop(uid, None)
                continue
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue  # a finished pod's containers never run again
            born = self._pod_born.setdefault(uid, now)
            exits_after = _exits_after(pod)
            if exits_after is not None and now - born >= self._ready_delay + exits_after:
                self._store.update(PODS, namespace, name,
                                   {**pod, "status": self._succeeded_status(pod)},
                                   subresource="status")
                continue
            held = self._faults.never_ready(namespace, self._workload_name(pod),
                                            proxy_revision(pod))
            should_be_ready = not held and now - born >= self._ready_delay
            started = now - born >= min(self._ready_delay, self._ready_delay / 2 + 0.001)
            if should_be_ready and uid not in self._pod_ready_since:
                self._pod_ready_since[uid] = now
            if not should_be_ready:
                self._pod_ready_since.pop(uid, None)
            desired = self._pod_status(pod, started or held, should_be_ready, held)
            if desired != pod.get("status"):
                self._store.update(PODS, namespace, name, {**pod, "status": desired},
                                   subresource="status")

    def _pod_status(self, pod: dict[str, Any], running: bool, ready: bool, held: bool
                    ) -> dict[str, Any]:
        status = copy.deepcopy(pod.get("status") or {})
        if not running:
            return status
        start = status.get("startTime") or rfc3339(self._clock.wall_now())
        status["phase"] = "Running"
        status["startTime"] = start
        state = {"running": {"startedAt": start}}

        def container_status(container: dict[str, Any]) -> dict[str, Any]:
            container_ready = ready or (held and container["name"] != "istio-proxy")
            previous = next((c for c in (pod.get("status") or {}).get("containerStatuses") or []
                             if c["name"] == container["name"]), None)
            return {"name": container["name"], "image": container.get("image", ""),
                    "imageID": "", "ready": container_ready, "started": True,
                    "restartCount": previous["restartCount"] if previous else 0,
                    "state": state}

        spec = pod.get("spec") or {}
        status["containerStatuses"] = [container_status(c) for c in spec.get("containers") or []]
        init_statuses = []
        for container in spec.get("initContainers") or []:
            if container.get("restartPolicy") == "Always":
                init_statuses.append(container_status(container))
            else:
                init_statuses.append({
                    "name": container["name"], "image": container.get("image", ""),
                    "imageID": "", "ready": True, "restartCount": 0, "started": False,
                    "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}})
        if init_statuses:
            status["initContainerStatuses"] = init_statuses
        ready_text = "True" if ready else "False"
        not_ready = {} if ready else {"reason": "ContainersNotReady",
                                      "message": "containers with unready status: [istio-proxy]"}
        previous_conditions = {c["type"]: c for c in status.get("conditions") or []}

        def condition(kind: str, value: str, extra: dict[str, str]) -> dict[str, Any]:
            old = previous_conditions.get(kind)
            moment = (old.get("lastTransitionTime") if old and old.get("status") == value
                      else rfc3339(self._clock.wall_now()))
            return {"type": kind, "status": value, "lastProbeTime": None,
                    "lastTransitionTime": moment, **extra}

        status["conditions"] = [
            condition("Initialized", "True", {}),
            condition("Ready", ready_text, not_ready),
            condition("ContainersReady", ready_text, not_ready),
            condition("PodScheduled", "True", {}),
        ]
        return status

    def _succeeded_status(self, pod: dict[str, Any]) -> dict[str, Any]:
        """Every container exited 0: phase Succeeded, Ready False (reason PodCompleted)."""
        status = copy.deepcopy(pod.get("status") or {})
        now = rfc3339(self._clock.wall_now())
        start = status.get("startTime") or now
        terminated = {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": start,
                                     "finishedAt": now}}
        spec = pod.get("spec") or {}
        status.update({
            "phase": "Succeeded", "startTime": start,
            "containerStatuses": [
                {"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": False,
                 "started": False, "restartCount": 0, "state": terminated}
                for c in spec.get("containers") or []],
            "conditions": [
                {"type": "Initialized", "status": "True", "reason": "PodCompleted",
                 "lastProbeTime": None, "lastTransitionTime": start},
                {"type": "Ready", "status": "False", "reason": "PodCompleted",
                 "lastProbeTime": None, "lastTransitionTime": now},
                {"type": "ContainersReady", "status": "False", "reason": "PodCompleted",
                 "lastProbeTime": None, "lastTransitionTime": now},
                {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                 "lastTransitionTime": start}],
        })
        if spec.get("initContainers"):
            status["initContainerStatuses"] = [
                {"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": False,
                 "restartCount": 0, "started": False, "state": terminated}
                for c in spec["initContainers"]]
        return status

    # -- Job --------------------------------------------------------------------------------

    def _sync_job(self, job: dict[str, Any]) -> None:
        namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
        pods = self._pods(namespace, job, include_terminating=True)
        phases = [(pod.get("status") or {}).get("phase") for pod in pods]
        succeeded = phases.count("Succeeded")
        active = sum(1 for pod, phase in zip(pods, phases, strict=True)
                     if phase not in ("Succeeded", "Failed") and not _terminating(pod))
        completions = int(job["spec"].get("completions") or 1)
        parallelism = int(job["spec"].get("parallelism") or 1)
        missing = min(parallelism, completions - succeeded) - active
        if missing > 0 and succeeded < completions:
            uid = job["metadata"]["uid"]
            for _ in range(missing):
                if not self._create_pod(job, job["spec"]["template"], None, {
                        "controller-uid": uid, "batch.kubernetes.io/controller-uid": uid}):
                    break
        old = job.get("status") or {}
        now = rfc3339(self._clock.wall_now())
        status: dict[str, Any] = {"startTime": old.get("startTime") or now, "active": active,
                                  "succeeded": succeeded, "ready": sum(
                                      1 for pod in pods if _pod_ready(pod))}
        status = {key: value for key, value in status.items() if value}
        if succeeded >= completions:
            finished = old.get("completionTime") or now
            status["completionTime"] = finished
            status["conditions"] = [
                {"type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": finished,
                 "lastTransitionTime": finished},
                {"type": "Complete", "status": "True", "lastProbeTime": finished,
                 "lastTransitionTime": finished}]
        if status != old:
            self._store.update(JOBS, namespace, name, {**job, "status": status},
                               subresource="status")

    def _available(self, pod: dict[str, Any], min_ready_seconds: float) -> bool:
        if _terminating(pod) or not _pod_ready(pod):
            return False
        since = self._pod_ready_since.get(pod["metadata"]["uid"])
        if since is None:
            return False
        return self._instant_ready or self._clock.elapsed() - since >= min_ready_seconds

    def _event(self, obj: dict[str, Any], kind: str, reason: str, message: str) -> None:
        # like client-go's event correlator: one event per repeating cause, not a flood
        key = (obj["metadata"]["uid"], reason, message)
        elapsed = self._clock.elapsed()
        if elapsed - self._events_sent.get(key, -EVENT_REPEAT_SECONDS) < EVENT_REPEAT_SECONDS:
            return
        self._events_sent[key] = elapsed
        now = rfc3339(self._clock.wall_now())
        namespace = obj["metadata"].get("namespace") or "default"
        with contextlib.suppress(ApiError):
            self._store.create(EVENTS, namespace, {
                "metadata": {"generateName": f"{obj['metadata']['name']}.",
                             "namespace": namespace},
                "involvedObject": {"apiVersion": obj["apiVersion"], "kind": obj["kind"],
                                   "name": obj["metadata"]["name"], "namespace": namespace,
                                   "uid": obj["metadata"]["uid"],
                                   "resourceVersion": obj["metadata"]["resourceVersion"]},
                "reason": reason, "message": message, "type": kind, "count": 1,
                "firstTimestamp": now, "lastTimestamp": now,
                "source": {"component": "simulated-controller-manager"},
                "reportingComponent": "simulated-controller-manager",
            })

    # -- Deployment / ReplicaSet ------------------------------------------------------------

    def _replica_sets(self, deployment: dict[str, Any]) -> list[dict[str, Any]]:
        namespace = deployment["metadata"]["namespace"]
        sets, _ = self._store.list(REPLICASETS, namespace,
                                   lambda rs: _owned_by(rs, deployment))
        return sorted(sets, key=lambda rs: int(
            rs["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision", "0")))

    def _set_replicas(self, rtype: ResourceType, obj: dict[str, Any], replicas: int) -> None:
        if obj["spec"].get("replicas") == replicas:
            return
        before = obj["spec"].get("replicas", 0)
        obj["spec"]["replicas"] = replicas
        updated = self._store.update(rtype, obj["metadata"]["namespace"],
                                     obj["metadata"]["name"], obj, internal=True)
        obj["metadata"] = updated["metadata"]
        owner_name = next((ref["name"] for ref in obj["metadata"].get("ownerReferences") or []),
                          None)
        if owner_name:
            owner = self._store.find(DEPLOYMENTS, obj["metadata"]["namespace"], owner_name)
            if owner:
                direction = "up" if replicas > before else "down"
                self._event(owner, "Normal", "ScalingReplicaSet",
                            f"Scaled {direction} replica set {obj['metadata']['name']} "
                            f"to {replicas} from {before}")

    def _sync_deployment(self, deployment: dict[str, Any]) -> None:
        spec = deployment["spec"]
        namespace, name = deployment["metadata"]["namespace"], deployment["metadata"]["name"]
        desired = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        hashed = template_hash(template)
        sets = self._replica_sets(deployment)
        new_set = next((rs for rs in sets if rs["metadata"].get("labels", {}).get(
            "pod-template-hash") == hashed), None)
        if spec.get("paused"):
            return
        highest = max((int(rs["metadata"].get("annotations", {}).get(
            "deployment.kubernetes.io/revision", "0")) for rs in sets), default=0)
        if new_set is None:
            rs_template = copy.deepcopy(template)
            rs_template.setdefault("metadata", {}).setdefault("labels", {})[
                "pod-template-hash"] = hashed
            selector = copy.deepcopy(spec.get("selector") or {})
            selector.setdefault("matchLabels", {})["pod-template-hash"] = hashed
            new_set = self._store.create(REPLICASETS, namespace, {
                "metadata": {
                    "name": f"{name}-{hashed}",
                    "labels": {**(template.get("metadata", {}).get("labels") or {}),
                               "pod-template-hash": hashed},
                    "annotations": {"deployment.kubernetes.io/revision": str(highest + 1),
                                    "deployment.kubernetes.io/desired-replicas": str(desired)},
                    "ownerReferences": [_owner_ref(deployment)],
                },
                "spec": {"replicas": 0, "selector": selector, "template": rs_template,
                         "minReadySeconds": spec.get("minReadySeconds", 0)},
            })
            self._progress_mark[deployment["metadata"]["uid"]] = self._clock.elapsed()
            self._set_deployment_revision(deployment, highest + 1)
            sets = [*sets, new_set]
        else:
            revision = int(new_set["metadata"].get("annotations", {}).get(
                "deployment.kubernetes.io/revision", "0"))
            if revision < highest:  # a rollback to an earlier template reuses its set
                new_set["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = str(
                    highest + 1)
                new_set = self._store.update(REPLICASETS, namespace, new_set["metadata"]["name"],
                                             new_set, internal=True)
                self._progress_mark[deployment["metadata"]["uid"]] = self._clock.elapsed()
                self._set_deployment_revision(deployment, highest + 1)
        old_sets = [rs for rs in sets if rs["metadata"]["uid"] != new_set["metadata"]["uid"]]
        min_ready = float(spec.get("minReadySeconds", 0))
        strategy = spec.get("strategy") or {}
        if strategy.get("type") == "Recreate":
            active_old = [rs for rs in old_sets if rs["spec"].get("replicas", 0) > 0]
            for rs in active_old:
                self._set_replicas(REPLICASETS, rs, 0)
            if active_old or any(self._pods(namespace, rs, include_terminating=True)
                                 for rs in old_sets):
                return
            self._set_replicas(REPLICASETS, new_set, desired)
            return
        rolling = strategy.get("rollingUpdate") or {}
        surge = resolve_int_or_percent(rolling.get("maxSurge"), desired, round_up=True)
        unavailable = resolve_int_or_percent(rolling.get("maxUnavailable"), desired,
                                             round_up=False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        total = sum(rs["spec"].get("replicas", 0) for rs in sets)
        new_replicas = new_set["spec"].get("replicas", 0)
        if new_replicas > desired:
            self._set_replicas(REPLICASETS, new_set, desired)
            return
        if new_replicas < desired:
            room = min(desired + surge - total, desired - new_replicas)
            if room > 0:
                self._set_replicas(REPLICASETS, new_set, new_replicas + room)
                return
        available_by_set = {
            rs["metadata"]["uid"]: sum(1 for pod in self._pods(namespace, rs)
                                       if self._available(pod, min_ready))
            for rs in sets
        }
        min_available = desired - unavailable
        new_unavailable = new_set["spec"].get("replicas", 0) - available_by_set[
            new_set["metadata"]["uid"]]
        budget = total - min_available - new_unavailable
        for rs in old_sets:  # first drop old pods that are not available anyway
            if budget <= 0:
                break
            unhealthy = rs["spec"].get("replicas", 0) - available_by_set[rs["metadata"]["uid"]]
            cut = min(max(unhealthy, 0), budget)
            if cut:
                self._set_replicas(REPLICASETS, rs, rs["spec"]["replicas"] - cut)
                budget -= cut
        available = sum(available_by_set.values())
        budget = available - min_available
        for rs in old_sets:
            if budget <= 0:
                break
            cut = min(rs["spec"].get("replicas", 0), budget)
            if cut:
                self._set_replicas(REPLICASETS, rs, rs["spec"]["replicas"] - cut)
                budget -= cut

    def _set_deployment_revision(self, deployment: dict[str, Any], revision: int) -> None:
        current = self._store.get(DEPLOYMENTS, deployment["metadata"]["namespace"],
                                  deployment["metadata"]["name"])
        annotations = current["metadata"].setdefault("annotations", {})
        annotations["deployment.kubernetes.io/revision"] = str(revision)
        current["metadata"].pop("resourceVersion", None)
        self._store.update(DEPLOYMENTS, current["metadata"]["namespace"],
                           current["metadata"]["name"], current, internal=True)

    def _sync_replica_set(self, replica_set: dict[str, Any]) -> None:
        namespace = replica_set["metadata"]["namespace"]
        desired = int(replica_set["spec"].get("replicas", 0))
        pods = self._pods(namespace, replica_set)
        if len(pods) < desired:
            for _ in range(desired - len(pods)):
                if not self._create_pod(replica_set, replica_set["spec"]["template"], None, {}):
                    break
        elif len(pods) > desired:
            victims = sorted(pods, key=lambda pod: (
                _pod_ready(pod), pod["metadata"]["creationTimestamp"]), reverse=False)
            not_ready = [pod for pod in victims if not _pod_ready(pod)]
            ready_newest_first = sorted((pod for pod in victims if _pod_ready(pod)),
                                        key=lambda pod: pod["metadata"]["creationTimestamp"],
                                        reverse=True)
            for pod in (not_ready + ready_newest_first)[: len(pods) - desired]:
                self.delete_pod(namespace, pod["metadata"]["name"])
        min_ready = float(replica_set["spec"].get("minReadySeconds", 0))
        status = {
            "replicas": len(pods),
            "fullyLabeledReplicas": len(pods),
            "readyReplicas": sum(1 for pod in pods if _pod_ready(pod)),
            "availableReplicas": sum(1 for pod in pods if self._available(pod, min_ready)),
            "observedGeneration": replica_set["metadata"].get("generation", 1),
        }
        status = {key: value for key, value in status.items() if value or key == "replicas"}
        if status != replica_set.get("status"):
            replica_set["status"] = status
            self._store.update(REPLICASETS, namespace, replica_set["metadata"]["name"],
                               replica_set, subresource="status")

    def _deployment_status(self, deployment: dict[str, Any]) -> None:
        spec = deployment["spec"]
        namespace, name = deployment["metadata"]["namespace"], deployment["metadata"]["name"]
        uid = deployment["metadata"]["uid"]
        desired = int(spec.get("replicas", 1))
        min_ready = float(spec.get("minReadySeconds", 0))
        hashed = template_hash(spec.get("template") or {})
        sets = self._replica_sets(deployment)
        new_set = next((rs for rs in sets if rs["metadata"].get("labels", {}).get(
            "pod-template-hash") == hashed), None)
        all_pods = [pod for rs in sets for pod in self._pods(namespace, rs)]
        new_pods = self._pods(namespace, new_set) if new_set else []
        available = sum(1 for pod in all_pods if self._available(pod, min_ready))
        old = deployment.get("status") or {}
        status: dict[str, Any] = {
            "observedGeneration": deployment["metadata"].get("generation", 1),
            "replicas": len(all_pods),
            "updatedReplicas": len(new_pods),
            "readyReplicas": sum(1 for pod in all_pods if _pod_ready(pod)),
            "availableReplicas": available,
            "unavailableReplicas": max(desired - available, 0),
        }
        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        max_unavailable = resolve_int_or_percent(rolling.get("maxUnavailable"), desired, False)
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            max_unavailable = desired
        now_text = rfc3339(self._clock.wall_now())
        conditions = {c["type"]: c for c in old.get("conditions") or []}

        def set_condition(kind: str, value: str, reason: str, message: str,
                          touch: bool = True) -> None:
            previous = conditions.get(kind)
            if previous and previous["status"] == value and previous["reason"] == reason \
                    and not touch:
                return
            transition = (previous["lastTransitionTime"]
                          if previous and previous["status"] == value else now_text)
            conditions[kind] = {"type": kind, "status": value, "reason": reason,
                                "message": message, "lastUpdateTime": now_text,
                                "lastTransitionTime": transition}

        if available >= desired - max_unavailable:
            set_condition("Available", "True", "MinimumReplicasAvailable",
                          "Deployment has minimum availability.", touch=False)
        else:
            set_condition("Available", "False", "MinimumReplicasUnavailable",
                          "Deployment does not have minimum availability.", touch=False)
        set_name = new_set["metadata"]["name"] if new_set else name
        progressing = conditions.get("Progressing")
        now = self._clock.elapsed()
        rollout_started = self._seen_template.get(uid) != hashed
        self._seen_template[uid] = hashed
        if rollout_started:
            self._progress_mark[uid] = now
        mark = self._progress_mark.setdefault(uid, now)
        complete = (status["updatedReplicas"] == desired and status["replicas"] == desired
                    and available == desired)
        made_progress = (
            status["updatedReplicas"] > old.get("updatedReplicas", 0)
            or status["readyReplicas"] > old.get("readyReplicas", 0)
            or status["availableReplicas"] > old.get("availableReplicas", 0)
            or (status["replicas"] - status["updatedReplicas"])
            < (old.get("replicas", 0) - old.get("updatedReplicas", 0))
        )
        deadline = spec.get("progressDeadlineSeconds")
        if spec.get("paused"):
            set_condition("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused",
                          touch=False)
        elif complete:
            if not progressing or progressing["reason"] != "NewReplicaSetAvailable":
                set_condition("Progressing", "True", "NewReplicaSetAvailable",
                              f'ReplicaSet "{set_name}" has successfully progressed.')
        elif (rollout_started or made_progress or progressing is None
              or progressing["reason"] in ("NewReplicaSetAvailable", "DeploymentPaused")):
            self._progress_mark[uid] = now
            if rollout_started or progressing is None:
                set_condition("Progressing", "True", "NewReplicaSetCreated",
                              f'Created new replica set "{set_name}"')
            else:
                set_condition("Progressing", "True", "ReplicaSetUpdated",
                              f'ReplicaSet "{set_name}" is progressing.')
        elif (progressing["reason"] != "ProgressDeadlineExceeded" and deadline is not None
              and now - mark > float(deadline)):
            set_condition("Progressing", "False", "ProgressDeadlineExceeded",
                          f'ReplicaSet "{set_name}" has timed out progressing.')
        status["conditions"] = [conditions[kind] for kind in ("Available", "Progressing")
                                if kind in conditions]
        status = {key: value for key, value in status.items()
                  if value or key in ("observedGeneration", "conditions")}
        if status != old:
            current = self._store.get(DEPLOYMENTS, namespace, name)
            if current["metadata"].get("generation") != status["observedGeneration"]:
                return  # the spec moved on meanwhile; next tick
            current["status"] = status
            self._store.update(DEPLOYMENTS, namespace, name, current, subresource="status")

    # -- StatefulSet ------------------------------------------------------------------------

    def _sync_stateful_set(self, stateful_set: dict[str, Any]) -> None:
        spec = stateful_set["spec"]
        namespace, name = stateful_set["metadata"]["namespace"], stateful_set["metadata"]["name"]
        desired = int(spec.get("replicas", 1))
        template = spec.get("template") or {}
        update_revision = f"{name}-{template_hash(template)}"
        self._sts_templates[update_revision] = template
        old = stateful_set.get("status") or {}
        current_revision = old.get("currentRevision") or update_revision
        strategy = spec.get("updateStrategy") or {"type": "RollingUpdate"}
        partition = int((strategy.get("rollingUpdate") or {}).get("partition", 0) or 0)
        min_ready = float(spec.get("minReadySeconds", 0))
        every_pod = self._pods(namespace, stateful_set, include_terminating=True)
        by_ordinal = {int(pod["metadata"]["name"].rsplit("-", 1)[1]): pod for pod in every_pod}

        def revision_of(pod: dict[str, Any]) -> str:
            return pod["metadata"].get("labels", {}).get("controller-revision-hash", "")

        def template_for(ordinal: int) -> tuple[str, dict[str, Any]]:
            # kubernetes pkg/controller/statefulset/stateful_set_utils.go
            # newVersionedStatefulSetPod: only a RollingUpdate keeps an ordinal below the
            # partition on the current revision; a pod recreated under OnDelete (deleted by
            # someone) gets the update revision
            if (strategy.get("type", "RollingUpdate") == "RollingUpdate"
                    and ordinal < partition):
                revision = current_revision
            else:
                revision = update_revision
            return revision, self._sts_templates.get(revision, template)

        acted = False
        for ordinal in range(desired):
            pod = by_ordinal.get(ordinal)
            if pod is None:
                revision, pod_template = template_for(ordinal)
                pod_name = f"{name}-{ordinal}"
                self._create_pod(stateful_set, pod_template, pod_name, {
                    "controller-revision-hash": revision,
                    "statefulset.kubernetes.io/pod-name": pod_name,
                    "apps.kubernetes.io/pod-index": str(ordinal)})
                acted = True
                break
            if _terminating(pod) or not _pod_ready(pod):
                acted = True
                break  # OrderedReady: wait for this ordinal
        if not acted:
            for ordinal in sorted((o for o in by_ordinal if o >= desired), reverse=True):
                pod = by_ordinal[ordinal]
                if not _terminating(pod):
                    self.delete_pod(namespace, pod["metadata"]["name"])
                acted = True
                break
        if not acted and strategy.get("type", "RollingUpdate") == "RollingUpdate":
            for ordinal in sorted(by_ordinal, reverse=True):
                pod = by_ordinal[ordinal]
                if ordinal < desired and ordinal >= partition \
                        and revision_of(pod) != update_revision:
                    self.delete_pod(namespace, pod["metadata"]["name"])
                    break
        pods = self._pods(namespace, stateful_set)
        updated = sum(1 for pod in pods if revision_of(pod) == update_revision)
        current = sum(1 for pod in pods if revision_of(pod) == current_revision)
        if updated == desired == len(pods) and all(_pod_ready(pod) for pod in pods):
            current_revision, current = update_revision, updated
        status = {
            "observedGeneration": stateful_set["metadata"].get("generation", 1),
            "replicas": len(pods),
            "readyReplicas": sum(1 for pod in pods if _pod_ready(pod)),
            "availableReplicas": sum(1 for pod in pods if self._available(pod, min_ready)),
            "currentReplicas": current,
            "updatedReplicas": updated,
            "currentRevision": current_revision,
            "updateRevision": update_revision,
            "collisionCount": 0,
        }
        if status != old:
            latest = self._store.get(STATEFULSETS, namespace, name)
            latest["status"] = status
            self._store.update(STATEFULSETS, namespace, name, latest, subresource="status")

    # -- DaemonSet --------------------------------------------------------------------------

    def _sync_daemon_set(self, daemon_set: dict[str, Any]) -> None:
        spec = daemon_set["spec"]
        namespace, name = daemon_set["metadata"]["namespace"], daemon_set["metadata"]["name"]
        template = spec.get("template") or {}
        hashed = template_hash(template)
        nodes = sorted(n["metadata"]["name"] for n in self._store.list(NODES)[0])
        node_selector = selector_from_spec({"matchLabels": (template.get("spec") or {}).get(
            "nodeSelector") or {}})
        nodes = [node for node in nodes if node_selector.matches(
            self._store.get(NODES, None, node)["metadata"].get("labels") or {})]
        min_ready = float(spec.get("minReadySeconds", 0))
        every_pod = self._pods(namespace, daemon_set, include_terminating=True)
        on_node: dict[str, list[dict[str, Any]]] = {node: [] for node in nodes}
        for pod in every_pod:
            on_node.setdefault(pod["spec"].get("nodeName", ""), []).append(pod)
        generation = str(daemon_set["metadata"].get("generation", 1))
        extra = {"controller-revision-hash": hashed, "pod-template-generation": generation}
        for node in nodes:
            if not [pod for pod in on_node[node] if not _terminating(pod)] and not on_node[node]:
                self._create_pod(daemon_set, template, None, extra, node=node)
        strategy = spec.get("updateStrategy") or {"type": "RollingUpdate"}
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            max_unavailable = resolve_int_or_percent(
                (strategy.get("rollingUpdate") or {}).get("maxUnavailable", 1), len(nodes),
                round_up=False) or 1
            unavailable_nodes = sum(
                1 for node in nodes
                if not any(self._available(pod, min_ready) for pod in on_node[node]))
            budget = max_unavailable - unavailable_nodes
            for node in nodes:
                live = [pod for pod in on_node[node] if not _terminating(pod)]
                old_pods = [pod for pod in live if pod["metadata"].get("labels", {}).get(
                    "controller-revision-hash") != hashed]
                if not old_pods:
                    continue
                if any(not self._available(pod, min_ready) for pod in old_pods):
                    for pod in old_pods:
                        self.delete_pod(namespace, pod["metadata"]["name"])
                elif budget > 0:
                    for pod in old_pods:
                        self.delete_pod(namespace, pod["metadata"]["name"])
                    budget -= 1
        pods = [pod for pod in self._pods(namespace, daemon_set)]
        scheduled = {pod["spec"].get("nodeName") for pod in pods}
        status = {
            "observedGeneration": daemon_set["metadata"].get("generation", 1),
            "desiredNumberScheduled": len(nodes),
            "currentNumberScheduled": len(scheduled & set(nodes)),
            "numberMisscheduled": 0,
            "numberReady": sum(1 for pod in pods if _pod_ready(pod)),
            "numberAvailable": sum(1 for pod in pods if self._available(pod, min_ready)),
            "updatedNumberScheduled": sum(1 for pod in pods if pod["metadata"].get(
                "labels", {}).get("controller-revision-hash") == hashed),
        }
        status["numberUnavailable"] = max(len(nodes) - status["numberAvailable"], 0)
        if not status["numberUnavailable"]:
            del status["numberUnavailable"]
        if status != daemon_set.get("status"):
            latest = self._store.get(DAEMONSETS, namespace, name)
            latest["status"] = status
            self._store.update(DAEMONSETS, namespace, name, latest, subresource="status")
