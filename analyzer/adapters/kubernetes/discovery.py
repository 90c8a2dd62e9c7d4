"""What the cluster has before anything moves: control-plane revisions, workloads, and the
inputs of a tag's reach.

Why it exists: preflight, the plan and ``revisions`` read the cluster without writing; the
reading is gathered here (istiod Deployments and injector webhooks for revisions; the tag's
webhooks, namespaces, workloads, ReplicaSets and pods that ``core.reach`` evaluates).
"""

from __future__ import annotations

from analyzer.adapters.kubernetes.api import ClusterApi
from analyzer.adapters.kubernetes.objects import controller_of, labels_of, meta_of
from analyzer.adapters.kubernetes.pods import pod_revision
from analyzer.adapters.kubernetes.webhooks import TAG_LABEL, tag_webhook_name
from analyzer.core.ports import ClusterError, ClusterNotFoundError, RevisionInfo
from analyzer.core.reach import (
    NamespaceInfo,
    PodInfo,
    ReachInputs,
    SelectorError,
    Webhook,
    WorkloadInfo,
)
from analyzer.core.upgrade import REVISION_LABEL, Target


class Discovery(ClusterApi):
    """Revisions, workloads and a tag's reach, read."""

    def revisions(self) -> dict[str, RevisionInfo]:
        deployments = self._items(
            "list istiod deployments",
            self.apps.list_namespaced_deployment,
            self.istio_namespace,
            label_selector="app=istiod",
        )
        injectors = {
            labels_of(mwc).get(REVISION_LABEL)
            for mwc in self._items(
                "list injector webhooks",
                self.admission.list_mutating_webhook_configuration,
                label_selector=f"{REVISION_LABEL},!{TAG_LABEL}",
            )
        }
        found: dict[str, RevisionInfo] = {}
        for deployment in deployments:
            revision = labels_of(deployment).get(REVISION_LABEL, "default")
            status = deployment.get("status") or {}
            wanted = (deployment.get("spec") or {}).get("replicas", 1)
            ready = (status.get("readyReplicas") or 0) >= max(1, wanted) and (
                status.get("availableReplicas") or 0
            ) >= 1
            found[revision] = RevisionInfo(
                name=revision,
                ready=ready,
                injector=revision in injectors,
                detail=f"{status.get('readyReplicas') or 0}/{wanted} istiod replicas ready",
            )
        return found

    def workload_exists(self, target: Target) -> bool:
        try:
            return bool(self._workloads(target))
        except ClusterNotFoundError:
            return False

    def reach_inputs(self, tag: str) -> ReachInputs:
        """The tag's webhooks (its MWC found by the ``istio.io/tag`` label, the one named for
        this istiod namespace first) and, cluster-wide, the namespaces, workloads, ReplicaSets
        (to find a pod's Deployment) and pods that ``core.reach`` evaluates them against."""
        configs = self._items(
            f"webhooks of tag {tag}",
            self.admission.list_mutating_webhook_configuration,
            label_selector=f"{TAG_LABEL}={tag}",
        )
        expected = tag_webhook_name(tag, self.istio_namespace)
        configs = [c for c in configs if meta_of(c).get("name") == expected] or configs
        if not configs:
            raise ClusterNotFoundError(
                f"tag {tag}: no MutatingWebhookConfiguration labelled {TAG_LABEL}={tag}"
            )
        try:
            webhooks = tuple(Webhook.from_spec(w) for c in configs for w in c.get("webhooks") or [])
        except SelectorError as error:
            raise ClusterError(f"tag {tag}: unreadable webhook selector: {error}") from None
        namespaces = tuple(
            NamespaceInfo(meta_of(n).get("name", ""), dict(labels_of(n)))
            for n in self._items("list namespaces", self.core.list_namespace)
        )
        workloads = []
        for kind, method in (
            ("Deployment", self.apps.list_deployment_for_all_namespaces),
            ("StatefulSet", self.apps.list_stateful_set_for_all_namespaces),
            ("DaemonSet", self.apps.list_daemon_set_for_all_namespaces),
        ):
            for obj in self._items(f"list {kind}s", method):
                template = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
                workloads.append(WorkloadInfo(
                    meta_of(obj).get("namespace", ""), kind, meta_of(obj).get("name", ""),
                    dict(template.get("labels") or {}),
                ))  # fmt: skip
        replica_sets = {
            (meta_of(rs).get("namespace"), meta_of(rs).get("name")): controller_of(rs)
            for rs in self._items("list ReplicaSets", self.apps.list_replica_set_for_all_namespaces)
        }
        pods = []
        for pod in self._items("list pods", self.core.list_pod_for_all_namespaces):
            meta = meta_of(pod)
            owner = controller_of(pod)
            if owner and owner[0] == "ReplicaSet":
                owner = replica_sets.get((meta.get("namespace"), owner[1])) or owner
            pods.append(PodInfo(
                namespace=meta.get("namespace", ""), name=meta.get("name", ""),
                labels=dict(meta.get("labels") or {}),
                owner_kind=owner[0] if owner else None, owner_name=owner[1] if owner else None,
                revision=pod_revision(pod),
                phase=(pod.get("status") or {}).get("phase") or "Pending",
                terminating=bool(meta.get("deletionTimestamp")),
            ))  # fmt: skip
        return ReachInputs(
            tag=tag,
            webhook_config=", ".join(meta_of(c).get("name", "") for c in configs),
            webhooks=webhooks,
            namespaces=namespaces,
            workloads=tuple(workloads),
            pods=tuple(pods),
        )
