"""The cluster through the official ``kubernetes`` client: revisions, tags, restarts, proxies.

Why it exists: the upgrade engine depends on the ``MeshCluster`` Protocol; this is the one
implementation that talks to a real API server (or the simulated mesh's fake one). It does
what the people's tools do, by their rules (docs/architecture.md, "Moving the tag"):
- move a tag as ``istioctl tag set --overwrite``: the tag webhook, the tag Service when there
  is one, for ``default`` the non-revisioned injector deactivated and
  ``istiod-default-validator`` moved; installer-owned objects are warned of;
- restart like ``kubectl rollout restart`` (strategic-merge patch of the pod template's
  ``restartedAt``), plus ``canary-analyzer.io/restart-step`` so a step never restarts twice;
- rollout status by kubectl's rules; per-pod proxy revision from ``sidecar.istio.io/status``.
Objects are handled as plain JSON dicts (``_preload_content=False``): what the API sent,
no client-model conversions. Conflicts, 429/5xx and timeouts are retried with backoff.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import urllib3
from kubernetes import client as kube
from kubernetes.client.exceptions import ApiException

from analyzer.adapters import kubeconfig
from analyzer.adapters.lease import micro_time, send_json
from analyzer.adapters.retry_policy import Retryable, call_with_retries
from analyzer.core.health_gates import HealthSignals, pod_health
from analyzer.core.ports import (
    ClusterError,
    ClusterNotFoundError,
    ClusterUnreachableError,
    RevisionInfo,
    TagInfo,
    UnrollableWorkload,
    VersionedDocument,
    WriteConflictError,
)
from analyzer.core.reach import (
    NamespaceInfo,
    PodInfo,
    ReachInputs,
    SelectorError,
    Webhook,
    WorkloadInfo,
)
from analyzer.core.shadow import WorkloadTemplate
from analyzer.core.upgrade import REVISION_LABEL, ProxyStatus, RolloutStatus, Target
from analyzer.settings import KubernetesSettings

log = logging.getLogger("canary_analyzer.kubernetes")

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
RESTART_STEP = "canary-analyzer.io/restart-step"
SIDECAR_STATUS = "sidecar.istio.io/status"
INJECT = "sidecar.istio.io/inject"
TAG_LABEL = "istio.io/tag"
MANAGED_BY = "app.kubernetes.io/managed-by"
DEFAULT_VALIDATOR = "istiod-default-validator"
INJECTOR_SUFFIX = "sidecar-injector.istio.io"
OPERATOR_LABELS = "operator.istio.io"
#: istioctl/pkg/util/common.go NeverMatch: how istioctl switches a webhook off in place
NEVER_MATCH = {"matchLabels": {"istio.io/deactivated": "never-match"}}
STRATEGIC = "application/strategic-merge-patch+json"
RETRY_STATUSES = frozenset({409, 429, 500, 502, 503, 504})
KINDS = ("Deployment", "StatefulSet", "DaemonSet")
#: where Events about cluster-scoped objects (our Namespaces) are accepted and found
EVENTS_NAMESPACE = "default"
REPORTING_CONTROLLER = "canary-analyzer.io/upgrade"

T = TypeVar("T")


class ClusterRefusedError(ClusterError):
    """The API server answered a 4xx other than 404 (and 409/429, which are retried): the
    request itself is wrong (invalid, forbidden). ``api_message`` is the Status message."""

    def __init__(self, what: str, status: int, reason: str, api_message: str) -> None:
        super().__init__(
            f"{what}: HTTP {status} {reason}" + (f": {api_message}" if api_message else "")
        )
        self.status = status
        self.api_message = api_message


def _api_message(error: ApiException) -> str:
    """The ``message`` of the Status body the API server sent, if any."""
    try:
        return str(json.loads(error.body or b"{}").get("message") or "")
    except (ValueError, AttributeError, TypeError):
        return ""


class WorkloadPausedError(ClusterError):
    """A paused Deployment cannot be restarted (kubectl refuses too)."""


def connect(settings: KubernetesSettings) -> kube.ApiClient:
    """An ApiClient from the kubeconfig (settings, else $KUBECONFIG) or in-cluster config."""
    configuration, _ = kubeconfig.load(settings)
    configuration.retries = 0  # retries are ours (with backoff, on 409/5xx as well)
    return kube.ApiClient(configuration)


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _labels(obj: dict[str, Any]) -> dict[str, str]:
    return _meta(obj).get("labels") or {}


def pod_revision(pod: dict[str, Any]) -> str | None:
    """The injecting istiod's revision, from ``sidecar.istio.io/status`` (never the label)."""
    raw = (_meta(pod).get("annotations") or {}).get(SIDECAR_STATUS)
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
    meta = _meta(pod)
    labels = meta.get("labels") or {}
    choice = labels[INJECT] if INJECT in labels else (meta.get("annotations") or {}).get(INJECT)
    if choice == "false":
        return f"{INJECT}=false: never injected"
    return None


def controller_of(obj: dict[str, Any]) -> tuple[str, str] | None:
    """(kind, name) of the object's managing controller (ownerReference ``controller: true``)."""
    for ref in _meta(obj).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("kind", "")), str(ref.get("name", ""))
    return None


def unrollable(kind: str, obj: dict[str, Any]) -> tuple[str, str] | None:
    """(why, fix) when ``kubectl rollout restart`` does not move this workload's pods.

    kube-controller-manager replaces OnDelete pods only when they are deleted, and keeps the
    ordinals below a StatefulSet's ``partition`` on the current revision
    (kubernetes ``pkg/controller/statefulset/stateful_set_utils.go`` ``newVersionedStatefulSetPod``,
    ``pkg/controller/daemon/daemon_controller.go`` ``updateDaemonSet``); yet kubectl counts both as rolled out
    (``pkg/polymorphichelpers/rollout_status.go``). A workload managed by another controller
    (an operator, an Argo Rollout) has its template reconciled by that controller."""
    meta, spec = _meta(obj), obj.get("spec") or {}
    namespace, name = meta.get("namespace"), meta.get("name")
    owner = controller_of(obj)
    if owner is not None:
        return (
            f"managed by {owner[0]} {owner[1]}, which would undo or bypass a restart",
            f"upgrade it through its owner ({owner[0]} {namespace}/{owner[1]})",
        )
    strategy = spec.get("updateStrategy") or {}
    resource = kind.lower()
    if kind in ("StatefulSet", "DaemonSet") and strategy.get("type") == "OnDelete":
        patch = '{"spec":{"updateStrategy":{"type":"RollingUpdate"}}}'
        return (
            "updateStrategy OnDelete: its pods change only when deleted",
            f"kubectl -n {namespace} patch {resource} {name} -p '{patch}'",
        )
    partition = (strategy.get("rollingUpdate") or {}).get("partition") or 0
    if kind == "StatefulSet" and int(partition) > 0:
        patch = '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}'
        return (
            f"partition {partition}: the pods below ordinal {partition} keep the old revision",
            f"kubectl -n {namespace} patch {resource} {name} -p '{patch}'",
        )
    return None


#: controllers of pods a restart moves (through a Deployment's ReplicaSets) or that run to
#: completion (Jobs, reported as not restarted but never named by preflight)
STANDARD_POD_CONTROLLERS = frozenset({"ReplicaSet", "StatefulSet", "DaemonSet", "Job"})


def rollout_problem(kind: str, obj: dict[str, Any]) -> tuple[bool, str | None, str]:
    """kubectl's rollout-status rules: (complete, failure reason, what it waits for)."""
    spec, status, meta = obj.get("spec") or {}, obj.get("status") or {}, _meta(obj)
    name = f"{meta.get('namespace')}/{meta.get('name')}"
    if (meta.get("generation") or 0) > (status.get("observedGeneration") or 0):
        return False, None, f"{name}: update not yet observed"
    if kind == "Deployment":
        for condition in status.get("conditions") or []:
            if condition.get("type") == "Progressing" and (
                condition.get("reason") == "ProgressDeadlineExceeded"
            ):
                return False, f"{name} exceeded its progress deadline", name
        replicas = spec.get("replicas", 1)
        updated = status.get("updatedReplicas") or 0
        if updated < replicas:
            return False, None, f"{name}: {updated} of {replicas} updated"
        if (status.get("replicas") or 0) > updated:
            return False, None, f"{name}: old replicas pending termination"
        if (status.get("availableReplicas") or 0) < updated:
            return (
                False,
                None,
                f"{name}: {status.get('availableReplicas') or 0} of {updated} available",
            )
        return True, None, ""
    strategy = (spec.get("updateStrategy") or {}).get("type", "RollingUpdate")
    if strategy != "RollingUpdate":
        return True, None, ""  # kubectl: status is only available for RollingUpdate
    if kind == "StatefulSet":
        replicas = spec.get("replicas", 1)
        if (status.get("readyReplicas") or 0) < replicas:
            return False, None, f"{name}: {status.get('readyReplicas') or 0} of {replicas} ready"
        partition = ((spec.get("updateStrategy") or {}).get("rollingUpdate") or {}).get("partition")
        if partition:
            if (status.get("updatedReplicas") or 0) < replicas - partition:
                return False, None, f"{name}: partitioned roll out waiting"
            return True, None, ""
        if status.get("updateRevision") != status.get("currentRevision"):
            return False, None, f"{name}: pods not yet on the update revision"
        return True, None, ""
    desired = status.get("desiredNumberScheduled") or 0
    if (status.get("updatedNumberScheduled") or 0) < desired:
        return (
            False,
            None,
            f"{name}: {status.get('updatedNumberScheduled') or 0} of {desired} updated",
        )
    if (status.get("numberAvailable") or 0) < desired:
        return False, None, f"{name}: {status.get('numberAvailable') or 0} of {desired} available"
    return True, None, ""


class KubernetesCluster:
    """``MeshCluster`` on a real (or simulated) API server."""

    def __init__(
        self,
        api_client: kube.ApiClient,
        request_timeout: float = 30.0,
        istio_namespace: str = "istio-system",
        attempts: int = 6,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api_client = api_client
        self.core = kube.CoreV1Api(api_client)
        self.apps = kube.AppsV1Api(api_client)
        self.admission = kube.AdmissionregistrationV1Api(api_client)
        self.reporting_instance = f"canary-analyzer-{socket.gethostname()}"[:128]
        self._event_refusal_logged = False
        self.timeout = request_timeout
        self.istio_namespace = istio_namespace
        self.attempts = attempts
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.sleep = sleep
        #: what ``from_settings`` connected to (context, cluster, server); None when built
        #: from a ready ApiClient
        self.target: kubeconfig.KubeTarget | None = None

    @classmethod
    def from_settings(cls, settings: KubernetesSettings, istio_namespace: str) -> KubernetesCluster:
        configuration, target = kubeconfig.load(settings)
        configuration.retries = 0  # retries are ours (with backoff, on 409/5xx as well)
        cluster = cls(
            kube.ApiClient(configuration),
            request_timeout=settings.request_timeout.total_seconds(),
            istio_namespace=istio_namespace,
        )
        cluster.target = target
        return cluster

    def close(self) -> None:
        self.api_client.close()

    # -- plumbing ----------------------------------------------------------------------------

    def retry(self, what: str, operation: Callable[[], T], attempts: int | None = None) -> T:
        """Run ``operation``; retry 409/429/5xx/timeouts with doubling backoff; 404 → not found."""
        attempts = attempts or self.attempts

        def attempt() -> T:
            try:
                return operation()
            except ApiException as error:
                if error.status == 404:
                    raise ClusterNotFoundError(f"{what}: not found") from None
                if error.status not in RETRY_STATUSES:
                    if 400 <= error.status < 500:
                        raise ClusterRefusedError(
                            what, error.status, error.reason, _api_message(error)
                        ) from None
                    raise ClusterError(f"{what}: HTTP {error.status} {error.reason}") from None
                raise Retryable(f"HTTP {error.status} {error.reason}") from None
            except (urllib3.exceptions.HTTPError, OSError) as error:
                raise Retryable(f"{type(error).__name__}: {error}") from None

        def on_retry(number: int, problem: str) -> None:
            log.warning(
                "retrying cluster request",
                extra={"fields": {"what": what, "attempt": number, "problem": problem}},
            )

        try:
            return call_with_retries(
                attempt,
                attempts=attempts,
                backoff=self.backoff,
                max_backoff=self.max_backoff,
                sleep=self.sleep,
                on_retry=on_retry,
            )
        except Retryable as last:
            raise ClusterUnreachableError(
                f"{what}: {last.problem} (after {attempts} attempts)"
            ) from None

    def _json(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        response = method(*args, _preload_content=False, _request_timeout=self.timeout, **kwargs)
        return json.loads(response.data or b"{}")

    def _get(
        self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> dict[str, Any]:
        return self.retry(what, lambda: self._json(method, *args, **kwargs))

    def _items(
        self, what: str, method: Callable[..., Any], *args: Any, **kwargs: Any
    ) -> list[dict[str, Any]]:
        return self._get(what, method, *args, **kwargs).get("items") or []

    def _workload_api(
        self, kind: str
    ) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
        """(list in namespace, read, patch) for a workload kind."""
        name = {
            "Deployment": "deployment",
            "StatefulSet": "stateful_set",
            "DaemonSet": "daemon_set",
        }[kind]
        return (
            getattr(self.apps, f"list_namespaced_{name}"),
            getattr(self.apps, f"read_namespaced_{name}"),
            getattr(self.apps, f"patch_namespaced_{name}"),
        )

    def _replica_set_owners(self, namespace: str) -> dict[str, tuple[str, str] | None]:
        """ReplicaSet name → its controller (kind, name): how a pod is traced to its
        Deployment (Pod → ReplicaSet → Deployment)."""
        return {
            str(_meta(rs).get("name")): controller_of(rs)
            for rs in self._items(
                f"ReplicaSets in {namespace}", self.apps.list_namespaced_replica_set, namespace
            )
        }

    def _workloads(self, target: Target) -> list[tuple[str, dict[str, Any]]]:
        """(kind, object) of every workload a target names."""
        if target.kind is not None:
            _, read, _ = self._workload_api(target.kind)
            obj = self._get(f"{target.describe()}", read, target.name, target.namespace)
            return [(target.kind, obj)]
        found = []
        for kind in KINDS:
            listing, _, _ = self._workload_api(kind)
            for obj in self._items(f"list {kind} in {target.namespace}", listing, target.namespace):
                found.append((kind, obj))
        return found

    # -- discovery ---------------------------------------------------------------------------

    def revisions(self) -> dict[str, RevisionInfo]:
        deployments = self._items(
            "list istiod deployments",
            self.apps.list_namespaced_deployment,
            self.istio_namespace,
            label_selector="app=istiod",
        )
        injectors = {
            _labels(mwc).get(REVISION_LABEL)
            for mwc in self._items(
                "list injector webhooks",
                self.admission.list_mutating_webhook_configuration,
                label_selector=f"{REVISION_LABEL},!{TAG_LABEL}",
            )
        }
        found: dict[str, RevisionInfo] = {}
        for deployment in deployments:
            revision = _labels(deployment).get(REVISION_LABEL, "default")
            status = deployment.get("status") or {}
            wanted = (deployment.get("spec") or {}).get("replicas", 1)
            ready = (status.get("readyReplicas") or 0) >= max(1, wanted) and (
                status.get("availableReplicas") or 0
            ) >= 1
            found[revision] = RevisionInfo(
                name=revision,
                ready=ready,
                injector=revision in injectors,
                detail=f"{status.get('readyReplicas') or 0}/{wanted} istiod replicas ready",
            )
        return found

    def tags(self) -> dict[str, TagInfo]:
        """Every tag with a webhook (``istio.io/tag`` label), as ``istioctl tag list`` finds
        them; the owners of its webhook, tag Service and (``default``) validator warned of."""
        webhooks: dict[str, dict[str, Any]] = {}
        for mwc in self._items(
            "list tag webhooks",
            self.admission.list_mutating_webhook_configuration,
            label_selector=TAG_LABEL,
        ):
            name = _labels(mwc)[TAG_LABEL]
            # several Istio installs: prefer the webhook named for our namespace
            if name not in webhooks or _meta(mwc).get("name") == self._tag_webhook_name(name):
                webhooks[name] = mwc
        services = {
            _labels(svc).get(TAG_LABEL): svc
            for svc in self._items(
                "list tag services",
                self.core.list_namespaced_service,
                self.istio_namespace,
                label_selector=TAG_LABEL,
            )
        }
        found = {}
        for name, mwc in webhooks.items():
            labels = _labels(mwc)
            warnings = list(_ownership_warnings("MutatingWebhookConfiguration", mwc))
            service = services.get(name)
            if service is not None:
                warnings += _ownership_warnings("Service", service)
            if name == "default":
                validator = self._validator()
                if validator is not None:
                    warnings += _ownership_warnings("ValidatingWebhookConfiguration", validator)
            found[name] = TagInfo(
                name=name,
                revision=labels.get(REVISION_LABEL, ""),
                managed_by=labels.get(MANAGED_BY),
                warnings=tuple(warnings),
                webhook=_meta(mwc).get("name"),
                service=_meta(service).get("name") if service else None,
            )
        return found

    def namespace_labels(self, namespace: str) -> dict[str, str] | None:
        try:
            return _labels(self._get(f"namespace {namespace}", self.core.read_namespace, namespace))
        except ClusterNotFoundError:
            return None

    def namespaces_labelled(self, value: str) -> list[str]:
        items = self._items(
            "list namespaces", self.core.list_namespace, label_selector=f"{REVISION_LABEL}={value}"
        )
        return sorted(_meta(ns)["name"] for ns in items)

    def workload_exists(self, target: Target) -> bool:
        try:
            return bool(self._workloads(target))
        except ClusterNotFoundError:
            return False

    def reach_inputs(self, tag: str) -> ReachInputs:
        """The tag's webhooks (its MWC found by the ``istio.io/tag`` label, the one named for
        this istiod namespace first) and, cluster-wide, the namespaces, workloads, ReplicaSets
        (to find a pod's Deployment) and pods that ``core.reach`` evaluates them against."""
        configs = self._items(
            f"webhooks of tag {tag}",
            self.admission.list_mutating_webhook_configuration,
            label_selector=f"{TAG_LABEL}={tag}",
        )
        expected = tag_webhook_name(tag, self.istio_namespace)
        configs = [c for c in configs if _meta(c).get("name") == expected] or configs
        if not configs:
            raise ClusterNotFoundError(
                f"tag {tag}: no MutatingWebhookConfiguration labelled {TAG_LABEL}={tag}"
            )
        try:
            webhooks = tuple(Webhook.from_spec(w) for c in configs for w in c.get("webhooks") or [])
        except SelectorError as error:
            raise ClusterError(f"tag {tag}: unreadable webhook selector: {error}") from None
        namespaces = tuple(
            NamespaceInfo(_meta(n).get("name", ""), dict(_labels(n)))
            for n in self._items("list namespaces", self.core.list_namespace)
        )
        workloads = []
        for kind, method in (
            ("Deployment", self.apps.list_deployment_for_all_namespaces),
            ("StatefulSet", self.apps.list_stateful_set_for_all_namespaces),
            ("DaemonSet", self.apps.list_daemon_set_for_all_namespaces),
        ):
            for obj in self._items(f"list {kind}s", method):
                template = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
                workloads.append(WorkloadInfo(
                    _meta(obj).get("namespace", ""), kind, _meta(obj).get("name", ""),
                    dict(template.get("labels") or {}),
                ))  # fmt: skip
        replica_sets = {
            (_meta(rs).get("namespace"), _meta(rs).get("name")): controller_of(rs)
            for rs in self._items("list ReplicaSets", self.apps.list_replica_set_for_all_namespaces)
        }
        pods = []
        for pod in self._items("list pods", self.core.list_pod_for_all_namespaces):
            meta = _meta(pod)
            owner = controller_of(pod)
            if owner and owner[0] == "ReplicaSet":
                owner = replica_sets.get((meta.get("namespace"), owner[1])) or owner
            pods.append(PodInfo(
                namespace=meta.get("namespace", ""), name=meta.get("name", ""),
                labels=dict(meta.get("labels") or {}),
                owner_kind=owner[0] if owner else None, owner_name=owner[1] if owner else None,
                revision=pod_revision(pod),
                phase=(pod.get("status") or {}).get("phase") or "Pending",
                terminating=bool(meta.get("deletionTimestamp")),
            ))  # fmt: skip
        return ReachInputs(
            tag=tag,
            webhook_config=", ".join(_meta(c).get("name", "") for c in configs),
            webhooks=webhooks,
            namespaces=namespaces,
            workloads=tuple(workloads),
            pods=tuple(pods),
        )

    # -- the tag -----------------------------------------------------------------------------
    #
    # ``istioctl tag set <tag> --revision <rev> --overwrite`` (istioctl/pkg/tag/generate.go,
    # tag.go, util.go) reads the revision's own injector webhook ("canonical": labelled
    # istio.io/rev=<rev> without istio.io/tag) and renders from the istio-discovery chart
    # (templates/revision-tags-mwc.yaml, revision-tags-svc.yaml) the tag webhook, the tag
    # Service and, for ``default``, the default chart's istiod-default-validator, then
    # server-side applies them. What the charts put there for the new revision is what the
    # move writes, field by field; everything else on the objects stays as their owner left it.

    def _tag_webhook_name(self, tag: str) -> str:
        return tag_webhook_name(tag, self.istio_namespace)

    def _canonical_injector(self, revision: str) -> tuple[dict[str, str], dict[str, Any]]:
        """(labels, first ``*sidecar-injector.istio.io`` webhook) of the revision's own
        injector MWC (util.go GetWebhooksWithRevision; generate.go
        tagWebhookConfigFromCanonicalWebhook)."""
        injectors = self._items(
            f"injector of revision {revision}",
            self.admission.list_mutating_webhook_configuration,
            label_selector=f"{REVISION_LABEL}={revision},!{TAG_LABEL}",
        )
        own = {
            f"istio-sidecar-injector-{revision}",
            f"istio-sidecar-injector-{revision}-{self.istio_namespace}",
        }
        injectors.sort(key=lambda m: _meta(m).get("name") not in own)
        for mwc in injectors:
            for webhook in mwc.get("webhooks") or []:
                if webhook.get("name", "").endswith(INJECTOR_SUFFIX):
                    return _labels(mwc), webhook
        raise ClusterNotFoundError(
            f"revision {revision} has no injector MutatingWebhookConfiguration "
            f"(selector {REVISION_LABEL}={revision},!{TAG_LABEL})"
        )

    def _read_tag_webhook(self, tag: str) -> dict[str, Any]:
        """The tag's MWC: by the chart's name, else the only one labelled with the tag."""
        name = self._tag_webhook_name(tag)
        try:
            return self._json(self.admission.read_mutating_webhook_configuration, name)
        except ApiException as error:
            if error.status != 404:
                raise
        found = (
            self._json(
                self.admission.list_mutating_webhook_configuration,
                label_selector=f"{TAG_LABEL}={tag}",
            ).get("items")
            or []
        )
        if len(found) != 1:
            raise ClusterNotFoundError(
                f"tag {tag}: no MutatingWebhookConfiguration {name}"
                + (f" and {len(found)} labelled {TAG_LABEL}={tag}" if found else "")
            )
        return found[0]

    def move_tag(self, tag: str, revision: str) -> TagInfo:
        """``istioctl tag set <tag> --revision <revision> --overwrite``, then read back:
        the tag webhook, the tag Service when there is one (Istio 1.28 and later render it;
        its absence is normal before), and for ``default`` the non-revisioned injector
        deactivated and ``istiod-default-validator`` pointed at the revision."""
        canonical_labels, canonical = self._canonical_injector(revision)
        warnings: list[str] = []
        written = self.retry(
            f"move tag {tag} to {revision}",
            lambda: self._move_tag_webhook(tag, revision, canonical_labels, canonical),
        )
        warnings += _ownership_warnings("MutatingWebhookConfiguration", written)
        service = self.retry(
            f"move tag Service of {tag}", lambda: self._move_tag_service(tag, revision)
        )
        if service is not None:
            warnings += _ownership_warnings("Service", service)
        if tag == "default":
            deactivated = self.retry(
                "deactivate the non-revisioned injector", self._deactivate_default_injector
            )
            if deactivated is not None:
                warnings += _ownership_warnings("MutatingWebhookConfiguration", deactivated)
                warnings.append(
                    f"{_meta(deactivated).get('name')} (istio.io/rev=default) was deactivated "
                    "as istioctl does (its selectors never match); pods labelled for it are "
                    "now injected by the tag"
                )
            validator = self.retry(
                f"move {DEFAULT_VALIDATOR}", lambda: self._move_validator(revision, canonical)
            )
            if validator is not None:
                warnings += _ownership_warnings("ValidatingWebhookConfiguration", validator)
        self._verify_tag(tag, revision, canonical, service is not None)
        labels = _labels(written)
        return TagInfo(
            name=tag,
            revision=revision,
            managed_by=labels.get(MANAGED_BY),
            warnings=tuple(warnings),
            webhook=_meta(written).get("name"),
            service=_meta(service).get("name") if service is not None else None,
        )

    def _move_tag_webhook(
        self,
        tag: str,
        revision: str,
        canonical_labels: dict[str, str],
        canonical: dict[str, Any],
    ) -> dict[str, Any]:
        mwc = self._read_tag_webhook(tag)
        meta = mwc["metadata"]
        # generate.go: the canonical webhook's labels without "app" (the tag keeps its own
        # app: sidecar-injector) and, istioctl's tags being user-managed, without the
        # installer's operator.istio.io labels; labels already there stay (server-side apply
        # leaves fields of other managers alone)
        meta["labels"] = {
            **_labels(mwc),
            **{
                k: v for k, v in canonical_labels.items() if k != "app" and OPERATOR_LABELS not in k
            },
            REVISION_LABEL: revision,
            TAG_LABEL: tag,
        }
        for webhook in mwc.get("webhooks") or []:
            webhook["clientConfig"] = _injector_client_config(
                webhook.get("clientConfig") or {}, canonical, self.istio_namespace
            )
            if canonical.get("reinvocationPolicy"):
                webhook["reinvocationPolicy"] = canonical["reinvocationPolicy"]
        return self._json(self.admission.replace_mutating_webhook_configuration, meta["name"], mwc)

    def _move_tag_service(self, tag: str, revision: str) -> dict[str, Any] | None:
        """revision-tags-svc.yaml: labels ``istio.io/rev``/``istio.io/tag`` and a selector
        on the revision's istiod, as the revision's own Service ``istiod-<rev>`` has them."""
        name = f"istiod-revision-tag-{tag}"
        try:
            service = self._json(self.core.read_namespaced_service, name, self.istio_namespace)
        except ApiException as error:
            if error.status == 404:
                return None  # Istio before 1.28 renders no tag Service
            raise
        canonical = (
            self._json(
                self.core.list_namespaced_service,
                self.istio_namespace,
                label_selector=f"{REVISION_LABEL}={revision},!{TAG_LABEL},app=istiod",
            ).get("items")
            or []
        )
        own = next(
            (svc for svc in canonical if _meta(svc).get("name") == f"istiod-{revision}"),
            canonical[0] if canonical else None,
        )
        labels = {**_labels(service)}
        if own is not None:
            labels.update({k: v for k, v in _labels(own).items() if OPERATOR_LABELS not in k})
            selector = dict((own.get("spec") or {}).get("selector") or {})
        elif revision == "default":
            selector = {"app": "istiod", "istio": "pilot"}
        else:
            selector = {"app": "istiod", REVISION_LABEL: revision}
        labels[REVISION_LABEL] = revision
        labels[TAG_LABEL] = tag
        service["metadata"]["labels"] = labels
        service.setdefault("spec", {})["selector"] = selector
        return self._json(self.core.replace_namespaced_service, name, self.istio_namespace, service)

    def _deactivate_default_injector(self) -> dict[str, Any] | None:
        """util.go DeactivateIstioInjectionWebhook: the non-revisioned injector
        (istio.io/rev=default, no tag) stays but never matches again."""
        found = (
            self._json(
                self.admission.list_mutating_webhook_configuration,
                label_selector=f"{REVISION_LABEL}=default,!{TAG_LABEL}",
            ).get("items")
            or []
        )
        if not found:
            return None
        if len(found) > 1:
            raise ClusterError(
                "expected a single webhook for the default revision, found "
                + ", ".join(sorted(_meta(m).get("name", "") for m in found))
            )
        mwc = found[0]
        webhooks = mwc.get("webhooks") or []
        if all(
            w.get("namespaceSelector") == NEVER_MATCH and w.get("objectSelector") == NEVER_MATCH
            for w in webhooks
        ):
            return None  # already deactivated (a resumed or repeated move)
        for webhook in webhooks:
            webhook["namespaceSelector"] = json.loads(json.dumps(NEVER_MATCH))
            webhook["objectSelector"] = json.loads(json.dumps(NEVER_MATCH))
        return self._json(
            self.admission.replace_mutating_webhook_configuration, _meta(mwc)["name"], mwc
        )

    def _validator(self) -> dict[str, Any] | None:
        try:
            return self._get(
                f"read {DEFAULT_VALIDATOR}",
                self.admission.read_validating_webhook_configuration,
                DEFAULT_VALIDATOR,
            )
        except ClusterNotFoundError:
            return None

    def _move_validator(self, revision: str, canonical: dict[str, Any]) -> dict[str, Any] | None:
        """generate.go fixWhConfig: the injector's endpoint with the path ``/validate``
        (a URL's path replaced whole), its CA bundle, label ``istio.io/rev``; the failure
        policy istiod manages is left as it is."""
        try:
            vwc = self._json(
                self.admission.read_validating_webhook_configuration, DEFAULT_VALIDATOR
            )
        except ApiException as error:
            if error.status == 404:
                log.warning(f"{DEFAULT_VALIDATOR} not found; only the tag webhook moved")
                return None
            raise
        vwc["metadata"].setdefault("labels", {})[REVISION_LABEL] = revision
        source = canonical.get("clientConfig") or {}
        for webhook in vwc.get("webhooks") or []:
            current = webhook.get("clientConfig") or {}
            config: dict[str, Any] = {}
            if source.get("url"):
                config["url"] = urlunsplit(urlsplit(source["url"])._replace(path="/validate"))
            else:
                service = source.get("service") or {}
                port = (current.get("service") or {}).get("port")  # the charts render none
                config["service"] = {
                    "name": service.get("name"),
                    "namespace": service.get("namespace") or self.istio_namespace,
                    "path": "/validate",
                    **({"port": port} if port else {}),
                }
            ca = source.get("caBundle") or current.get("caBundle")
            if ca:
                config["caBundle"] = ca
            webhook["clientConfig"] = config
        return self._json(
            self.admission.replace_validating_webhook_configuration, DEFAULT_VALIDATOR, vwc
        )

    def _verify_tag(
        self, tag: str, revision: str, canonical: dict[str, Any], has_service: bool
    ) -> None:
        """Read back: the tag webhook (and Service) now point at the revision."""
        back = self.retry(f"read back tag {tag}", lambda: self._read_tag_webhook(tag))
        target = _endpoint(canonical.get("clientConfig") or {})
        wrong = [
            w.get("name")
            for w in back.get("webhooks") or []
            if _endpoint(w.get("clientConfig") or {}) != target
        ]
        problems = []
        if _labels(back).get(REVISION_LABEL) != revision or wrong:
            problems.append(
                f"webhook label {_labels(back).get(REVISION_LABEL)}, webhooks not "
                f"rewritten: {wrong}"
            )
        if has_service:
            service = self._get(
                f"read back tag Service of {tag}",
                self.core.read_namespaced_service,
                f"istiod-revision-tag-{tag}",
                self.istio_namespace,
            )
            if _labels(service).get(REVISION_LABEL) != revision:
                problems.append(f"Service label {_labels(service).get(REVISION_LABEL)}")
        if problems:
            raise ClusterError(f"tag {tag} did not move to {revision}: " + "; ".join(problems))

    # -- namespaces and workloads ------------------------------------------------------------

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

    def restart(self, targets: Sequence[Target], step_id: str, at: datetime) -> datetime:
        """``kubectl rollout restart`` for each workload not already restarted by ``step_id``,
        stamped ``at`` (the caller's now: kubectl ``pkg/polymorphichelpers/objectrestarter.go``
        stamps ``time.Now()`` when it patches); a workload the step already restarted keeps
        its stamp, which is returned. Workloads a restart cannot roll are left alone."""
        times: list[datetime] = []
        stamp = _rfc3339(at)
        for target in targets:
            for kind, obj in self._workloads(target):
                meta = _meta(obj)
                template = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
                annotations = template.get("annotations") or {}
                if annotations.get(RESTART_STEP) == step_id:
                    previous = _parse_time(annotations.get(RESTARTED_AT, ""))
                    times.append(previous or at)
                    continue
                if unrollable(kind, obj) is not None:
                    continue  # left alone; its pods are reported as not restarted
                if kind == "Deployment" and (obj.get("spec") or {}).get("paused"):
                    raise WorkloadPausedError(
                        f"Deployment {meta.get('namespace')}/{meta.get('name')} is paused; "
                        "resume it (kubectl rollout resume) before upgrading"
                    )
                _, _, patch = self._workload_api(kind)
                body = {
                    "spec": {
                        "template": {
                            "metadata": {
                                "annotations": {RESTARTED_AT: stamp, RESTART_STEP: step_id}
                            }
                        }
                    }
                }
                self.retry(
                    f"restart {kind} {meta.get('namespace')}/{meta.get('name')}",
                    lambda p=patch, n=meta["name"], ns=meta["namespace"], b=body: self._json(
                        p, n, ns, b, _content_type=STRATEGIC
                    ),
                )
                times.append(_parse_time(stamp) or at)
        return min(times) if times else at

    def workload_templates(self, namespaces: Sequence[str]) -> list[WorkloadTemplate]:
        """Every Deployment, StatefulSet and DaemonSet of the namespaces, as shadow mode
        reads them (list only): ``metadata.generation`` and the pod template's
        ``restartedAt`` stamp (kubectl ``pkg/polymorphichelpers/objectrestarter.go``)."""
        found = []
        for namespace in namespaces:
            for kind in KINDS:
                listing, _, _ = self._workload_api(kind)
                for obj in self._items(f"list {kind} in {namespace}", listing, namespace):
                    meta = _meta(obj)
                    template = ((obj.get("spec") or {}).get("template") or {}).get("metadata")
                    stamp = ((template or {}).get("annotations") or {}).get(RESTARTED_AT, "")
                    found.append(
                        WorkloadTemplate(
                            namespace=namespace,
                            kind=kind,
                            name=str(meta.get("name")),
                            generation=int(meta.get("generation") or 0),
                            restarted_at=_parse_time(stamp) if stamp else None,
                        )
                    )
        return found

    def rollout_status(self, targets: Sequence[Target]) -> RolloutStatus:
        waiting: list[str] = []
        for target in targets:
            for kind, obj in self._workloads(target):
                if unrollable(kind, obj) is not None:
                    continue  # never restarted, never waited on
                complete, failed, detail = rollout_problem(kind, obj)
                if failed:
                    return RolloutStatus(complete=False, failed=failed, waiting=(detail,))
                if not complete:
                    waiting.append(detail)
        return RolloutStatus(complete=not waiting, waiting=tuple(waiting))

    def _classify_pods(
        self, target: Target
    ) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], str]]]:
        """(pods owned by the workloads the target restarts, [(other pod, why not)]).

        Ownership follows the controller ownerReferences: Pod → ReplicaSet → Deployment,
        Pod → StatefulSet, Pod → DaemonSet. For a namespace target every other pod of the
        namespace is listed (Job and CronJob pods, bare pods, pods of other controllers or
        of unrollable workloads); for one workload, only its own pods it does not roll."""
        workloads = self._workloads(target)
        restarted: set[tuple[str, str]] = set()
        left_alone: dict[tuple[str, str], str] = {}
        for kind, obj in workloads:
            reason = unrollable(kind, obj)
            key = (kind, str(_meta(obj).get("name")))
            if reason is None:
                restarted.add(key)
            else:
                left_alone[key] = reason[0]
        replica_sets = self._replica_set_owners(target.namespace)
        pods = self._items(
            f"pods in {target.namespace}", self.core.list_namespaced_pod, target.namespace
        )
        owned: list[dict[str, Any]] = []
        others: list[tuple[dict[str, Any], str]] = []
        for pod in pods:
            owner = controller_of(pod)
            workload: tuple[str, str] | None = None
            if owner is None:
                label = "bare pod"
            elif owner[0] == "ReplicaSet":
                rs_owner = replica_sets.get(owner[1])
                if rs_owner is not None and rs_owner[0] == "Deployment":
                    workload = rs_owner
                    label = f"Deployment {rs_owner[1]}"
                else:
                    label = f"ReplicaSet {owner[1]}" + (
                        f" of {rs_owner[0]} {rs_owner[1]}" if rs_owner else " without a Deployment"
                    )
            elif owner[0] in ("StatefulSet", "DaemonSet"):
                workload = owner
                label = f"{owner[0]} {owner[1]}"
            else:
                label = f"{owner[0]} {owner[1]}"
            if workload is not None and workload in restarted:
                owned.append(pod)
            elif workload is not None and workload in left_alone:
                others.append((pod, f"{label}: {left_alone[workload]}"))
            elif target.kind is None:
                others.append((pod, label))
        return owned, others

    def proxy_status(self, targets: Sequence[Target], revision: str) -> ProxyStatus:
        """Every running, non-terminating pod owned by a workload the targets restart must
        report ``revision``, unless the injector skips it; every other pod beside them is
        listed as not restarted by this upgrade, with its revision, and never fails."""
        checked, wrong, left = 0, [], []
        for target in targets:
            owned, others = self._classify_pods(target)
            for pod in owned:
                meta = _meta(pod)
                phase = (pod.get("status") or {}).get("phase")
                if meta.get("deletionTimestamp") or phase in ("Succeeded", "Failed"):
                    continue
                name = f"{meta.get('namespace')}/{meta.get('name')}"
                found = pod_revision(pod)
                skipped = injection_skipped(pod)
                if skipped is not None:
                    left.append(f"{name} ({skipped}): {_revision_text(pod)}")
                    continue
                checked += 1
                if found != revision:
                    wrong.append(f"{name}: {_revision_text(pod)}")
            for pod, why in others:
                meta = _meta(pod)
                if meta.get("deletionTimestamp"):
                    continue
                phase = (pod.get("status") or {}).get("phase")
                state = f", {phase}" if phase and phase != "Running" else ""
                left.append(
                    f"{meta.get('namespace')}/{meta.get('name')} ({why}{state}): "
                    f"{_revision_text(pod)}"
                )
        return ProxyStatus(checked=checked, mismatched=tuple(wrong), not_restarted=tuple(left))

    def pod_health(self, namespaces: Sequence[str], since: datetime) -> dict[str, HealthSignals]:
        """Per namespace, the volume-free health of the pods created since its restart
        (container restarts, crash loops, proxies not ready; ``core.quiet.pod_health``)."""
        return {
            namespace: pod_health(
                self._items(f"pods in {namespace}", self.core.list_namespaced_pod, namespace),
                since,
            )
            for namespace in namespaces
        }

    def unrollable_workloads(self, targets: Sequence[Target]) -> list[UnrollableWorkload]:
        """Workloads of the targets a restart does not roll, and, for a namespace, what
        owns pods there that no standard workload manages (an Argo Rollout's ReplicaSets,
        an operator's pods): the upgrade could never move those pods."""
        found: list[UnrollableWorkload] = []
        for target in targets:
            for kind, obj in self._workloads(target):
                reason = unrollable(kind, obj)
                if reason is not None:
                    meta = _meta(obj)
                    found.append(UnrollableWorkload(
                        str(meta.get("namespace")), kind, str(meta.get("name")), *reason
                    ))  # fmt: skip
            if target.kind is not None:
                continue
            seen: set[tuple[str, str]] = set()
            replica_sets = self._replica_set_owners(target.namespace)
            for pod in self._items(
                f"pods in {target.namespace}", self.core.list_namespaced_pod, target.namespace
            ):
                owner = controller_of(pod)
                if owner is None:
                    continue  # a bare pod: reported at verification, never restarted
                if owner[0] == "ReplicaSet":
                    rs_owner = replica_sets.get(owner[1])
                    if rs_owner is not None and rs_owner[0] == "Deployment":
                        continue
                    owner = rs_owner or owner
                elif owner[0] in STANDARD_POD_CONTROLLERS:
                    continue
                if owner in seen:
                    continue
                seen.add(owner)
                found.append(UnrollableWorkload(
                    target.namespace, owner[0], owner[1],
                    "its pods are managed by a controller the upgrade does not restart",
                    f"restart it with its own tooling after the upgrade "
                    f"({owner[0]} {target.namespace}/{owner[1]})",
                ))  # fmt: skip
        return found

    def record_event(self, namespace: str, reason: str, message: str, warning: bool) -> None:
        """An events.k8s.io/v1 Event about the Namespace object.

        A Namespace is cluster-scoped, so the API server accepts an Event about it only in
        ``default`` (or ``kube-system``) — pkg/apis/core/validation/events.go,
        legacyValidateEvent — which is where client-go's recorders put them too
        (tools/events: cluster-scoped ``regarding`` → ``default``): ``kubectl get events -n
        default``. Events are best effort: a refusal is logged once at warning with the API
        server's message and not raised; an unreachable server raises ``ClusterError``."""
        now = datetime.now(UTC)
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {
                "generateName": f"canary-analyzer.{namespace}.",
                "namespace": EVENTS_NAMESPACE,
            },
            "eventTime": micro_time(now),
            "regarding": {"apiVersion": "v1", "kind": "Namespace", "name": namespace},
            "reason": reason[:128],
            "action": reason[:128],
            "note": message[:1024],
            "type": "Warning" if warning else "Normal",
            "reportingController": REPORTING_CONTROLLER,
            "reportingInstance": self.reporting_instance,
        }
        try:
            self.retry(
                f"event about namespace {namespace}",
                lambda: send_json(
                    self.api_client,
                    "POST",
                    f"/apis/events.k8s.io/v1/namespaces/{EVENTS_NAMESPACE}/events",
                    body,
                    self.timeout,
                ),
                attempts=2,
            )
        except ClusterRefusedError as error:
            if not self._event_refusal_logged:
                self._event_refusal_logged = True
                log.warning(
                    "the API server refuses our Events; none will be recorded this run",
                    extra={"fields": {"status": error.status, "message": error.api_message}},
                )


def _revision_text(pod: dict[str, Any]) -> str:
    found = pod_revision(pod)
    if found:
        return f"revision {found}"
    return "sidecar without status" if has_proxy(pod) else "no sidecar"


def tag_webhook_name(tag: str, istio_namespace: str = "istio-system") -> str:
    """The tag's MutatingWebhookConfiguration as Istio's chart names it
    (istio-discovery ``templates/revision-tags-mwc.yaml``): ``istio-revision-tag-<tag>`` in
    ``istio-system``, ``istio-revision-tag-<tag>-<namespace>`` for an istiod elsewhere."""
    if istio_namespace == "istio-system":
        return f"istio-revision-tag-{tag}"
    return f"istio-revision-tag-{tag}-{istio_namespace}"


def _injector_client_config(
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


def _endpoint(config: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    service = config.get("service") or {}
    return config.get("url"), service.get("name"), service.get("namespace")


def _ownership_warnings(kind: str, obj: dict[str, Any]) -> tuple[str, ...]:
    """Objects an installer owns (Helm, the Istio operator) may be put back by it: the next
    ``helm upgrade`` of istiod (tag webhook, tag Service) or base (the validator's
    ``defaultRevision``), or the operator's next reconcile."""
    labels = _labels(obj)
    owner = labels.get(MANAGED_BY, "")
    if owner.lower() == "helm" or any(OPERATOR_LABELS in key for key in labels):
        return (
            f"{kind} {_meta(obj).get('name', '')} is managed by "
            f"{owner or 'the Istio operator'}; its owner may move the tag back on its next "
            "reconcile or upgrade",
        )
    return ()


class ConfigMapStateStore:
    """A JSON document under one key of a ConfigMap owned by the service: the engine's
    state in ``data.state``; the service's own (pause, queued requests) in ``data.service``;
    the upgrade's timeline in ``data.timeline``; verbs standbys queued for the leader in
    ``data.inbox``. Each key is written by a strategic-merge patch of that key alone, so the
    keys never overwrite each other.

    ``save`` writes whatever is there (one writer per key: the leader). ``read_versioned``
    and ``write_if_unchanged`` are for a key several replicas change (the inbox): the patch
    carries the ``metadata.resourceVersion`` read, and the API server refuses it with 409
    Conflict if anything wrote the ConfigMap in between (``WriteConflictError``)."""

    def __init__(
        self, cluster: KubernetesCluster, name: str, namespace: str, key: str = "state"
    ) -> None:
        self.cluster = cluster
        self.name = name
        self.namespace = namespace
        self.key = key

    def _what(self) -> str:
        return f"{self.key} of ConfigMap {self.namespace}/{self.name}"

    def _read_configmap(self) -> dict[str, Any] | None:
        """The ConfigMap as JSON, or None when it does not exist yet."""
        try:
            return self.cluster._get(
                f"read {self._what()}",
                self.cluster.core.read_namespaced_config_map,
                self.name,
                self.namespace,
            )
        except ClusterNotFoundError:
            return None

    def _create(self, data: dict[str, str]) -> None:
        """Create the ConfigMap holding ``data`` (409 if it exists meanwhile)."""
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {MANAGED_BY: "canary-analyzer"},
            },
            "data": data,
        }
        self.cluster._json(self.cluster.core.create_namespaced_config_map, self.namespace, body)

    def _patch(self, patch: dict[str, Any]) -> None:
        self.cluster._json(
            self.cluster.core.patch_namespaced_config_map,
            self.name,
            self.namespace,
            patch,
            _content_type=STRATEGIC,
        )

    def load(self) -> dict[str, Any] | None:
        configmap = self._read_configmap()
        raw = ((configmap or {}).get("data") or {}).get(self.key)
        return json.loads(raw) if raw else None

    def save(self, document: dict[str, Any]) -> None:
        data = {self.key: json.dumps(document, sort_keys=True)}

        def write() -> None:
            try:
                self._patch({"data": data})
            except ApiException as error:
                if error.status != 404:
                    raise
                self._create(data)

        self.cluster.retry(f"save {self._what()}", write)

    def read_versioned(self) -> VersionedDocument:
        """The document under the key and the ConfigMap's resourceVersion (both None when
        the ConfigMap does not exist; the document None when the key is absent or unreadable)."""
        configmap = self._read_configmap()
        if configmap is None:
            return VersionedDocument(document=None, version=None)
        raw = (configmap.get("data") or {}).get(self.key)
        document = None
        if raw:
            try:
                document = json.loads(raw)
            except ValueError:
                log.warning(
                    "unreadable JSON in the state ConfigMap; it is replaced on the next write",
                    extra={"fields": {"key": self.key}},
                )
        return VersionedDocument(document=document, version=_meta(configmap).get("resourceVersion"))

    def write_if_unchanged(self, document: Any, version: str | None) -> None:
        """Write the key only if the ConfigMap is still at ``version`` (None: create it, only
        if it does not exist). ``WriteConflictError`` when another write came first;
        timeouts and 5xx are retried like every call (a retried write that had landed
        comes back as a conflict, so the caller re-reads and sees it)."""
        data = {self.key: json.dumps(document, sort_keys=True)}

        def write() -> None:
            try:
                if version is None:
                    self._create(data)
                else:
                    self._patch({"metadata": {"resourceVersion": version}, "data": data})
            except ApiException as error:
                if error.status in (404, 409):  # changed, created or deleted since the read
                    raise WriteConflictError(
                        f"{self._what()} changed since it was read (HTTP {error.status})"
                    ) from None
                raise

        self.cluster.retry(f"write {self._what()}", write)
