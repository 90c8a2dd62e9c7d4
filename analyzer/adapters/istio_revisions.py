"""Reads every control-plane revision and what uses it, cluster-wide, and deletes one.

Why it exists: the inventory (``canary-analyzer revisions``) and the prune
(``canary-analyzer prune``) need more of the cluster than an upgrade does (every namespace's
pods and workloads, a revision's RBAC, autoscaler and disruption budget) and the one write an
upgrade never makes: a DELETE. The decisions are pure (analyzer/core/revisions.py); this
module only lists and deletes through the official client, on top of ``KubernetesCluster``
(its retries, timeouts and error mapping).

Deletes are sent as ``istioctl uninstall`` sends them (istio/istio
operator/pkg/uninstall/prune.go ``DeleteResource``: ``propagationPolicy: Foreground``; an
object already gone is not an error), with a ``uid`` precondition so an object replaced since
it was listed is never deleted in its place (HTTP 409, reported). Namespaced kinds are listed
and deleted only in the control-plane namespace, cluster-scoped kinds by label only: the
chart's ``prune`` block grants no more (docs/install.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from kubernetes import client as kube
from kubernetes.client.exceptions import ApiException

from analyzer.adapters.kubernetes import KubernetesCluster, controller_of, pod_revision
from analyzer.core.ports import ClusterError
from analyzer.core.reach import NamespaceInfo, PodInfo
from analyzer.core.revisions import (
    PRUNED_KINDS,
    REV_LABEL,
    TAG_LABEL,
    ControlPlaneObject,
    Istiod,
    KindRef,
    PinnedWorkload,
    RevisionInputs,
    revision_selector,
)

GATEWAY_TEMPLATE = "inject.istio.io/templates"
PROPAGATION = "Foreground"


class ObjectReplacedError(ClusterError):
    """A delete's ``uid`` precondition failed: the object was replaced since it was listed."""


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _snake(kind: str) -> str:
    out = ""
    for char in kind:
        out += f"_{char.lower()}" if char.isupper() and out else char.lower()
    return out


class IstioRevisions:
    """Revision inventory inputs, a revision's objects, and their deletion."""

    def __init__(self, cluster: KubernetesCluster, control_plane_namespace: str) -> None:
        self.cluster = cluster
        self.namespace = control_plane_namespace
        api = cluster.api_client
        self._apis: dict[str, Any] = {
            "": kube.CoreV1Api(api), "apps": kube.AppsV1Api(api),
            "admissionregistration.k8s.io": kube.AdmissionregistrationV1Api(api),
            "autoscaling": kube.AutoscalingV2Api(api), "policy": kube.PolicyV1Api(api),
            "rbac.authorization.k8s.io": kube.RbacAuthorizationV1Api(api),
        }

    # -- plumbing ----------------------------------------------------------------------------

    def _items(self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any
               ) -> list[dict[str, Any]]:
        def call() -> list[dict[str, Any]]:
            response = method(*args, _preload_content=False,
                              _request_timeout=self.cluster.timeout, **kwargs)
            return json.loads(response.data or b"{}").get("items") or []

        return self.cluster.retry(what, call)

    def _method(self, ref: KindRef, verb: str) -> Callable[..., Any]:
        api = self._apis[ref.group]
        scope = "namespaced_" if ref.namespaced else ""
        return getattr(api, f"{verb}_{scope}{_snake(ref.kind)}")

    # -- the inventory's inputs ----------------------------------------------------------------

    def inputs(self) -> RevisionInputs:
        """Everything ``core.revisions.inventory`` needs, read cluster-wide."""
        apps, core = self._apis["apps"], self._apis[""]
        istiods = []
        for deployment in self._items("list istiod Deployments",
                                      apps.list_deployment_for_all_namespaces,
                                      label_selector="app=istiod"):
            meta, status = _meta(deployment), deployment.get("status") or {}
            istiods.append(Istiod(
                namespace=meta.get("namespace", ""), name=meta.get("name", ""),
                revision=(meta.get("labels") or {}).get(REV_LABEL, "default"),
                ready=int(status.get("readyReplicas") or 0),
                replicas=int((deployment.get("spec") or {}).get("replicas", 1))))
        injectors, tags = [], []
        for mwc in self._items("list revision webhooks",
                               self._apis["admissionregistration.k8s.io"]
                               .list_mutating_webhook_configuration, label_selector=REV_LABEL):
            labels = _meta(mwc).get("labels") or {}
            if TAG_LABEL in labels:
                tags.append((labels[TAG_LABEL], labels[REV_LABEL]))
            else:
                injectors.append((_meta(mwc).get("name", ""), labels[REV_LABEL]))
        namespaces = tuple(
            NamespaceInfo(_meta(ns).get("name", ""), dict(_meta(ns).get("labels") or {}))
            for ns in self._items("list namespaces", core.list_namespace))
        workloads = []
        for kind, method in (("Deployment", apps.list_deployment_for_all_namespaces),
                             ("StatefulSet", apps.list_stateful_set_for_all_namespaces),
                             ("DaemonSet", apps.list_daemon_set_for_all_namespaces)):
            for obj in self._items(f"list {kind}s", method):
                template = _meta((obj.get("spec") or {}).get("template") or {})
                value = (template.get("labels") or {}).get(REV_LABEL)
                if value and (_meta(obj).get("labels") or {}).get("app") != "istiod":
                    templates = (template.get("annotations") or {}).get(GATEWAY_TEMPLATE, "")
                    workloads.append(PinnedWorkload(
                        _meta(obj).get("namespace", ""), kind, _meta(obj).get("name", ""),
                        value, gateway="gateway" in templates.split(",")))
        owners = {(_meta(rs).get("namespace"), _meta(rs).get("name")): controller_of(rs)
                  for rs in self._items("list ReplicaSets",
                                        apps.list_replica_set_for_all_namespaces)}
        pods = []
        for pod in self._items("list pods", core.list_pod_for_all_namespaces):
            revision = pod_revision(pod)
            if revision is None:
                continue
            meta = _meta(pod)
            owner = controller_of(pod)
            if owner is not None and owner[0] == "ReplicaSet":
                owner = owners.get((meta.get("namespace"), owner[1])) or owner
            pods.append(PodInfo(
                namespace=meta.get("namespace", ""), name=meta.get("name", ""),
                owner_kind=owner[0] if owner else None, owner_name=owner[1] if owner else None,
                revision=revision, phase=(pod.get("status") or {}).get("phase", "Pending"),
                terminating="deletionTimestamp" in meta))
        return RevisionInputs(tuple(istiods), tuple(injectors), tuple(tags), namespaces,
                              tuple(workloads), tuple(pods))

    # -- the prune ------------------------------------------------------------------------------

    def revision_objects(self, revision: str) -> list[ControlPlaneObject]:
        """The revision's own objects (labelled, tags excluded) of every pruned kind:
        namespaced ones in the control-plane namespace, cluster-scoped ones cluster-wide."""
        selector = revision_selector(revision)
        found = []
        for ref in PRUNED_KINDS:
            args = (self.namespace,) if ref.namespaced else ()
            for obj in self._items(f"list {ref.plural} of revision {revision}",
                                   self._method(ref, "list"), *args, label_selector=selector):
                meta = _meta(obj)
                found.append(ControlPlaneObject(
                    kind=ref.kind, name=meta.get("name", ""), namespace=meta.get("namespace"),
                    uid=meta.get("uid", ""), labels=dict(meta.get("labels") or {}),
                    annotations=dict(meta.get("annotations") or {})))
        return found

    def delete(self, obj: ControlPlaneObject) -> bool:
        """Delete one object with ``propagationPolicy: Foreground`` and its ``uid`` as a
        precondition; False when it was already gone."""
        ref = next(r for r in PRUNED_KINDS if r.kind == obj.kind)
        method = self._method(ref, "delete")
        args = (obj.name, obj.namespace) if ref.namespaced else (obj.name,)
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": PROPAGATION,
                "preconditions": {"uid": obj.uid}}

        def call() -> bool:
            try:
                method(*args, body=body, _preload_content=False,
                       _request_timeout=self.cluster.timeout)
            except ApiException as error:
                if error.status == 404:
                    return False
                if error.status == 409:
                    raise ObjectReplacedError(
                        f"{obj.describe()}: changed since it was checked (uid {obj.uid}); "
                        "nothing more deleted") from None
                raise
            return True

        return self.cluster.retry(f"delete {obj.describe()}", call)
