"""What the API server and istiod do to a pod on creation: mutating admission.

The API server calls every MutatingWebhookConfiguration (in name order, webhooks in
order) whose rules, ``namespaceSelector`` and ``objectSelector`` match; an Istio injector
webhook's ``clientConfig.service`` (``istiod-<rev>``) decides which istiod injects, and so
which proxy the pod runs. istiod skips pods already injected (``sidecar.istio.io/status``
present), so the first matching injector wins. If the called istiod is not available and
``failurePolicy`` is Fail, the pod is rejected, as in a real cluster.

Once called, istiod decides whether to inject at all as ``injectRequired`` does
(istio/istio ``pkg/kube/inject/inject.go``, called from ``pkg/kube/inject/webhook.go``):
hostNetwork pods are never injected; pods in the ignored system namespaces
(``pkg/kube/inject/initializer.go``: kube-system, kube-public, kube-node-lease,
local-path-storage) are skipped; the pod *label* ``sidecar.istio.io/inject`` beats the
annotation of the same name; with neither, the injector config's ``neverInjectSelector``
then ``alwaysInjectSelector`` decide, then its ``policy``. The injector config is the
``config`` key of the revision's ``istio-sidecar-injector-<rev>`` ConfigMap
(``manifests/charts/istio-control/istio-discovery/templates/istiod-injector-configmap.yaml``).
An injected pod carries ``sidecar.istio.io/status`` with the revision (``applyMetadata`` in
webhook.go) and the ``istio.io/rev`` annotation (``files/injection-template.yaml``).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from analyzer.sim.resources import CONFIGMAPS, DEPLOYMENTS, MUTATING_WEBHOOKS, SERVICES
from analyzer.sim.selectors import selector_from_spec
from analyzer.sim.store import ObjectStore

STATUS_ANNOTATION = "sidecar.istio.io/status"
REV_ANNOTATION = "istio.io/rev"
INJECT_LABEL = "sidecar.istio.io/inject"
TEMPLATES_ANNOTATION = "inject.istio.io/templates"
#: ``IgnoredNamespaces`` of pkg/kube/inject/initializer.go.
IGNORED_NAMESPACES = frozenset({"kube-system", "kube-public", "kube-node-lease",
                                "local-path-storage"})
_ISTIOD_HOST = re.compile(r"^(?:https?://)?(istiod(?:-[a-z0-9-]+)?)\.([a-z0-9-]+)\.svc")


class AdmissionDenied(Exception):
    """A webhook with ``failurePolicy: Fail`` could not be called: the pod is not created."""


@dataclass(frozen=True)
class ProxySettings:
    """Scenario facts the injector needs."""

    hub: str
    native_sidecars: bool
    version_of: Callable[[str], str]  # revision → proxy version, e.g. 1-15-4 → 1.15.4


@dataclass(frozen=True)
class InjectorConfig:
    """The parts of istiod's injector config that decide *whether* to inject."""

    policy: str = "enabled"
    never_inject_selector: tuple[Mapping[str, Any], ...] = ()
    always_inject_selector: tuple[Mapping[str, Any], ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> InjectorConfig:
        """From the ConfigMap's ``config`` key (YAML); absent or broken: the chart defaults."""
        if not text:
            return cls()
        try:
            document = YAML(typ="safe", pure=True).load(text)
        except YAMLError:
            return cls()
        if not isinstance(document, dict):
            return cls()
        return cls(policy=str(document.get("policy") or "enabled"),
                   never_inject_selector=tuple(document.get("neverInjectSelector") or ()),
                   always_inject_selector=tuple(document.get("alwaysInjectSelector") or ()))


def _selector_hits(selectors: tuple[Mapping[str, Any], ...], labels: Mapping[str, str]) -> bool:
    for spec in selectors:
        if not (spec.get("matchLabels") or spec.get("matchExpressions")):
            continue  # an empty selector matches nothing here (``!selector.Empty()``)
        if selector_from_spec(dict(spec)).matches(labels):
            return True
    return False


def inject_required(pod: Mapping[str, Any], namespace: str, config: InjectorConfig) -> bool:
    """``injectRequired`` of istio/istio pkg/kube/inject/inject.go, for one pod."""
    if (pod.get("spec") or {}).get("hostNetwork"):
        return False
    if namespace in IGNORED_NAMESPACES:
        return False
    metadata = pod.get("metadata") or {}
    labels = metadata.get("labels") or {}
    choice = (metadata.get("annotations") or {}).get(INJECT_LABEL, "")
    if INJECT_LABEL in labels:  # the label is the newer API and wins over the annotation
        choice = labels[INJECT_LABEL]
    if choice in ("true", "false"):
        return choice == "true"
    if _selector_hits(config.never_inject_selector, labels):
        return False
    if _selector_hits(config.always_inject_selector, labels):
        return True
    return config.policy == "enabled"


def _rule_matches_pod_create(webhook: Mapping[str, Any]) -> bool:
    for rule in webhook.get("rules") or []:
        operations = rule.get("operations") or []
        groups = rule.get("apiGroups") or []
        resources = rule.get("resources") or []
        if (("CREATE" in operations or "*" in operations)
                and ("" in groups or "*" in groups)
                and ("pods" in resources or "*" in resources)):
            return True
    return False


class SidecarInjector:
    """Mutating admission for pods, driven by the MWCs and istiod objects in the store."""

    def __init__(self, store: ObjectStore, settings: ProxySettings) -> None:
        self._store = store
        self._settings = settings

    def admit(self, pod: dict[str, Any], namespace_labels: Mapping[str, str]) -> dict[str, Any]:
        """Return the pod as the API server would store it after mutating admission."""
        pod = copy.deepcopy(pod)
        namespace = (pod.get("metadata") or {}).get("namespace") or namespace_labels.get(
            "kubernetes.io/metadata.name", "")
        webhook_configs, _ = self._store.list(MUTATING_WEBHOOKS)
        for config in sorted(webhook_configs, key=lambda item: item["metadata"]["name"]):
            for webhook in config.get("webhooks") or []:
                if not _rule_matches_pod_create(webhook):
                    continue
                if not selector_from_spec(webhook.get("namespaceSelector")).matches(
                        namespace_labels):
                    continue
                labels = pod.get("metadata", {}).get("labels") or {}
                if not selector_from_spec(webhook.get("objectSelector")).matches(labels):
                    continue
                revision = self._reachable_istiod_revision(webhook.get("clientConfig") or {})
                if revision is None:
                    if webhook.get("failurePolicy", "Fail") == "Fail":
                        raise AdmissionDenied(
                            f'Internal error occurred: failed calling webhook "{webhook["name"]}"'
                            ": no endpoints available for service")
                    continue
                if inject_required(pod, namespace, self._injector_config(revision)):
                    self._inject(pod, revision)
        return pod

    def _injector_config(self, revision: str) -> InjectorConfig:
        """The called istiod's injector config (its ``istio-sidecar-injector-<rev>`` map)."""
        name = "istio-sidecar-injector" if revision == "default" else \
            f"istio-sidecar-injector-{revision}"
        config_map = self._store.find(CONFIGMAPS, "istio-system", name)
        return InjectorConfig.parse(((config_map or {}).get("data") or {}).get("config"))

    def _reachable_istiod_revision(self, client_config: Mapping[str, Any]) -> str | None:
        service_ref = client_config.get("service")
        if service_ref:
            name, namespace = service_ref.get("name", ""), service_ref.get("namespace", "")
        else:
            match = _ISTIOD_HOST.match(client_config.get("url") or "")
            if not match:
                return None
            name, namespace = match.group(1), match.group(2)
        service = self._store.find(SERVICES, namespace, name)
        if service is None:
            return None
        revision = (service["metadata"].get("labels") or {}).get("istio.io/rev")
        if not revision:
            revision = name.removeprefix("istiod-") if name != "istiod" else "default"
        deployment = self._store.find(DEPLOYMENTS, namespace, f"istiod-{revision}")
        if deployment is None or not (deployment.get("status") or {}).get("readyReplicas"):
            return None
        return revision

    def _inject(self, pod: dict[str, Any], revision: str) -> None:
        metadata = pod.setdefault("metadata", {})
        annotations = metadata.setdefault("annotations", {})
        labels = metadata.setdefault("labels", {})
        if STATUS_ANNOTATION in annotations:
            return  # istiod never injects twice
        spec = pod.setdefault("spec", {})
        image = f"{self._settings.hub}/proxyv2:{self._settings.version_of(revision)}"
        is_gateway = annotations.get(TEMPLATES_ANNOTATION) == "gateway"
        if is_gateway:
            for container in spec.get("containers") or []:
                if container.get("name") == "istio-proxy":
                    container["image"] = image
            status = {"initContainers": None, "containers": ["istio-proxy"],
                      "volumes": ["workload-socket", "credential-socket", "workload-certs",
                                  "istio-envoy", "istio-data", "istio-podinfo", "istio-token",
                                  "istiod-ca-cert"],
                      "imagePullSecrets": None, "revision": revision}
        else:
            app_containers = [c.get("name") for c in spec.get("containers") or []]
            proxy = _proxy_container(image)
            init = {"name": "istio-init", "image": image,
                    "args": ["istio-iptables", "-p", "15001", "-z", "15006", "-u", "1337",
                             "-m", "REDIRECT", "-i", "*", "-x", "", "-b", "*", "-d",
                             "15090,15021,15020"],
                    "securityContext": {"capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}}}
            init_containers = spec.setdefault("initContainers", [])
            init_containers.append(init)
            if self._settings.native_sidecars:
                proxy["restartPolicy"] = "Always"
                init_containers.append(proxy)
                status_init, status_containers = ["istio-init", "istio-proxy"], []
            else:
                spec.setdefault("containers", []).append(proxy)
                status_init, status_containers = ["istio-init"], ["istio-proxy"]
            status = {"initContainers": status_init, "containers": status_containers,
                      "volumes": ["workload-socket", "credential-socket", "workload-certs",
                                  "istio-envoy", "istio-data", "istio-podinfo", "istio-token",
                                  "istiod-ca-cert"],
                      "imagePullSecrets": None, "revision": revision}
            if app_containers:
                annotations.setdefault("kubectl.kubernetes.io/default-container",
                                       app_containers[0])
                annotations.setdefault("kubectl.kubernetes.io/default-logs-container",
                                       app_containers[0])
            annotations.update({"prometheus.io/path": "/stats/prometheus",
                                "prometheus.io/port": "15020", "prometheus.io/scrape": "true"})
        annotations[STATUS_ANNOTATION] = json.dumps(status, separators=(",", ":"))
        annotations[REV_ANNOTATION] = revision
        labels["security.istio.io/tlsMode"] = "istio"
        labels.setdefault("service.istio.io/canonical-name",
                          labels.get("app") or metadata.get("generateName", "").rstrip("-"))
        labels.setdefault("service.istio.io/canonical-revision", labels.get("version", "latest"))
        spec.setdefault("volumes", []).extend(
            {"name": volume, "emptyDir": {}} for volume in status["volumes"])


def _proxy_container(image: str) -> dict[str, Any]:
    return {
        "name": "istio-proxy",
        "image": image,
        "args": ["proxy", "sidecar", "--domain", "$(POD_NAMESPACE).svc.cluster.local",
                 "--proxyLogLevel=warning", "--proxyComponentLogLevel=misc:error",
                 "--log_output_level=default:info"],
        "ports": [{"containerPort": 15090, "name": "http-envoy-prom", "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021},
                           "periodSeconds": 15, "failureThreshold": 4},
        "securityContext": {"runAsUser": 1337, "runAsGroup": 1337, "runAsNonRoot": True},
    }


def proxy_revision(pod: Mapping[str, Any]) -> str | None:
    """The revision that injected a pod, from ``sidecar.istio.io/status`` (None: no proxy)."""
    annotations = (pod.get("metadata") or {}).get("annotations") or {}
    raw = annotations.get(STATUS_ANNOTATION)
    if not raw:
        return None
    try:
        return json.loads(raw).get("revision")
    except (ValueError, AttributeError):
        return None
