"""Facts about one pod: the revision of its proxy, whether it has one, and whether the
injector skips it.

Why it exists: verification, reach and the revision inventory all ask these of a pod, and
each answer follows Istio's own rule (the injected ``sidecar.istio.io/status``; istio
``pkg/kube/inject/inject.go`` ``injectRequired``), never the pod's labels alone.
"""

from __future__ import annotations

import json
from typing import Any

from analyzer.adapters.kubernetes.objects import meta_of

SIDECAR_STATUS = "sidecar.istio.io/status"
INJECT = "sidecar.istio.io/inject"


def pod_revision(pod: dict[str, Any]) -> str | None:
    """The injecting istiod's revision, from ``sidecar.istio.io/status`` (never the label)."""
    raw = (meta_of(pod).get("annotations") or {}).get(SIDECAR_STATUS)
    if not raw:
        return None
    try:
        value = json.loads(raw).get("revision")
    except (ValueError, AttributeError):
        return None
    return value or None


def has_proxy(pod: dict[str, Any]) -> bool:
    """An ``istio-proxy`` container, or a native sidecar (init container, restartPolicy Always)."""
    spec = pod.get("spec") or {}
    if any(c.get("name") == "istio-proxy" for c in spec.get("containers") or []):
        return True
    return any(
        c.get("name") == "istio-proxy" and c.get("restartPolicy") == "Always"
        for c in spec.get("initContainers") or []
    )


def injection_skipped(pod: dict[str, Any]) -> str | None:
    """Why the injector gives this pod no sidecar, when the pod says so itself (istio
    ``pkg/kube/inject/inject.go`` ``injectRequired``): host networking, or
    ``sidecar.istio.io/inject: "false"`` — the label, when present, wins over the annotation."""
    if (pod.get("spec") or {}).get("hostNetwork"):
        return "hostNetwork: never injected"
    meta = meta_of(pod)
    labels = meta.get("labels") or {}
    choice = labels[INJECT] if INJECT in labels else (meta.get("annotations") or {}).get(INJECT)
    if choice == "false":
        return f"{INJECT}=false: never injected"
    return None


def revision_text(pod: dict[str, Any]) -> str:
    found = pod_revision(pod)
    if found:
        return f"revision {found}"
    return "sidecar without status" if has_proxy(pod) else "no sidecar"
