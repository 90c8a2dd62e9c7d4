"""What every object the adapter reads carries: metadata, labels, its controller.

Why it exists: the adapter handles objects as the plain JSON the API server sent, and every
concern (pods, workloads, webhooks, the state ConfigMap) reads the same few metadata fields;
they are read one way, here.
"""

from __future__ import annotations

from typing import Any

MANAGED_BY = "app.kubernetes.io/managed-by"


def meta_of(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def labels_of(obj: dict[str, Any]) -> dict[str, str]:
    return meta_of(obj).get("labels") or {}


def controller_of(obj: dict[str, Any]) -> tuple[str, str] | None:
    """(kind, name) of the object's managing controller (ownerReference ``controller: true``)."""
    for ref in meta_of(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("kind", "")), str(ref.get("name", ""))
    return None
