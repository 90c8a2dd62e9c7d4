"""Which control-plane revisions are installed, what still uses each, and whether one may go.

Why it exists: the last step of the manual procedure, ``istioctl uninstall --revision
<old>``, is safe only when nothing uses the old revision any more, and ``istioctl`` only
warns about proxies it can reach (istio/istio operator/cmd/mesh/uninstall.go
``preCheckWarnings``). This module decides, from data the adapter read, cluster-wide:

- *installed*: an istiod Deployment (``app=istiod``) or an injector
  MutatingWebhookConfiguration (``istio.io/rev=<rev>`` without ``istio.io/tag``) of the
  revision; a tag (``istio.io/tag``) points at the revision its ``istio.io/rev`` label names;
- *used*: running pods whose proxy was injected by the revision (``sidecar.istio.io/status``;
  pods owned by a workload controller apart from Job and bare pods), namespaces labelled
  ``istio.io/rev=<rev>``, tags pointing at it, workloads (gateways among them) whose pod
  template is pinned with ``istio.io/rev=<rev>``. Completed (``Succeeded``) and ``Failed``
  pods are counted apart and are not use: a terminal phase is final (kubernetes
  pkg/kubelet/status/status_manager.go), such a pod never talks to istiod again;
- *what a prune deletes*: the objects ``istioctl uninstall --revision`` selects
  (operator/pkg/uninstall/prune.go ``GetPrunedResources``: label ``istio.io/rev=<rev>`` and
  an ``operator.istio.io/component`` of the components it prunes), of the kinds the
  istio-discovery chart installs (manifests/charts/istio-control/istio-discovery/templates;
  rendered in analyzer/sim/istio_charts/), never a tag's objects. An object a Helm release
  owns (annotation ``meta.helm.sh/release-name``) is never deleted one by one: its release
  is named for ``helm uninstall`` instead, and nothing is deleted.

Where we depart from istioctl: istioctl deletes in kind order Deployment first and webhooks
last; we delete the webhooks first, so no API request is sent to an istiod on its way out,
then the Deployment and the rest. Pods are not deleted one by one: the Deployment's
deletion with ``propagationPolicy: Foreground`` (as istioctl sends it) removes them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from analyzer.core.reach import NamespaceInfo, PodInfo

REV_LABEL = "istio.io/rev"
TAG_LABEL = "istio.io/tag"
INJECTION_LABEL = "istio-injection"
COMPONENT_LABEL = "operator.istio.io/component"
HELM_RELEASE_NAME = "meta.helm.sh/release-name"
HELM_RELEASE_NAMESPACE = "meta.helm.sh/release-namespace"
#: the components ``istioctl uninstall --revision`` prunes (operator/pkg/uninstall/prune.go)
ISTIOCTL_PRUNED_COMPONENTS = frozenset(
    {"Pilot", "IngressGateways", "EgressGateways", "Cni", "Ztunnel"}
)
#: controllers whose pods run until they end, never replaced by a restart
RUN_TO_COMPLETION = frozenset({"Job"})
TERMINAL_PHASES = frozenset({"Succeeded", "Failed"})


@dataclass(frozen=True)
class KindRef:
    """Where a kind is served: what the adapter lists and deletes."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool


#: the kinds a revision's istio-discovery chart installs, in the order a prune deletes them
PRUNED_KINDS: tuple[KindRef, ...] = (
    KindRef("admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations",
            "MutatingWebhookConfiguration", False),
    KindRef("admissionregistration.k8s.io", "v1", "validatingwebhookconfigurations",
            "ValidatingWebhookConfiguration", False),
    KindRef("apps", "v1", "deployments", "Deployment", True),
    KindRef("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True),
    KindRef("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True),
    KindRef("", "v1", "services", "Service", True),
    KindRef("", "v1", "configmaps", "ConfigMap", True),
    KindRef("", "v1", "serviceaccounts", "ServiceAccount", True),
    KindRef("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True),
    KindRef("rbac.authorization.k8s.io", "v1", "roles", "Role", True),
    KindRef("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding",
            False),
    KindRef("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False),
)
_ORDER = {ref.kind: index for index, ref in enumerate(PRUNED_KINDS)}


def revision_selector(revision: str) -> str:
    """The label selector of a revision's own objects (tags excluded)."""
    return f"{REV_LABEL}={revision},!{TAG_LABEL}"


@dataclass(frozen=True)
class Istiod:
    """An istiod Deployment (``app=istiod``) of a revision."""

    namespace: str
    name: str
    revision: str
    ready: int = 0
    replicas: int = 1

    def describe(self) -> str:
        return f"{self.namespace}/{self.name} ({self.ready}/{self.replicas} ready)"


@dataclass(frozen=True)
class PinnedWorkload:
    """A workload whose pod template says ``istio.io/rev=<value>``."""

    namespace: str
    kind: str
    name: str
    value: str
    gateway: bool = False  # injected with the gateway template

    def describe(self) -> str:
        what = "gateway" if self.gateway else self.kind
        return f"{what} {self.namespace}/{self.name}"


@dataclass(frozen=True)
class RevisionInputs:
    """What the adapter read, cluster-wide."""

    istiods: tuple[Istiod, ...] = ()
    injectors: tuple[tuple[str, str], ...] = ()  # (webhook configuration, revision)
    tags: tuple[tuple[str, str], ...] = ()  # (tag, revision)
    namespaces: tuple[NamespaceInfo, ...] = ()
    workloads: tuple[PinnedWorkload, ...] = ()
    pods: tuple[PodInfo, ...] = ()


@dataclass(frozen=True)
class PodUse:
    """A pod whose proxy a revision injected."""

    namespace: str
    name: str
    owner: str  # "Deployment bar/api", "Job bar/report", "bare pod"
    controlled: bool  # owned by a workload controller (not a Job, not bare)
    phase: str

    def describe(self) -> str:
        return f"pod {self.namespace}/{self.name} ({self.owner})"


@dataclass(frozen=True)
class RevisionUse:
    """One revision: what is installed of it and what uses it."""

    revision: str
    istiods: tuple[Istiod, ...] = ()
    injectors: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    pods: tuple[PodUse, ...] = ()  # running (not Succeeded/Failed): use
    completed: tuple[PodUse, ...] = ()  # Succeeded: not use
    failed: tuple[PodUse, ...] = ()  # Failed: not use
    namespaces: tuple[str, ...] = ()  # labelled istio.io/rev=<revision>
    namespaces_via_tags: tuple[str, ...] = ()  # labelled with a tag pointing here
    workloads: tuple[PinnedWorkload, ...] = ()

    @property
    def installed(self) -> bool:
        return bool(self.istiods or self.injectors)

    @property
    def in_use(self) -> bool:
        return bool(self.blockers())

    def blockers(self) -> tuple[str, ...]:
        """Every use, named, one per line of a refusal."""
        lines = [f"tag {tag} points at it" for tag in self.tags]
        lines += [f"namespace {name} is labelled {REV_LABEL}={self.revision}"
                  for name in self.namespaces]
        lines += [f"{w.describe()} is pinned with {REV_LABEL}={self.revision}"
                  for w in self.workloads]
        lines += [f"{pod.describe()} runs its proxy" for pod in self.pods]
        return tuple(lines)


def _pod_use(pod: PodInfo) -> PodUse:
    if pod.owner_kind is None:
        owner, controlled = "bare pod", False
    else:
        owner = f"{pod.owner_kind} {pod.namespace}/{pod.owner_name}"
        controlled = pod.owner_kind not in RUN_TO_COMPLETION
    return PodUse(pod.namespace, pod.name, owner, controlled, pod.phase)


def _tag_of_namespace(labels: dict[str, str], tags: dict[str, str]) -> str | None:
    """The tag a namespace's labels select: ``istio.io/rev=<tag>``, or ``default`` through
    ``istio-injection=enabled`` (which wins, as the default tag's webhooks select it)."""
    if labels.get(INJECTION_LABEL) == "enabled":
        return "default" if "default" in tags else None
    value = labels.get(REV_LABEL)
    return value if value in tags else None


def inventory(inputs: RevisionInputs) -> dict[str, RevisionUse]:
    """Every revision installed, pointed at, pinned or still running, and what uses it."""
    tags = dict(inputs.tags)
    found: dict[str, dict[str, list]] = {}

    def entry(revision: str) -> dict[str, list]:
        return found.setdefault(revision, {key: [] for key in (
            "istiods", "injectors", "tags", "pods", "completed", "failed", "namespaces",
            "namespaces_via_tags", "workloads")})

    for istiod in inputs.istiods:
        entry(istiod.revision)["istiods"].append(istiod)
    for webhook, revision in inputs.injectors:
        entry(revision)["injectors"].append(webhook)
    for tag, revision in inputs.tags:
        entry(revision)["tags"].append(tag)
    for namespace in inputs.namespaces:
        tag = _tag_of_namespace(namespace.labels, tags)
        if tag is not None:
            entry(tags[tag])["namespaces_via_tags"].append(namespace.name)
        elif namespace.labels.get(REV_LABEL) and INJECTION_LABEL not in namespace.labels:
            entry(namespace.labels[REV_LABEL])["namespaces"].append(namespace.name)
    for workload in inputs.workloads:
        if workload.value not in tags:
            entry(workload.value)["workloads"].append(workload)
    for pod in inputs.pods:
        if pod.revision is None:
            continue
        bucket = {"Succeeded": "completed", "Failed": "failed"}.get(pod.phase, "pods")
        entry(pod.revision)[bucket].append(_pod_use(pod))
    return {revision: RevisionUse(revision, **{key: tuple(values)
                                               for key, values in parts.items()})
            for revision, parts in sorted(found.items())}


# -- the prune ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ControlPlaneObject:
    """One object labelled with a revision, as listed."""

    kind: str
    name: str
    namespace: str | None = None
    uid: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind} {where}{self.name}"


@dataclass(frozen=True)
class HelmRelease:
    name: str
    namespace: str

    def command(self) -> str:
        return f"helm uninstall {self.name} -n {self.namespace}"


@dataclass(frozen=True)
class PrunePlan:
    """What a prune of ``revision`` would do, or why it must not."""

    revision: str
    use: RevisionUse
    delete: tuple[ControlPlaneObject, ...] = ()
    helm_releases: tuple[HelmRelease, ...] = ()
    left_alone: tuple[tuple[ControlPlaneObject, str], ...] = ()

    @property
    def blockers(self) -> tuple[str, ...]:
        return self.use.blockers()

    @property
    def may_proceed(self) -> bool:
        return not self.blockers and not self.helm_releases and bool(self.delete)

    def refusal(self) -> str | None:
        """Why nothing is deleted, or None when the prune may go on."""
        if self.blockers:
            return (f"revision {self.revision} is still in use:\n"
                    + "\n".join(f"  {line}" for line in self.blockers))
        if self.helm_releases:
            releases = ", ".join(f"{r.name} (namespace {r.namespace})"
                                 for r in self.helm_releases)
            commands = "\n".join(f"  {r.command()}" for r in self.helm_releases)
            return (f"revision {self.revision} was installed by Helm (release {releases}); "
                    f"nothing was deleted. Uninstall the release instead:\n{commands}")
        if not self.delete:
            return f"revision {self.revision}: nothing installed by istioctl to delete"
        return None


def _owner(obj: ControlPlaneObject) -> tuple[str, str]:
    """('helm', release) / ('istioctl', component) / ('unknown', why)."""
    release = obj.annotations.get(HELM_RELEASE_NAME)
    if release:
        return "helm", release
    component = obj.labels.get(COMPONENT_LABEL)
    if component in ISTIOCTL_PRUNED_COMPONENTS:
        return "istioctl", component
    if component:
        return "unknown", f"component {component} is not one istioctl prunes"
    return "unknown", ("no installer mark (neither istioctl's operator.istio.io/component "
                       "nor a Helm release annotation)")


def plan_prune(revision: str, use: RevisionUse, objects: Iterable[ControlPlaneObject]
               ) -> PrunePlan:
    """The prune of ``revision``: its objects to delete (webhooks first), the Helm releases
    that own any of them (then nothing is deleted), the objects left alone and why."""
    delete: list[ControlPlaneObject] = []
    releases: dict[tuple[str, str], HelmRelease] = {}
    left: list[tuple[ControlPlaneObject, str]] = []
    for obj in objects:
        if obj.labels.get(REV_LABEL) != revision or TAG_LABEL in obj.labels:
            continue  # another revision's, or a tag's (a tag pointing here blocks instead)
        owner, detail = _owner(obj)
        if owner == "helm":
            namespace = obj.annotations.get(HELM_RELEASE_NAMESPACE) or obj.namespace or ""
            releases[(detail, namespace)] = HelmRelease(detail, namespace)
        elif owner == "istioctl":
            delete.append(obj)
        else:
            left.append((obj, detail))
    delete.sort(key=lambda o: (_ORDER.get(o.kind, len(_ORDER)), o.namespace or "", o.name))
    return PrunePlan(revision, use, tuple(delete), tuple(sorted(releases.values(),
                                                                key=lambda r: r.name)),
                     tuple(left))


def unused(report: dict[str, RevisionUse], revision: str) -> bool:
    """Nothing uses ``revision`` (absent from the report counts as unused)."""
    use = report.get(revision)
    return use is None or not use.in_use


def describe_counts(use: RevisionUse) -> Sequence[str]:
    """Short facts for a table row."""
    controlled = sum(1 for pod in use.pods if pod.controlled)
    return (f"{controlled} workload pods", f"{len(use.pods) - controlled} Job/bare pods",
            f"{len(use.completed)} completed", f"{len(use.failed)} failed")


def use_json(use: RevisionUse) -> dict[str, Any]:
    """One revision as ``revisions --output json`` and ``/api/status`` (``revisions``) show it."""
    return {
        "revision": use.revision,
        "installed": use.installed,
        "in_use": use.in_use,
        "istiods": [asdict(i) for i in use.istiods],
        "injectors": list(use.injectors),
        "tags": list(use.tags),
        "pods": [asdict(p) for p in use.pods],
        "completed_pods": [asdict(p) for p in use.completed],
        "failed_pods": [asdict(p) for p in use.failed],
        "namespaces": list(use.namespaces),
        "namespaces_via_tags": list(use.namespaces_via_tags),
        "pinned_workloads": [asdict(w) for w in use.workloads],
        "blockers": list(use.blockers()),
    }
