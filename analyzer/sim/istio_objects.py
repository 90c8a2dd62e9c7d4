"""The simulated mesh's Istio control plane, seeded from what Istio's own charts render.

Why it exists: the tag move is judged against objects we did not write. The webhooks, tag
Services and validators a scenario's cluster starts with are loaded from YAML rendered by
Helm from istio/istio's charts (``istio_charts/<layout>/``, see its README.md for the
release, commit and values), so the engine meets on the simulated mesh exactly what a
Helm-installed Istio leaves in a real cluster:

- ``current`` (istio/istio 1.30.3): the istio-discovery chart renders, per revision, the
  injector ``istio-sidecar-injector-<rev>``, the validator ``istio-validator-<rev>-<ns>``,
  the Service ``istiod-<rev>`` and, per entry of ``revisionTags``, the tag webhook
  ``istio-revision-tag-<tag>`` (revision-tags-mwc.yaml) and the tag Service
  ``istiod-revision-tag-<tag>`` (revision-tags-svc.yaml, new in 1.28);
- ``legacy`` (istio/istio 1.24.6): the same without the tag Service.
The base chart renders ``istiod-default-validator`` for ``defaultRevision`` in both.

Revisions other than the rendered ``1-14-6``/``1-15-4`` are the 1-14-6 rendering with the
revision renamed; tags other than ``default``/``prod`` are the ``prod`` rendering renamed
(the chart treats every non-default tag alike). istiod's webhook controller patches its
CA into every MWC labelled with its revision (pkg/webhooks/webhookpatch.go); the seed
does the same with a per-revision fake CA.
The istiod Deployment and its ConfigMaps stay hand-built: the simulated controller runs
them and only their names, labels and image matter to it.

A revision may also be *installed*: with ``installed_by`` the seed adds the rest of what the
chart renders for it (``control-plane/istiod-<rev>.yaml``: ServiceAccount, Role and
RoleBinding, ClusterRoles and bindings, HPA, PodDisruptionBudget, ``values-<rev>``) and marks
every object of the revision the way its installer does:
- ``istioctl``: the owner labels ``istio.io/rev``, ``operator.istio.io/component: Pilot``,
  ``operator.istio.io/managed: Reconcile`` and ``operator.istio.io/version``
  (istio/istio operator/pkg/install/install.go ``getOwnerLabels``), which
  ``istioctl uninstall --revision`` selects on (operator/pkg/uninstall/prune.go);
- ``helm``: the label ``app.kubernetes.io/managed-by: Helm`` and the annotations
  ``meta.helm.sh/release-name`` and ``meta.helm.sh/release-namespace`` Helm sets on every
  object of a release it installs (helm/helm pkg/action/validate.go ``setMetadataVisitor``).
Both render the same chart, whose templates already carry ``app.kubernetes.io/managed-by:
Helm`` (istioctl's own golden outputs, operator/pkg/helm/testdata/output, show it), so only
the annotations tell a Helm release apart.
"""

from __future__ import annotations

import base64
import copy
from functools import cache
from importlib import resources
from typing import Any, Literal

import yaml

IstioLayout = Literal["current", "legacy"]
ISTIO_SYSTEM = "istio-system"
RENDERED_REVISIONS = ("1-14-6", "1-15-4")
_TEMPLATE_REVISION = "1-14-6"
_TEMPLATE_TAG = "prod"
TAG_LABEL = "istio.io/tag"
REV_LABEL = "istio.io/rev"


@cache
def _file_text(layout: str, name: str) -> str:
    return (resources.files("analyzer.sim") / "istio_charts" / layout / name).read_text(
        encoding="utf-8")


def rendered(layout: str, name: str, revision: str | None = None) -> list[dict[str, Any]]:
    """The objects of one vendored rendering (``istiod-<rev>.yaml``, ``base-<rev>.yaml``,
    ``url/…``, ``istio-control/…``), for ``revision`` (renamed from 1-14-6 if not rendered)."""
    if revision is not None and revision not in RENDERED_REVISIONS:
        text = _file_text(layout, name.replace("{rev}", _TEMPLATE_REVISION))
        text = text.replace(_TEMPLATE_REVISION, revision)
    else:
        text = _file_text(layout, name.replace("{rev}", revision or ""))
    return [doc for doc in yaml.safe_load_all(text) if isinstance(doc, dict)]


def _one(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    return next((copy.deepcopy(o) for o in objects
                 if o["kind"] == kind and o["metadata"]["name"] == name), None)


def _renamed_tag(obj: dict[str, Any], tag: str) -> dict[str, Any]:
    """A ``prod`` tag object renamed to another non-default tag."""
    meta = obj["metadata"]
    meta["name"] = meta["name"].replace(f"-tag-{_TEMPLATE_TAG}", f"-tag-{tag}")
    meta["labels"][TAG_LABEL] = tag
    for webhook in obj.get("webhooks") or []:
        for selector in ("namespaceSelector", "objectSelector"):
            for expression in (webhook.get(selector) or {}).get("matchExpressions") or []:
                expression["values"] = [tag if v == _TEMPLATE_TAG else v
                                        for v in expression.get("values") or []]
    return obj


def fake_ca_bundle(revision: str) -> str:
    """The CA istiod of ``revision`` patches into its webhooks (base64 PEM, fake)."""
    pem = f"-----BEGIN CERTIFICATE-----\nsimulated istiod-{revision} CA\n" \
          "-----END CERTIFICATE-----\n"
    return base64.b64encode(pem.encode()).decode()


def _with_ca(mwc: dict[str, Any], revision: str) -> dict[str, Any]:
    for webhook in mwc.get("webhooks") or []:
        webhook.setdefault("clientConfig", {})["caBundle"] = fake_ca_bundle(revision)
    return mwc


def revision_objects(layout: str, revision: str) -> list[dict[str, Any]]:
    """A revision's injector MWC (with its CA), per-revision validator and istiod Service."""
    objects = rendered(layout, "istiod-{rev}.yaml", revision)
    found = [
        _one(objects, "MutatingWebhookConfiguration", f"istio-sidecar-injector-{revision}"),
        _one(objects, "ValidatingWebhookConfiguration",
             f"istio-validator-{revision}-{ISTIO_SYSTEM}"),
        _one(objects, "Service", f"istiod-{revision}"),
    ]
    result = [obj for obj in found if obj is not None]
    for obj in result:
        if obj["kind"] == "MutatingWebhookConfiguration":
            _with_ca(obj, revision)
    return result


def tag_objects(layout: str, tag: str, revision: str) -> list[dict[str, Any]]:
    """The tag's MWC (with the revision's CA), its Service when the layout renders one, and
    for ``default`` the base chart's ``istiod-default-validator``."""
    objects = rendered(layout, "istiod-{rev}.yaml", revision)
    source_tag = tag if tag in ("default", _TEMPLATE_TAG) else _TEMPLATE_TAG
    result = []
    mwc = _one(objects, "MutatingWebhookConfiguration", f"istio-revision-tag-{source_tag}")
    if mwc is not None:
        result.append(_with_ca(mwc, revision))
    service = _one(objects, "Service", f"istiod-revision-tag-{source_tag}")
    if service is not None:
        result.append(service)
    if source_tag != tag:
        result = [_renamed_tag(obj, tag) for obj in result]
    if tag == "default":
        validator = _one(rendered(layout, "base-{rev}.yaml", revision),
                         "ValidatingWebhookConfiguration", "istiod-default-validator")
        if validator is not None:
            result.append(validator)
    return result


def control_plane_objects(layout: str, revision: str) -> list[dict[str, Any]]:
    """The rest of what the istio-discovery chart installs for a revision (see above)."""
    return rendered(layout, "control-plane/istiod-{rev}.yaml", revision)


HELM_RELEASE_NAME = "meta.helm.sh/release-name"
HELM_RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"


def mark_installed(obj: dict[str, Any], installer: str, revision: str, version: str
                   ) -> dict[str, Any]:
    """``obj`` as ``istioctl install`` or ``helm install`` leaves it (see above)."""
    meta = obj.setdefault("metadata", {})
    labels = meta.setdefault("labels", {})
    if installer == "istioctl":
        labels.update({REV_LABEL: revision, "operator.istio.io/component": "Pilot",
                       "operator.istio.io/managed": "Reconcile",
                       "operator.istio.io/version": version})
    elif installer == "helm":
        labels["app.kubernetes.io/managed-by"] = "Helm"
        annotations = meta.setdefault("annotations", {})
        annotations[HELM_RELEASE_NAME] = f"istiod-{revision}"
        annotations[HELM_RELEASE_NAMESPACE] = ISTIO_SYSTEM
    return obj


def istiod_deployment(revision: str, version: str, hub: str, replicas: int) -> dict[str, Any]:
    """istiod of a revision as the simulated controller runs it (labels as the chart's)."""
    labels = {"app": "istiod", REV_LABEL: revision, "istio": "pilot"}
    return {
        "metadata": {"name": f"istiod-{revision}", "namespace": ISTIO_SYSTEM,
                     "labels": {**labels, "operator.istio.io/component": "Pilot"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "istiod", REV_LABEL: revision}},
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


def istio_configmaps(revision: str) -> list[dict[str, Any]]:
    """The mesh config and injector ConfigMaps of a revision (contents reduced)."""
    labels = {REV_LABEL: revision, "release": "istio"}
    return [
        {"metadata": {"name": f"istio-{revision}", "namespace": ISTIO_SYSTEM, "labels": labels},
         "data": {"mesh": "defaultConfig:\n  discoveryAddress: "
                          f"istiod-{revision}.{ISTIO_SYSTEM}.svc:15012\n",
                  "meshNetworks": "networks: {}"}},
        {"metadata": {"name": f"istio-sidecar-injector-{revision}", "namespace": ISTIO_SYSTEM,
                      "labels": labels},
         "data": {"values": "{}", "config": "policy: enabled\n"}},
    ]
