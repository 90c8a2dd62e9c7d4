"""The objects a scenario's cluster starts with, beside the Istio control plane.

The ingress gateway, nodes, and the application namespaces with their workloads and
Services. The control plane (istiods, webhooks, tag Services, validators) comes from
``istio_objects``, loaded from what Istio's charts render.
"""

from __future__ import annotations

from typing import Any

from analyzer.sim.scenario import NamespaceSpec, Scenario, WorkloadSpec

ISTIO_SYSTEM = "istio-system"


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
    template_labels = dict(labels)
    if not workload.inject:
        template_labels["sidecar.istio.io/inject"] = "false"
    spec: dict[str, Any] = {
        "selector": {"matchLabels": {"app": workload.name}},
        "template": {
            "metadata": {"labels": template_labels},
            "spec": {"containers": [{
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
