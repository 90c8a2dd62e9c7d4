"""The resource types the fake API serves, with the discovery facts clients rely on.

Each entry says where the type lives (group/version/plural), whether it is namespaced,
whether it has a ``status`` subresource (main-resource writes then leave status alone, as
the real API server does) and whether spec changes bump ``metadata.generation``.
"""

from __future__ import annotations

from dataclasses import dataclass

_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One served resource, e.g. ``deployments`` in ``apps/v1``."""

    group: str
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    has_status: bool = False
    tracks_generation: bool = False
    storage: tuple[str, str] | None = None  # shared storage with another type (events)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``deployments.apps`` — the name used in Status messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def storage_key(self) -> tuple[str, str]:
        return self.storage or (self.group, self.plural)

    @property
    def verbs(self) -> tuple[str, ...]:
        return _ALL_VERBS


RESOURCE_TYPES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "namespaces", "namespace", "Namespace", False, ("ns",), True),
    ResourceType("", "v1", "pods", "pod", "Pod", True, ("po",), True),
    ResourceType("", "v1", "services", "service", "Service", True, ("svc",), True),
    ResourceType("", "v1", "configmaps", "configmap", "ConfigMap", True, ("cm",)),
    ResourceType("", "v1", "events", "event", "Event", True, ("ev",)),
    ResourceType("", "v1", "nodes", "node", "Node", False, ("no",), True),
    ResourceType("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", True, ("sa",)),
    ResourceType(
        "apps", "v1", "deployments", "deployment", "Deployment", True, ("deploy",), True, True
    ),
    ResourceType(
        "apps", "v1", "statefulsets", "statefulset", "StatefulSet", True, ("sts",), True, True
    ),
    ResourceType("apps", "v1", "daemonsets", "daemonset", "DaemonSet", True, ("ds",), True, True),
    ResourceType(
        "apps", "v1", "replicasets", "replicaset", "ReplicaSet", True, ("rs",), True, True
    ),
    ResourceType("batch", "v1", "jobs", "job", "Job", True, (), True, True),
    ResourceType("batch", "v1", "cronjobs", "cronjob", "CronJob", True, ("cj",), True, True),
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "mutatingwebhookconfiguration",
        "MutatingWebhookConfiguration",
        False,
    ),
    ResourceType(
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "validatingwebhookconfiguration",
        "ValidatingWebhookConfiguration",
        False,
    ),
    ResourceType("coordination.k8s.io", "v1", "leases", "lease", "Lease", True),
    # what a revision's istio-discovery chart also installs (the prune removes them)
    ResourceType("rbac.authorization.k8s.io", "v1", "roles", "role", "Role", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "rolebinding",
                 "RoleBinding", True),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterroles", "clusterrole",
                 "ClusterRole", False),
    ResourceType("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "clusterrolebinding",
                 "ClusterRoleBinding", False),
    ResourceType("policy", "v1", "poddisruptionbudgets", "poddisruptionbudget",
                 "PodDisruptionBudget", True, ("pdb",), True),
    ResourceType("autoscaling", "v2", "horizontalpodautoscalers", "horizontalpodautoscaler",
                 "HorizontalPodAutoscaler", True, ("hpa",), True),
    ResourceType(
        "events.k8s.io", "v1", "events", "event", "Event", True, ("ev",), storage=("", "events")
    ),
)

_BY_PATH = {(rt.group, rt.version, rt.plural): rt for rt in RESOURCE_TYPES}
_BY_KIND = {(rt.group, rt.kind): rt for rt in RESOURCE_TYPES if rt.storage is None}


def resource_for_path(group: str, version: str, plural: str) -> ResourceType | None:
    """The type served at ``/apis/<group>/<version>/<plural>`` (group "" for ``/api/v1``)."""
    return _BY_PATH.get((group, version, plural))


def resource_for_kind(group: str, kind: str) -> ResourceType:
    """The type of a kind, e.g. ``("apps", "Deployment")``."""
    return _BY_KIND[(group, kind)]


def groups() -> dict[str, list[str]]:
    """API group name → served versions (the core group excluded)."""
    result: dict[str, list[str]] = {}
    for rt in RESOURCE_TYPES:
        if rt.group and rt.version not in result.setdefault(rt.group, []):
            result[rt.group].append(rt.version)
    return result


def resources_in(group: str, version: str) -> list[ResourceType]:
    """Every type served in one group version, for ``APIResourceList``."""
    return [rt for rt in RESOURCE_TYPES if rt.group == group and rt.version == version]


NAMESPACES = resource_for_kind("", "Namespace")
PODS = resource_for_kind("", "Pod")
SERVICES = resource_for_kind("", "Service")
CONFIGMAPS = resource_for_kind("", "ConfigMap")
EVENTS = resource_for_kind("", "Event")
NODES = resource_for_kind("", "Node")
DEPLOYMENTS = resource_for_kind("apps", "Deployment")
STATEFULSETS = resource_for_kind("apps", "StatefulSet")
DAEMONSETS = resource_for_kind("apps", "DaemonSet")
REPLICASETS = resource_for_kind("apps", "ReplicaSet")
JOBS = resource_for_kind("batch", "Job")
CRONJOBS = resource_for_kind("batch", "CronJob")
MUTATING_WEBHOOKS = resource_for_kind(
    "admissionregistration.k8s.io", "MutatingWebhookConfiguration"
)
VALIDATING_WEBHOOKS = resource_for_kind(
    "admissionregistration.k8s.io", "ValidatingWebhookConfiguration"
)
LEASES = resource_for_kind("coordination.k8s.io", "Lease")
WORKLOAD_TYPES = (DEPLOYMENTS, STATEFULSETS, DAEMONSETS)
