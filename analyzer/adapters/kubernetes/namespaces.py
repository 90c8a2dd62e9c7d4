"""Namespace labels: read, listed by revision, and relabelled.

Why it exists: the namespace-label style moves a namespace by its ``istio.io/rev`` label
(and back on a rollback); preflight and the plan read the same labels.
"""

from __future__ import annotations

from collections.abc import Sequence

from analyzer.adapters.kubernetes.api import STRATEGIC, ClusterApi
from analyzer.adapters.kubernetes.objects import labels_of, meta_of
from analyzer.core.ports import ClusterNotFoundError
from analyzer.core.upgrade import REVISION_LABEL


class NamespaceLabels(ClusterApi):
    """``istio.io/rev`` on namespaces."""

    def namespace_labels(self, namespace: str) -> dict[str, str] | None:
        try:
            return labels_of(
                self._get(f"namespace {namespace}", self.core.read_namespace, namespace)
            )
        except ClusterNotFoundError:
            return None

    def namespaces_labelled(self, value: str) -> list[str]:
        items = self._items(
            "list namespaces", self.core.list_namespace, label_selector=f"{REVISION_LABEL}={value}"
        )
        return sorted(meta_of(ns)["name"] for ns in items)

    def set_revision_label(self, namespaces: Sequence[str], value: str) -> None:
        for namespace in namespaces:
            if (self.namespace_labels(namespace) or {}).get(REVISION_LABEL) == value:
                continue
            body = {"metadata": {"labels": {REVISION_LABEL: value}}}
            self.retry(
                f"label namespace {namespace}",
                lambda n=namespace, body=body: self._json(
                    self.core.patch_namespace, n, body, _content_type=STRATEGIC
                ),
            )
