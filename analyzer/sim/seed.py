"""The objects a scenario's cluster starts with, shaped like Istio's charts make them.

istiod Deployments/Services per revision, the revisions' injector MWCs
(``istio-sidecar-injector-<rev>``), tag MWCs (``istio-revision-tag-<tag>``: 4 webhooks for
``default``, 2 otherwise), the ``istiod-default-validator`` VWC, mesh ConfigMaps, the
ingress gateway, nodes, and the application namespaces with their workloads and Services.
Source of the shapes: istio/istio manifests/charts/istio-control/istio-discovery templates.
"""

from __future__ import annotations

import uuid
from typing import Any

from analyzer.sim.scenario import (
    BarePodSpec,
    JobSpec,
    NamespaceSpec,
    RolloutSpec,
    Scenario,
    WorkloadSpec,
)

ISTIO_SYSTEM = "istio-system"
_INJECT_RULES = [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                  "resources": ["pods"], "scope": "*"}]
_NOT_DISABLED = {"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]}


def _webhook(name: str, revision: str, namespace_selector: dict[str, Any],
             object_selector: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "clientConfig": {
            "service": {"name": f"istiod-{revision}", "namespace": ISTIO_SYSTEM,
                        "path": "/inject", "port": 443},
            "caBundle": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==",
        },
        "rules": _INJECT_RULES,
        "failurePolicy": "Fail",
        "matchPolicy": "Equivalent",
        "sideEffects": "None",
        "reinvocationPolicy": "Never",
        "admissionReviewVersions": ["v1beta1", "v1"],
        "timeoutSeconds": 10,
        "namespaceSelector": namespace_selector,
        "objectSelector": object_selector,
    }


def injector_webhooks(selector_value: str, revision: str, include_default: bool
                      ) -> list[dict[str, Any]]:
    """The chart's injector webhooks selecting ``istio.io/rev=<selector_value>``."""
    webhooks = [
        _webhook("rev.namespace.sidecar-injector.istio.io", revision,
                 {"matchExpressions": [
                     {"key": "istio.io/rev", "operator": "In", "values": [selector_value]},
                     {"key": "istio-injection", "operator": "DoesNotExist"}]},
                 {"matchExpressions": [_NOT_DISABLED]}),
        _webhook("rev.object.sidecar-injector.istio.io", revision,
                 {"matchExpressions": [
                     {"key": "istio.io/rev", "operator": "DoesNotExist"},
                     {"key": "istio-injection", "operator": "DoesNotExist"}]},
                 {"matchExpressions": [
                     _NOT_DISABLED,
                     {"key": "istio.io/rev", "operator": "In", "values": [selector_value]}]}),
    ]
    if include_default:
        webhooks += [
            _webhook("namespace.sidecar-injector.istio.io", revision,
                     {"matchExpressions": [
                         {"key": "istio-injection", "operator": "In", "values": ["enabled"]}]},
                     {"matchExpressions": [_NOT_DISABLED]}),
            _webhook("object.sidecar-injector.istio.io", revision,
                     {"matchExpressions": [
                         {"key": "istio-injection", "operator": "DoesNotExist"},
                         {"key": "istio.io/rev", "operator": "DoesNotExist"}]},
                     {"matchExpressions": [
                         {"key": "sidecar.istio.io/inject", "operator": "In",
                          "values": ["true"]},
                         {"key": "istio.io/rev", "operator": "DoesNotExist"}]}),
        ]
    return webhooks


def revision_injector_mwc(revision: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": f"istio-sidecar-injector-{revision}",
            "labels": {"app": "sidecar-injector", "istio.io/rev": revision,
                       "release": "istio", "install.operator.istio.io/owning-resource":
                       "unknown", "operator.istio.io/component": "Pilot"},
        },
        "webhooks": injector_webhooks(revision, revision, include_default=False),
    }


def tag_mwc(tag: str, revision: str) -> dict[str, Any]:
    """As ``istioctl tag set`` generates it (user-managed: no operator labels)."""
    return {
        "metadata": {
            "name": f"istio-revision-tag-{tag}",
            "labels": {"app": "sidecar-injector", "istio.io/rev": revision, "istio.io/tag": tag},
        },
        "webhooks": injector_webhooks(tag, revision, include_default=tag == "default"),
    }


def _validating_webhook(revision: str) -> dict[str, Any]:
    return {
        "name": "validation.istio.io",
        "clientConfig": {"service": {"name": f"istiod-{revision}", "namespace": ISTIO_SYSTEM,
                                     "path": "/validate", "port": 443}},
        "rules": [{"operations": ["CREATE", "UPDATE"],
                   "apiGroups": ["security.istio.io", "networking.istio.io",
                                 "telemetry.istio.io", "extensions.istio.io"],
                   "apiVersions": ["*"], "resources": ["*"], "scope": "*"}],
        "failurePolicy": "Ignore",
        "sideEffects": "None",
        "admissionReviewVersions": ["v1beta1", "v1"],
        "timeoutSeconds": 10,
        "objectSelector": {},
        "namespaceSelector": {},
    }


def default_validator_vwc(revision: str) -> dict[str, Any]:
    return {
        "metadata": {"name": "istiod-default-validator",
                     "labels": {"app": "istiod", "istio": "istiod", "istio.io/rev": revision,
                                "istio.io/tag": "default"}},
        "webhooks": [_validating_webhook(revision)],
    }


def revision_validator_vwc(revision: str) -> dict[str, Any]:
    return {
        "metadata": {"name": f"istio-validator-{revision}-{ISTIO_SYSTEM}",
                     "labels": {"app": "istiod", "istio": "istiod", "istio.io/rev": revision}},
        "webhooks": [_validating_webhook(revision)],
    }


def istiod_deployment(revision: str, version: str, hub: str, replicas: int) -> dict[str, Any]:
    labels = {"app": "istiod", "istio.io/rev": revision, "istio": "pilot"}
    return {
        "metadata": {"name": f"istiod-{revision}", "namespace": ISTIO_SYSTEM,
                     "labels": {**labels, "operator.istio.io/component": "Pilot"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "istiod", "istio.io/rev": revision}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": "100%", "maxUnavailable": "25%"}},
            "template": {
                "metadata": {"labels": {**labels, "sidecar.istio.io/inject": "false"},
                             "annotations": {"sidecar.istio.io/inject": "false"}},
                "spec": {"serviceAccountName": f"istiod-{revision}",
                         "containers": [{"name": "discovery",
                                         "image": f"{hub}/pilot:{version}",
                                         "ports": [{"containerPort": 15017},
                                                   {"containerPort": 15010}]}]},
            },
        },
    }


def istiod_service(revision: str) -> dict[str, Any]:
    return {
        "metadata": {"name": f"istiod-{revision}", "namespace": ISTIO_SYSTEM,
                     "labels": {"app": "istiod", "istio": "pilot", "istio.io/rev": revision}},
        "spec": {"type": "ClusterIP",
                 "selector": {"app": "istiod", "istio.io/rev": revision},
                 "ports": [{"name": "grpc-xds", "port": 15010, "protocol": "TCP"},
                           {"name": "https-dns", "port": 15012, "protocol": "TCP"},
                           {"name": "https-webhook", "port": 443, "targetPort": 15017,
                            "protocol": "TCP"},
                           {"name": "http-monitoring", "port": 15014, "protocol": "TCP"}]},
    }


def istio_configmaps(revision: str) -> list[dict[str, Any]]:
    labels = {"istio.io/rev": revision, "release": "istio"}
    return [
        {"metadata": {"name": f"istio-{revision}", "namespace": ISTIO_SYSTEM, "labels": labels},
         "data": {"mesh": "defaultConfig:\n  discoveryAddress: "
                          f"istiod-{revision}.{ISTIO_SYSTEM}.svc:15012\n",
                  "meshNetworks": "networks: {}"}},
        {"metadata": {"name": f"istio-sidecar-injector-{revision}", "namespace": ISTIO_SYSTEM,
                      "labels": labels},
         "data": {"values": "{}", "config": "policy: enabled\n"}},
    ]


def _rolling_strategy(workload: WorkloadSpec) -> dict[str, Any]:
    if workload.kind == "Deployment":
        if workload.strategy == "Recreate":
            return {"strategy": {"type": "Recreate"}}
        return {"strategy": {"type": "RollingUpdate", "rollingUpdate": {
            "maxSurge": workload.max_surge, "maxUnavailable": workload.max_unavailable}}}
    if workload.kind == "StatefulSet":
        if workload.strategy == "OnDelete":
            return {"updateStrategy": {"type": "OnDelete"}}
        return {"updateStrategy": {"type": "RollingUpdate",
                                   "rollingUpdate": {"partition": workload.partition}}}
    if workload.strategy == "OnDelete":
        return {"updateStrategy": {"type": "OnDelete"}}
    return {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {
        "maxUnavailable": workload.max_unavailable if workload.max_unavailable else 1,
        "maxSurge": 0}}}


def application_workload(namespace: str, workload: WorkloadSpec) -> dict[str, Any]:
    labels = {"app": workload.name, "version": "v1"}
    template_labels = {**labels, **workload.pod_labels}
    if not workload.inject:
        template_labels["sidecar.istio.io/inject"] = "false"
    template_metadata: dict[str, Any] = {"labels": template_labels}
    if workload.pod_annotations:
        template_metadata["annotations"] = dict(workload.pod_annotations)
    pod_spec_extra: dict[str, Any] = {"hostNetwork": True} if workload.host_network else {}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": workload.name}},
        "template": {
            "metadata": template_metadata,
            "spec": {**pod_spec_extra, "containers": [{
                "name": workload.name,
                "image": f"registry.example.com/{namespace}/{workload.name}:1.0.0",
                "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
            }]},
        },
        "minReadySeconds": int(workload.min_ready.total_seconds()),
        "revisionHistoryLimit": 10,
        **_rolling_strategy(workload),
    }
    if workload.kind != "DaemonSet":
        spec["replicas"] = workload.replicas
    if workload.kind == "Deployment":
        spec["progressDeadlineSeconds"] = int(workload.progress_deadline.total_seconds())
    if workload.kind == "StatefulSet":
        spec["serviceName"] = workload.name
        spec["podManagementPolicy"] = "OrderedReady"
    return {"metadata": {"name": workload.name, "namespace": namespace, "labels": labels},
            "spec": spec}


def _batch_container(name: str, namespace: str, seconds: float | None) -> dict[str, Any]:
    """A container that exits 0 after ``seconds`` (None: runs until stopped); the simulated
    kubelet reads the ``sleep`` argument to know when the process ends."""
    return {"name": name, "image": f"registry.example.com/{namespace}/{name}:1.0.0",
            "command": ["sleep", "infinity" if seconds is None else f"{seconds:g}"]}


def job_object(namespace: str, job: JobSpec, cron_uid: str | None = None) -> dict[str, Any]:
    """A batch/v1 Job as kubectl or the CronJob controller creates it (one pod, no retries);
    with ``cron_uid`` owned by its CronJob (pkg/controller/cronjob/utils.go getJobFromTemplate2
    in kubernetes/kubernetes sets the controller ownerReference)."""
    seconds = 0.0 if job.state == "completed" else (
        job.runs_for.total_seconds() if job.runs_for is not None else None)
    metadata: dict[str, Any] = {"name": job.name, "namespace": namespace,
                                "labels": {"job-name": job.name}}
    if job.cron_job is not None and cron_uid is not None:
        metadata["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "CronJob",
                                        "name": job.cron_job, "uid": cron_uid,
                                        "controller": True, "blockOwnerDeletion": True}]
    return {
        "metadata": metadata,
        "spec": {
            "parallelism": 1, "completions": 1, "backoffLimit": 6,
            "template": {
                "metadata": {"labels": {"job-name": job.name,
                                        "batch.kubernetes.io/job-name": job.name,
                                        **job.pod_labels}},
                "spec": {"restartPolicy": "Never",
                         "containers": [_batch_container(job.name, namespace, seconds)]},
            },
        },
    }


def cron_job_object(namespace: str, job: JobSpec) -> dict[str, Any]:
    """The batch/v1 CronJob a scenario Job came from (the simulator never schedules more)."""
    assert job.cron_job is not None
    return {
        "metadata": {"name": job.cron_job, "namespace": namespace},
        "spec": {"schedule": job.schedule, "concurrencyPolicy": "Allow", "suspend": False,
                 "jobTemplate": {"spec": {"template": {"spec": {
                     "restartPolicy": "Never",
                     "containers": [_batch_container(job.cron_job, namespace, None)]}}}}},
    }


def foreign_uid(kind: str, namespace: str, name: str) -> str:
    """A stable uid for an object of a kind this API does not serve (an operator's)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sim://{kind}/{namespace}/{name}"))


def bare_pod(namespace: str, pod: BarePodSpec) -> dict[str, Any]:
    """A pod created directly (``kubectl run``), or by an operator when ``owner`` is set."""
    metadata: dict[str, Any] = {"name": pod.name, "namespace": namespace,
                                "labels": {"run": pod.name, **pod.labels}}
    if pod.annotations:
        metadata["annotations"] = dict(pod.annotations)
    if pod.owner is not None:
        metadata["ownerReferences"] = [{
            "apiVersion": pod.owner.api_version, "kind": pod.owner.kind,
            "name": pod.owner.name, "uid": foreign_uid(pod.owner.kind, namespace, pod.owner.name),
            "controller": True, "blockOwnerDeletion": True}]
    spec: dict[str, Any] = {"restartPolicy": "Always", "containers": [{
        "name": pod.name, "image": f"registry.example.com/{namespace}/{pod.name}:1.0.0"}]}
    if pod.host_network:
        spec["hostNetwork"] = True
    return {"metadata": metadata, "spec": spec}


def rollout_replica_set(namespace: str, rollout: RolloutSpec, owner_uid: str
                        ) -> dict[str, Any]:
    """The ReplicaSet an Argo Rollout (argoproj.io/v1alpha1) manages: apps/v1, owned by the
    Rollout, pods labelled ``rollouts-pod-template-hash`` (argoproj/argo-rollouts
    utils/defaults ``DefaultRolloutUniqueLabelKey``)."""
    labels = {"app": rollout.name, "version": "v1", "rollouts-pod-template-hash": "6f7d9c8b5"}
    return {
        "metadata": {
            "name": f"{rollout.name}-6f7d9c8b5", "namespace": namespace, "labels": labels,
            "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                                 "name": rollout.name, "uid": owner_uid, "controller": True,
                                 "blockOwnerDeletion": True}],
        },
        "spec": {
            "replicas": rollout.replicas,
            "selector": {"matchLabels": {"app": rollout.name,
                                         "rollouts-pod-template-hash": "6f7d9c8b5"}},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                "name": rollout.name,
                "image": f"registry.example.com/{namespace}/{rollout.name}:1.0.0",
                "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}]}]}},
        },
    }


def application_service(namespace: str, workload: WorkloadSpec) -> dict[str, Any]:
    return {"metadata": {"name": workload.name, "namespace": namespace,
                         "labels": {"app": workload.name}},
            "spec": {"type": "ClusterIP", "selector": {"app": workload.name},
                     "ports": [{"name": "http", "port": 80, "targetPort": 8080,
                                "protocol": "TCP"}]}}


def gateway_deployment(scenario: Scenario) -> dict[str, Any]:
    gateway = scenario.gateway
    assert gateway is not None
    labels = {"app": gateway.name, "istio": "ingressgateway"}
    return {
        "metadata": {"name": gateway.name, "namespace": gateway.namespace, "labels": labels},
        "spec": {
            "replicas": gateway.replicas,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "progressDeadlineSeconds": 600,
            "template": {
                "metadata": {"labels": {**labels, "sidecar.istio.io/inject": "true"},
                             "annotations": {"inject.istio.io/templates": "gateway"}},
                "spec": {"containers": [{
                    "name": "istio-proxy", "image": "auto",
                    "ports": [{"containerPort": 8080, "name": "http2", "protocol": "TCP"},
                              {"containerPort": 15021, "name": "status-port"}]}]},
            },
        },
    }


def gateway_service(scenario: Scenario) -> dict[str, Any]:
    gateway = scenario.gateway
    assert gateway is not None
    labels = {"app": gateway.name, "istio": "ingressgateway"}
    return {"metadata": {"name": gateway.name, "namespace": gateway.namespace,
                         "labels": labels},
            "spec": {"type": "LoadBalancer", "selector": labels,
                     "ports": [{"name": "http2", "port": 80, "targetPort": 8080},
                               {"name": "status-port", "port": 15021}]}}


def namespace_object(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": name,
                         "labels": {"kubernetes.io/metadata.name": name, **labels}},
            "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


def node_object(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                  "kubernetes.io/os": "linux"}},
            "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": "True",
                                       "reason": "KubeletReady"}]}}


def gateway_namespace_labels(scenario: Scenario) -> dict[str, str]:
    gateway = scenario.gateway
    if gateway is not None and gateway.labels is not None:
        return dict(gateway.labels)
    return scenario.namespace_labels(NamespaceSpec(name="istio-ingress"))
