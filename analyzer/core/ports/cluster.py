"""The cluster with Istio: what the upgrade engine and preflight need from it, the data it
carries, and its errors.

Why here: the engine (service) and its tests must not know the Kubernetes client; the
Kubernetes adapter implements ``MeshCluster`` structurally, and tests implement it in
memory. The data it carries is plain and frozen so it can be logged and compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from analyzer.core.reach import ReachInputs
from analyzer.core.upgrade import ProxyStatus, RolloutStatus, Target


class ClusterError(Exception):
    """The cluster refused or failed an operation (after retries)."""


class ClusterUnreachableError(ClusterError):
    """The API server could not be reached, timed out, or kept answering 5xx/409."""


class ClusterNotFoundError(ClusterError):
    """An object the operation needs does not exist (unknown revision, tag, namespace)."""


class WriteConflictError(ClusterError):
    """A conditional write lost a race: the object changed since it was read (HTTP 409).
    Read it again, redo the change, write again."""


@dataclass(frozen=True)
class RevisionInfo:
    """An istiod control-plane revision found in the cluster."""

    name: str
    ready: bool
    injector: bool  # its own injector MWC (istio-sidecar-injector-<rev>) exists
    detail: str = ""


@dataclass(frozen=True)
class TagInfo:
    """A revision tag: its MWC ``istio-revision-tag-<tag>`` and where it points.

    ``webhook`` names the tag's MWC (``istio-revision-tag-<tag>[-<istio namespace>]``);
    ``service`` its tag Service ``istiod-revision-tag-<tag>``, None when there is none (Istio
    before 1.28 renders none). ``warnings`` name the installer-owned objects the move touches."""

    name: str
    revision: str
    managed_by: str | None = None
    warnings: tuple[str, ...] = field(default_factory=tuple)
    webhook: str | None = None
    service: str | None = None


@dataclass(frozen=True)
class UnrollableWorkload:
    """A workload of a planned namespace that a rolling restart does not move onto the new
    proxy: an OnDelete or partitioned StatefulSet/DaemonSet (its rollout counts as complete
    while its pods stay), or one owned by another controller (an operator, an Argo Rollout)
    that would undo or bypass the restart. Never restarted nor waited on; its pods are
    reported as not restarted."""

    namespace: str
    kind: str
    name: str
    why: str
    fix: str  # what a person runs to make it restartable (or where to act instead)

    def describe(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}: {self.why}"


class MeshCluster(Protocol):
    """What the upgrade needs from a cluster with Istio (one capability per method)."""

    def revisions(self) -> dict[str, RevisionInfo]: ...

    def tags(self) -> dict[str, TagInfo]: ...

    def namespace_labels(self, namespace: str) -> dict[str, str] | None:
        """Labels of a namespace, or None when it does not exist."""
        ...

    def namespaces_labelled(self, value: str) -> list[str]:
        """Namespaces labelled ``istio.io/rev=<value>``, sorted."""
        ...

    def workload_exists(self, target: Target) -> bool: ...

    def reach_inputs(self, tag: str) -> ReachInputs:
        """What ``core.reach.compute_reach`` needs to say what the tag reaches: the webhooks
        of its MutatingWebhookConfiguration, every namespace, every Deployment/StatefulSet/
        DaemonSet's pod-template labels, every pod with its owner and proxy revision."""
        ...

    def move_tag(self, tag: str, revision: str) -> TagInfo:
        """Point the tag at the revision (``istioctl tag set --overwrite``); read back."""
        ...

    def set_revision_label(self, namespaces: Sequence[str], value: str) -> None: ...

    def restart(self, targets: Sequence[Target], step_id: str, at: datetime) -> datetime:
        """Rolling-restart every workload of the targets unless it already carries
        ``step_id``; returns the earliest restart time found on them."""
        ...

    def rollout_status(self, targets: Sequence[Target]) -> RolloutStatus: ...

    def proxy_status(self, targets: Sequence[Target], revision: str) -> ProxyStatus:
        """Proxies of the pods owned by the workloads the targets restart (mismatched ones
        fail); every other pod of the targets' namespaces is listed as not restarted."""
        ...

    def unrollable_workloads(self, targets: Sequence[Target]) -> list[UnrollableWorkload]:
        """Workloads of the targets a restart does not roll (OnDelete, partitioned,
        owned by another controller), which restart, rollout and proxy checks leave out."""
        ...

    def record_event(self, namespace: str, reason: str, message: str, warning: bool) -> None: ...
