"""The names and shapes of Istio's injector and tag webhooks, as its charts and istioctl
write them.

Why it exists: listing tags and moving one both need the chart's names
(istio-discovery ``templates/revision-tags-mwc.yaml``), istioctl's way of switching a
webhook off (``NeverMatch``), a tag webhook's endpoint taken from the revision's own
injector, and the warning that an installer owns an object; these are pure, apart from the
API calls in ``tags.py``.
"""

from __future__ import annotations

from typing import Any

from analyzer.adapters.kubernetes.objects import MANAGED_BY, labels_of, meta_of

TAG_LABEL = "istio.io/tag"
DEFAULT_VALIDATOR = "istiod-default-validator"
INJECTOR_SUFFIX = "sidecar-injector.istio.io"
OPERATOR_LABELS = "operator.istio.io"
#: istioctl/pkg/util/common.go NeverMatch: how istioctl switches a webhook off in place
NEVER_MATCH = {"matchLabels": {"istio.io/deactivated": "never-match"}}


def tag_webhook_name(tag: str, istio_namespace: str = "istio-system") -> str:
    """The tag's MutatingWebhookConfiguration as Istio's chart names it
    (istio-discovery ``templates/revision-tags-mwc.yaml``): ``istio-revision-tag-<tag>`` in
    ``istio-system``, ``istio-revision-tag-<tag>-<namespace>`` for an istiod elsewhere."""
    if istio_namespace == "istio-system":
        return f"istio-revision-tag-{tag}"
    return f"istio-revision-tag-{tag}-{istio_namespace}"


def injector_client_config(
    current: dict[str, Any], canonical: dict[str, Any], istio_namespace: str
) -> dict[str, Any]:
    """A tag webhook's clientConfig for the canonical injector (revision-tags-mwc.yaml
    "core"; generate.go generateMutatingWebhook): its URL, or its Service name and path in
    the Istio namespace on port 443; its CA bundle."""
    source = canonical.get("clientConfig") or {}
    config: dict[str, Any] = {}
    if source.get("url"):
        config["url"] = source["url"]
    else:
        service = source.get("service") or {}
        config["service"] = {
            "name": service.get("name"),
            "namespace": service.get("namespace") or istio_namespace,
            "path": service.get("path") or "/inject",
            "port": service.get("port") or (current.get("service") or {}).get("port") or 443,
        }
    if source.get("caBundle"):
        config["caBundle"] = source["caBundle"]
    return config


def endpoint_of(config: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    service = config.get("service") or {}
    return config.get("url"), service.get("name"), service.get("namespace")


def ownership_warnings(kind: str, obj: dict[str, Any]) -> tuple[str, ...]:
    """Objects an installer owns (Helm, the Istio operator) may be put back by it: the next
    ``helm upgrade`` of istiod (tag webhook, tag Service) or base (the validator's
    ``defaultRevision``), or the operator's next reconcile."""
    labels = labels_of(obj)
    owner = labels.get(MANAGED_BY, "")
    if owner.lower() == "helm" or any(OPERATOR_LABELS in key for key in labels):
        return (
            f"{kind} {meta_of(obj).get('name', '')} is managed by "
            f"{owner or 'the Istio operator'}; its owner may move the tag back on its next "
            "reconcile or upgrade",
        )
    return ()
