"""What a revision tag reaches: which namespaces and workloads get their proxy from it, and why.

Why it exists: moving a tag changes the proxy of every pod its webhooks inject from then on,
not only of the namespaces labelled ``istio.io/rev=<tag>``. The API server calls every webhook
of the tag's MutatingWebhookConfiguration whose ``namespaceSelector`` matches the labels of
the pod's namespace and whose ``objectSelector`` matches the pod's labels
(k8s.io/apiserver ``pkg/admission/plugin/webhook/predicates/namespace/matcher.go`` and
``predicates/object/matcher.go``); an unset selector is defaulted to ``{}``, which matches
everything (``pkg/apis/admissionregistration/v1/defaults.go``). Istio's chart gives the tag
(``manifests/charts/istio-control/istio-discovery/templates/revision-tags-mwc.yaml``):

- ``rev.namespace.*``: namespaces labelled ``istio.io/rev=<tag>`` without ``istio-injection``;
- ``rev.object.*``: pods labelled ``istio.io/rev=<tag>`` in namespaces with neither label;
- for the ``default`` tag also ``namespace.*`` (namespaces labelled ``istio-injection=enabled``)
  and ``object.*`` (pods labelled ``sidecar.istio.io/inject=true`` without ``istio.io/rev``,
  in namespaces with neither label), and ``auto.*`` when injection is on by default.

This module evaluates those selectors itself, pure, from what an adapter read (the webhooks,
the namespaces' labels, the workloads' pod-template labels, the pods). The label-selector
semantics are k8s.io/apimachinery's ``LabelSelectorAsSelector`` (``pkg/apis/meta/v1/helpers.go``)
and ``labels.Requirement.Matches`` (``pkg/labels/selector.go``): ``matchLabels`` entries are
equality, ``In`` needs the key present with a listed value, ``NotIn`` holds when the key is
absent or its value is not listed, ``Exists``/``DoesNotExist`` test presence only, and all
requirements must hold. (The simulated mesh has its own matcher on purpose: it is the oracle
this one is tested against.)

What the tag reaches is then told apart:
- a namespace is reached *whole* when a pod without any label would be injected there: every
  workload in it follows the tag (``Target(namespace)``);
- otherwise only the workloads whose pod template the object selectors pick follow it
  (``Target(kind, name)``); pods no Deployment/StatefulSet/DaemonSet owns (Jobs, bare pods,
  other controllers) are reported, never restarted;
- namespaces labelled ``istio.io/dataplane-mode=ambient`` that no webhook selects have no
  sidecar: reported, never planned (istiod's injector itself ignores that label:
  ``pkg/kube/inject/inject.go`` ``injectRequired``, so an ambient namespace the webhooks do
  select is reached like any other, with a note);
- namespaces and workloads that name another revision or tag in ``istio.io/rev`` are *pinned*
  (e.g. a gateway pinned to a revision): they do not follow the tag, reported, never planned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from analyzer.core.upgrade import REVISION_LABEL, Target

INJECTION_LABEL = "istio-injection"
INJECT_LABEL = "sidecar.istio.io/inject"
AMBIENT_LABEL = "istio.io/dataplane-mode"
#: workloads a rolling restart can move (the kinds ``kubectl rollout restart`` restarts)
RESTARTABLE = ("Deployment", "StatefulSet", "DaemonSet")
#: what a pod without a sidecar reports as its proxy revision
NO_SIDECAR = "none"


class SelectorError(ValueError):
    """A selector ``LabelSelectorAsSelector`` would refuse (unknown operator, bad values)."""


# -- label selectors (metav1.LabelSelector) ---------------------------------------------------


@dataclass(frozen=True)
class Requirement:
    """One ``matchExpressions`` entry (a ``matchLabels`` entry is ``In`` with one value)."""

    key: str
    operator: str  # In | NotIn | Exists | DoesNotExist
    values: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.operator in ("In", "NotIn"):
            if not self.values:
                raise SelectorError(f"{self.key} {self.operator}: values must not be empty")
        elif self.operator in ("Exists", "DoesNotExist"):
            if self.values:
                raise SelectorError(f"{self.key} {self.operator}: values must be empty")
        else:
            raise SelectorError(f"{self.operator!r} is not a valid label selector operator")

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "In":
            return present and labels[self.key] in self.values
        if self.operator == "NotIn":
            return not present or labels[self.key] not in self.values
        if self.operator == "Exists":
            return present
        return not present

    @property
    def positive(self) -> bool:
        """Whether it asks for a label to be there (In, Exists) rather than absent."""
        return self.operator in ("In", "Exists")

    def describe(self) -> str:
        if self.operator == "Exists":
            return self.key
        if self.operator == "DoesNotExist":
            return f"!{self.key}"
        if self.operator == "In" and len(self.values) == 1:
            return f"{self.key}={self.values[0]}"
        if self.operator == "NotIn" and len(self.values) == 1:
            return f"{self.key}!={self.values[0]}"
        word = "in" if self.operator == "In" else "notin"
        return f"{self.key} {word} ({','.join(self.values)})"


@dataclass(frozen=True)
class LabelSelector:
    """All requirements must hold; no requirement matches everything."""

    requirements: tuple[Requirement, ...] = ()

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any] | None) -> LabelSelector:
        """A webhook's selector as stored (unset is defaulted to ``{}``: everything)."""
        if not spec:
            return cls()
        requirements = [
            Requirement(str(key), "In", (str(value),))
            for key, value in sorted((spec.get("matchLabels") or {}).items())
        ]
        for expression in spec.get("matchExpressions") or []:
            requirements.append(
                Requirement(
                    str(expression.get("key", "")),
                    str(expression.get("operator", "")),
                    tuple(str(v) for v in expression.get("values") or ()),
                )
            )
        return cls(tuple(requirements))

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(requirement.matches(labels) for requirement in self.requirements)

    def why(self) -> str:
        """The labels that make it match (its positive requirements), or the whole selector."""
        positive = [r.describe() for r in self.requirements if r.positive]
        chosen = positive or [r.describe() for r in self.requirements]
        return ",".join(chosen) or "any labels"


# -- what the adapter reads ---------------------------------------------------------------------


@dataclass(frozen=True)
class Webhook:
    """One webhook of the tag's MutatingWebhookConfiguration, as the API server matches it."""

    name: str
    namespace_selector: LabelSelector = LabelSelector()
    object_selector: LabelSelector = LabelSelector()
    pod_create: bool = True  # its rules intercept CREATE of core/v1 pods

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> Webhook:
        return cls(
            name=str(spec.get("name", "")),
            namespace_selector=LabelSelector.from_spec(spec.get("namespaceSelector")),
            object_selector=LabelSelector.from_spec(spec.get("objectSelector")),
            pod_create=any(_intercepts_pod_create(rule) for rule in spec.get("rules") or []),
        )

    def selects(self, namespace_labels: Mapping[str, str], pod_labels: Mapping[str, str]) -> bool:
        return (
            self.pod_create
            and self.namespace_selector.matches(namespace_labels)
            and self.object_selector.matches(pod_labels)
        )


def _intercepts_pod_create(rule: Mapping[str, Any]) -> bool:
    operations = rule.get("operations") or []
    groups = rule.get("apiGroups") or []
    resources = rule.get("resources") or []
    return (
        ("CREATE" in operations or "*" in operations)
        and ("" in groups or "*" in groups)
        and ("pods" in resources or "*" in resources)
    )


@dataclass(frozen=True)
class NamespaceInfo:
    name: str
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkloadInfo:
    """A Deployment, StatefulSet or DaemonSet and the labels of its pod template."""

    namespace: str
    kind: str
    name: str
    template_labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PodInfo:
    """A pod: its labels, its controlling workload (a Deployment through its ReplicaSet;
    ``owner_kind`` None for a bare pod), its proxy revision (None: no sidecar)."""

    namespace: str
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    owner_kind: str | None = None
    owner_name: str | None = None
    revision: str | None = None
    phase: str = "Running"
    terminating: bool = False

    @property
    def live(self) -> bool:
        return not self.terminating and self.phase not in ("Succeeded", "Failed")


@dataclass(frozen=True)
class ReachInputs:
    """Everything ``compute_reach`` needs, as read from the cluster."""

    tag: str
    webhook_config: str  # the tag's MutatingWebhookConfiguration
    webhooks: tuple[Webhook, ...]
    namespaces: tuple[NamespaceInfo, ...]
    workloads: tuple[WorkloadInfo, ...] = ()
    pods: tuple[PodInfo, ...] = ()


# -- what the tag reaches ---------------------------------------------------------------------


def _count(revisions: Iterable[str | None]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for revision in revisions:
        key = revision or NO_SIDECAR
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


def _show_revisions(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{rev}×{n}" for rev, n in counts.items()) or "no pods"


@dataclass(frozen=True)
class WorkloadReach:
    """A workload whose pod template the tag's webhooks select."""

    namespace: str
    kind: str
    name: str
    why: str
    pods: int = 0  # live pods it owns
    revisions: dict[str, int] = field(default_factory=dict)  # proxy revision → pods

    @property
    def target(self) -> Target:
        return Target(namespace=self.namespace, kind=self.kind, name=self.name)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "why": self.why, "pods": self.pods,
                "revisions": dict(self.revisions)}  # fmt: skip


@dataclass(frozen=True)
class NamespaceReach:
    """A namespace the tag reaches: whole (its label) or through some pods' labels."""

    name: str
    whole: bool
    why: str
    pods: int  # live pods the webhooks select
    revisions: dict[str, int]  # proxy revision of those pods → count ("none": no sidecar)
    workloads: tuple[WorkloadReach, ...] = ()
    #: reached live pods no Deployment/StatefulSet/DaemonSet owns: "pod (Job x)", "pod (bare)"
    unowned: tuple[str, ...] = ()
    note: str = ""
    labels: dict[str, str] = field(default_factory=dict)  # the namespace's own

    def targets(self) -> tuple[Target, ...]:
        """What an upgrade restarts here: the namespace, or only its reached workloads."""
        if self.whole:
            return (Target(namespace=self.name),)
        return tuple(w.target for w in self.workloads)

    def to_dict(self) -> dict[str, Any]:
        return {
            "namespace": self.name,
            "whole": self.whole,
            "why": self.why,
            "pods": self.pods,
            "revisions": dict(self.revisions),
            "workloads": [w.to_dict() for w in self.workloads],
            "unowned": list(self.unowned),
            "note": self.note,
        }


@dataclass(frozen=True)
class Pinned:
    """Something that names another revision or tag in ``istio.io/rev``: not the tag's."""

    namespace: str
    what: str  # "namespace" or "Deployment name"
    value: str  # its istio.io/rev label

    def to_dict(self) -> dict[str, str]:
        return {"namespace": self.namespace, "what": self.what, REVISION_LABEL: self.value}


@dataclass(frozen=True)
class Reach:
    tag: str
    webhook_config: str
    namespaces: tuple[NamespaceReach, ...] = ()
    ambient: tuple[str, ...] = ()  # ambient namespaces no webhook selects: no sidecar
    pinned: tuple[Pinned, ...] = ()

    def get(self, name: str) -> NamespaceReach | None:
        return next((n for n in self.namespaces if n.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.namespaces)

    def pinned_workload(self, target: Target) -> Pinned | None:
        what = f"{target.kind} {target.name}"
        return next(
            (p for p in self.pinned if p.namespace == target.namespace and p.what == what), None
        )

    def workload(self, target: Target) -> WorkloadReach | None:
        found = self.get(target.namespace)
        if found is None:
            return None
        return next(
            (w for w in found.workloads if (w.kind, w.name) == (target.kind, target.name)), None
        )

    def on_revision(self, revision: str, skip: Sequence[Target] = ()) -> tuple[Target, ...]:
        """What must be restarted so no reached workload keeps a pod on ``revision``: the
        namespace when reached whole, else the workloads; ``skip`` is already covered."""
        covered_namespaces = {t.namespace for t in skip if t.kind is None}
        covered = {(t.namespace, t.kind, t.name) for t in skip if t.kind is not None}
        found: list[Target] = []
        for namespace in self.namespaces:
            if namespace.name in covered_namespaces:
                continue
            moved = [
                w for w in namespace.workloads
                if w.revisions.get(revision) and (w.namespace, w.kind, w.name) not in covered
            ]  # fmt: skip
            if not moved:
                continue
            if namespace.whole:
                found.append(Target(namespace=namespace.name))
            else:
                found.extend(w.target for w in moved)
        return tuple(found)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tag": self.tag,
            "webhook_configuration": self.webhook_config,
            "namespaces": [n.to_dict() for n in self.namespaces],
            "ambient": list(self.ambient),
            "pinned": [p.to_dict() for p in self.pinned],
        }

    def lines(self) -> list[str]:
        """The reach for a person: one line per namespace, then what it leaves alone."""
        out = [f"tag {self.tag} ({self.webhook_config}) reaches {len(self.namespaces)} "
               "namespace(s):"]  # fmt: skip
        for namespace in self.namespaces:
            scope = "whole namespace" if namespace.whole else ", ".join(
                f"{w.kind} {w.name}" for w in namespace.workloads) or "no workload"  # fmt: skip
            out.append(
                f"  {namespace.name}: {namespace.why}; {scope}; {namespace.pods} pod(s) on "
                f"{_show_revisions(namespace.revisions)}"
            )
            if namespace.unowned:
                out.append(
                    "    not restarted (no Deployment/StatefulSet/DaemonSet owns them): "
                    + ", ".join(namespace.unowned)
                )
            if namespace.note:
                out.append(f"    note: {namespace.note}")
        for name in self.ambient:
            out.append(f"  {name}: ambient ({AMBIENT_LABEL}=ambient), no sidecar: not upgraded")
        for pinned in self.pinned:
            where = pinned.namespace if pinned.what == "namespace" else (
                f"{pinned.what} in {pinned.namespace}")  # fmt: skip
            out.append(
                f"  {where}: pinned by {REVISION_LABEL}={pinned.value}, does not follow tag "
                f"{self.tag}: not upgraded"
            )
        return out


def _first(webhooks: Sequence[Webhook], ns_labels: Mapping[str, str],
           labels: Mapping[str, str]) -> Webhook | None:  # fmt: skip
    return next((w for w in webhooks if w.selects(ns_labels, labels)), None)


def _pinned_value(value: str | None, tag: str) -> str | None:
    return value if value and value != tag else None


def compute_reach(inputs: ReachInputs) -> Reach:
    """Which namespaces and workloads the tag's webhooks inject, and why (see module doc)."""
    webhooks = tuple(w for w in inputs.webhooks if w.pod_create)
    workloads_in: dict[str, list[WorkloadInfo]] = {}
    for workload in inputs.workloads:
        workloads_in.setdefault(workload.namespace, []).append(workload)
    pods_in: dict[str, list[PodInfo]] = {}
    for pod in inputs.pods:
        pods_in.setdefault(pod.namespace, []).append(pod)
    reached: list[NamespaceReach] = []
    ambient: list[str] = []
    pinned: list[Pinned] = []
    for namespace in sorted(inputs.namespaces, key=lambda n: n.name):
        labels = namespace.labels
        live = [p for p in pods_in.get(namespace.name, []) if p.live]
        whole_by = _first(webhooks, labels, {})
        workloads: list[WorkloadReach] = []
        for workload in sorted(workloads_in.get(namespace.name, []),
                               key=lambda w: (w.kind, w.name)):  # fmt: skip
            webhook = _first(webhooks, labels, workload.template_labels)
            if webhook is None:
                value = _pinned_value(workload.template_labels.get(REVISION_LABEL), inputs.tag)
                unlabelled = REVISION_LABEL not in labels and INJECTION_LABEL not in labels
                opted_out = workload.template_labels.get(INJECT_LABEL) == "false"  # e.g. istiod
                if value and whole_by is None and unlabelled and not opted_out:
                    pinned.append(Pinned(namespace.name, f"{workload.kind} {workload.name}", value))
                continue
            owned = [
                p for p in live if (p.owner_kind, p.owner_name) == (workload.kind, workload.name)
            ]
            selector = webhook.namespace_selector if whole_by else webhook.object_selector
            workloads.append(WorkloadReach(
                namespace=namespace.name, kind=workload.kind, name=workload.name,
                why=f"{'namespace' if whole_by else 'pod'} label {selector.why()} "
                f"({webhook.name})",
                pods=len(owned), revisions=_count(p.revision for p in owned),
            ))  # fmt: skip
        pods = [p for p in live if _first(webhooks, labels, p.labels) is not None]
        restartable = {(w.kind, w.name) for w in workloads}
        unowned = tuple(
            f"{p.name} ({p.owner_kind} {p.owner_name})" if p.owner_kind else f"{p.name} (bare pod)"
            for p in sorted(pods, key=lambda p: p.name)
            if (p.owner_kind, p.owner_name) not in restartable
        )
        is_ambient = labels.get(AMBIENT_LABEL) == "ambient"
        if whole_by is None and not workloads and not pods:
            value = _pinned_value(labels.get(REVISION_LABEL), inputs.tag)
            if value:
                pinned.append(Pinned(namespace.name, "namespace", value))
            elif is_ambient:
                ambient.append(namespace.name)
            continue
        if whole_by is not None:
            why = f"namespace label {whole_by.namespace_selector.why()} ({whole_by.name})"
        else:
            why = "; ".join(dict.fromkeys(w.why for w in workloads)) or "pod labels of " + ", ".join(
                p.name for p in pods)  # fmt: skip
        note = (
            f"labelled {AMBIENT_LABEL}=ambient, yet the tag's webhooks inject sidecars here"
            if is_ambient else ""
        )  # fmt: skip
        reached.append(NamespaceReach(
            name=namespace.name, whole=whole_by is not None, why=why, pods=len(pods),
            revisions=_count(p.revision for p in pods), workloads=tuple(workloads),
            unowned=unowned, note=note, labels=dict(labels),
        ))  # fmt: skip
    return Reach(
        tag=inputs.tag,
        webhook_config=inputs.webhook_config,
        namespaces=tuple(reached),
        ambient=tuple(ambient),
        pinned=tuple(pinned),
    )
