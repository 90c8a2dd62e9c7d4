"""Scenario files: the cluster, the mesh and the traffic a simulated run starts from.

A scenario says which istiod revisions run, where the revision tags point, which
namespaces and workloads exist, how each namespace's traffic behaves, which revision
regresses where ("revision 1-15-4 in namespace bar: 5xx +4 pp, p99 ×1.8"), how traffic
drifts over the simulated night, and which faults to inject. Durations are simulated time;
``time_scale`` says how many simulated seconds pass per real second.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from analyzer.core.durations import Duration
from analyzer.core.yaml_lines import line_of
from analyzer.errors import BadInputError

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_INT_OR_PERCENT = re.compile(r"^\d+%?$")


class ScenarioError(BadInputError):
    """A scenario file that cannot be used; the message names file, line and field."""


def _dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(f"{value!r} is not a DNS-1123 label (lowercase letters, digits, '-')")
    return value


DnsLabel = Annotated[str, Field(min_length=1)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class TrafficSpec(_Model):
    """Requests a workload serves per simulated second, its 5xx ratio and latency."""

    rps: float = Field(20.0, gt=0)
    error_rate: float = Field(0.002, ge=0, le=1)
    p50_ms: float = Field(20.0, gt=0)
    p99_ms: float = Field(200.0, gt=0)

    @model_validator(mode="after")
    def _p99_above_p50(self) -> TrafficSpec:
        if self.p99_ms < self.p50_ms:
            raise ValueError("p99_ms must not be below p50_ms")
        return self


class WorkloadSpec(_Model):
    """One Deployment, StatefulSet or DaemonSet of an application namespace."""

    name: DnsLabel
    kind: Literal["Deployment", "StatefulSet", "DaemonSet"] = "Deployment"
    replicas: int = Field(2, ge=0)
    strategy: Literal["RollingUpdate", "Recreate", "OnDelete"] = "RollingUpdate"
    max_surge: int | str = "25%"
    max_unavailable: int | str = "25%"
    partition: int = Field(0, ge=0)
    progress_deadline: Duration = "600s"  # type: ignore[assignment]
    min_ready: Duration = "0s"  # type: ignore[assignment]
    inject: bool = True
    host_network: bool = False
    pod_labels: dict[str, str] = Field(default_factory=dict)
    pod_annotations: dict[str, str] = Field(default_factory=dict)
    traffic: TrafficSpec | None = None

    _check_name = field_validator("name")(_dns_label)

    @field_validator("max_surge", "max_unavailable")
    @classmethod
    def _int_or_percent(cls, value: int | str) -> int | str:
        if isinstance(value, int):
            if value < 0:
                raise ValueError("must not be negative")
            return value
        if not _INT_OR_PERCENT.match(value):
            raise ValueError(f"{value!r} is neither a count nor a percentage like '25%'")
        return value if value.endswith("%") else int(value)

    @model_validator(mode="after")
    def _strategy_fits_kind(self) -> WorkloadSpec:
        allowed = {
            "Deployment": {"RollingUpdate", "Recreate"},
            "StatefulSet": {"RollingUpdate", "OnDelete"},
            "DaemonSet": {"RollingUpdate", "OnDelete"},
        }[self.kind]
        if self.strategy not in allowed:
            raise ValueError(
                f"strategy {self.strategy} does not exist for a {self.kind} "
                f"(use one of {sorted(allowed)})"
            )
        return self


class JobSpec(_Model):
    """A batch/v1 Job (optionally created by a CronJob): pods the upgrade never restarts.

    ``state: completed`` seeds a finished Job (its pod in phase Succeeded); ``running`` one
    whose pod runs for ``runs_for`` (simulated) and then completes; without ``runs_for`` it
    runs all night.
    """

    name: DnsLabel
    state: Literal["running", "completed"] = "running"
    runs_for: Duration | None = None
    cron_job: DnsLabel | None = None
    schedule: str = "0 3 * * *"
    pod_labels: dict[str, str] = Field(default_factory=dict)

    _check_name = field_validator("name")(_dns_label)


class OwnerSpec(_Model):
    """A controller outside Kubernetes' own (an operator) that owns a pod."""

    api_version: str = "argoproj.io/v1alpha1"
    kind: str = "Rollout"
    name: DnsLabel


class BarePodSpec(_Model):
    """A pod created directly (no ownerReferences), or owned by a foreign controller."""

    name: DnsLabel
    host_network: bool = False
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    owner: OwnerSpec | None = None

    _check_name = field_validator("name")(_dns_label)


class RolloutSpec(_Model):
    """An Argo Rollout's ReplicaSet (apps/v1, owned by argoproj.io/v1alpha1 Rollout): pods
    kube-controller-manager keeps alive but no Deployment owns; it serves traffic."""

    name: DnsLabel
    replicas: int = Field(2, ge=0)
    traffic: TrafficSpec | None = None

    _check_name = field_validator("name")(_dns_label)


class NamespaceSpec(_Model):
    """An application namespace; labels default to ``istio.io/rev: <first tag>``."""

    name: DnsLabel
    labels: dict[str, str] | None = None
    traffic: TrafficSpec = TrafficSpec()
    workloads: list[WorkloadSpec] = Field(default_factory=list)
    jobs: list[JobSpec] = Field(default_factory=list)
    bare_pods: list[BarePodSpec] = Field(default_factory=list)
    rollouts: list[RolloutSpec] = Field(default_factory=list)

    _check_name = field_validator("name")(_dns_label)

    @model_validator(mode="after")
    def _unique_workloads(self) -> NamespaceSpec:
        seen: set[tuple[str, str]] = set()
        for workload in self.workloads:
            key = (workload.kind, workload.name)
            if key in seen:
                raise ValueError(f"{workload.kind} {workload.name!r} is listed twice")
            seen.add(key)
        for kind, names in (("Job", [job.name for job in self.jobs]),
                            ("Pod", [pod.name for pod in self.bare_pods]),
                            ("Rollout", [rollout.name for rollout in self.rollouts])):
            if len(set(names)) != len(names):
                raise ValueError(f"a {kind} name is listed twice")
        return self


class RevisionSpec(_Model):
    """An istiod control-plane revision (``istiod-<name>``) and the proxy version it injects."""

    name: DnsLabel
    version: str | None = None
    istiod_ready: bool = True
    istiod_replicas: int = Field(1, ge=0)
    # who installed it: None seeds only what the engine needs (webhooks, Services, istiod,
    # ConfigMaps as the charts render them); "istioctl" or "helm" seed everything the
    # istio-discovery chart installs, marked as that installer marks it (istio_objects.py)
    installed_by: Literal["istioctl", "helm"] | None = None

    _check_name = field_validator("name")(_dns_label)

    @property
    def proxy_version(self) -> str:
        """``1-15-4`` → ``1.15.4`` unless given."""
        return self.version or self.name.replace("-", ".")


class TagSpec(_Model):
    """A revision tag (``istio-revision-tag-<name>``) and the revision it points at."""

    name: DnsLabel = "default"
    revision: str


class GatewaySpec(_Model):
    """The ingress gateway Deployment, injected through the tag like any workload."""

    name: DnsLabel = "istio-ingressgateway"
    namespace: DnsLabel = "istio-ingress"
    replicas: int = Field(2, ge=0)
    labels: dict[str, str] | None = None


class OutboundSpec(_Model):
    """Each application pod's own calls to an upstream outside the mesh (reported only by the
    calling proxy, ``reporter="source"``, as for a ServiceEntry host without a sidecar)."""

    host: str = "payments.example.com"
    rps_share: float = Field(0.5, gt=0)  # outbound calls per request the workload serves
    error_rate: float = Field(0.002, ge=0, le=1)
    p50_ms: float = Field(40.0, gt=0)
    p99_ms: float = Field(400.0, gt=0)

    @model_validator(mode="after")
    def _p99_above_p50(self) -> OutboundSpec:
        if self.p99_ms < self.p50_ms:
            raise ValueError("p99_ms must not be below p50_ms")
        return self


class RegressionSpec(_Model):
    """How a revision misbehaves, optionally only in one namespace or workload.

    ``side: destination`` (the default) is a proxy serving badly: both the server's and the
    caller's proxy report it. ``side: source`` is the new proxy's own outbound calls failing
    or slowing (e.g. a broken upstream cluster or TLS origination): only the calling pods'
    ``reporter="source"`` series show it; what the workload serves is unchanged.
    ``error_rate_pp`` is a shorter spelling of ``error_rate_add_pp``.
    """

    revision: str
    namespace: str | None = None
    workload: str | None = None
    side: Literal["destination", "source"] = "destination"
    error_rate_add_pp: float = Field(0.0, ge=-100, le=100)
    p50_factor: float = Field(1.0, gt=0)
    p99_factor: float = Field(1.0, gt=0)
    rate_factor: float = Field(1.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _short_error_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and "error_rate_pp" in data:
            data = dict(data)
            if "error_rate_add_pp" in data:
                raise ValueError("give error_rate_pp or error_rate_add_pp, not both")
            data["error_rate_add_pp"] = data.pop("error_rate_pp")
        return data


class DriftPoint(_Model):
    """Traffic conditions at a simulated instant; the generator interpolates linearly."""

    after: Duration
    rate_factor: float = Field(1.0, gt=0)
    error_offset_pp: float = Field(0.0, ge=-100, le=100)
    latency_factor: float = Field(1.0, gt=0)


class DriftSpec(_Model):
    """Time-of-night drift applied to every namespace alike."""

    points: list[DriftPoint] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> DriftSpec:
        offsets = [point.after for point in self.points]
        if offsets != sorted(offsets):
            raise ValueError("drift points must be in ascending 'after' order")
        return self


class NeverReadyFault(_Model):
    """Pods matching this never pass their readiness probe."""

    namespace: str | None = None
    revision: str | None = None
    workload: str | None = None


_WRITE_METHODS = ["POST", "PUT", "PATCH", "DELETE"]


class ApiErrorFault(_Model):
    """Answer the ``at_request``-th matching request (1-based) and ``count - 1`` after it
    with this HTTP status."""

    status: Literal[409, 429, 500, 503, 504] = 500
    at_request: int = Field(1, ge=1)
    count: int = Field(1, ge=1)
    methods: list[str] = Field(default_factory=lambda: list(_WRITE_METHODS))
    path_contains: str | None = None


class SlowResponseFault(_Model):
    """Delay matching requests by ``delay`` (real time); ``count`` None means forever."""

    delay: Duration
    at_request: int = Field(1, ge=1)
    count: int | None = Field(None, ge=1)
    methods: list[str] = Field(default_factory=lambda: ["GET", *_WRITE_METHODS])
    path_contains: str | None = None


class FaultsSpec(_Model):
    never_ready: list[NeverReadyFault] = Field(default_factory=list)
    api_errors: list[ApiErrorFault] = Field(default_factory=list)
    slow_responses: list[SlowResponseFault] = Field(default_factory=list)


class Scenario(_Model):
    """A whole simulated mesh."""

    name: str = "scenario"
    description: str = ""
    time_scale: float = Field(1.0, gt=0)
    seed: int = 1
    pod_ready_delay: Duration = "5s"  # type: ignore[assignment]
    pod_termination_delay: Duration = "2s"  # type: ignore[assignment]
    native_sidecars: bool = False
    kubernetes_version: str = "1.27.3"
    nodes: int = Field(3, ge=1)
    hub: str = "docker.io/istio"
    traffic_tick_seconds: float = Field(0.25, gt=0, le=10)
    source_reporter: bool = False
    # every application pod's own calls out of the mesh (null: none)
    outbound: OutboundSpec | None = OutboundSpec()
    # how often Prometheus scrapes the mesh, in real seconds (tests and the demo; null: 1s)
    scrape_interval: Duration | None = None
    # which Istio release's chart renderings seed the control plane: "current" (with the
    # tag Service istiod-revision-tag-<tag>) or "legacy" (before Istio 1.28, without it)
    istio_layout: Literal["current", "legacy"] = "current"
    revisions: list[RevisionSpec] = Field(min_length=1)
    tags: list[TagSpec] = Field(default_factory=list)
    gateway: GatewaySpec | None = GatewaySpec()
    namespaces: list[NamespaceSpec] = Field(default_factory=list)
    regressions: list[RegressionSpec] = Field(default_factory=list)
    drift: DriftSpec | None = None
    faults: FaultsSpec = FaultsSpec()

    @model_validator(mode="after")
    def _references(self) -> Scenario:
        known = {revision.name for revision in self.revisions}
        if len(known) != len(self.revisions):
            raise ValueError("revisions: a revision is listed twice")
        for tag in self.tags:
            if tag.revision not in known:
                raise ValueError(
                    f"tags: tag {tag.name!r} points at unknown revision "
                    f"{tag.revision!r} (known: {sorted(known)})"
                )
        for regression in self.regressions:
            if regression.revision not in known:
                raise ValueError(f"regressions: unknown revision {regression.revision!r}")
        for fault in self.faults.never_ready:
            if fault.revision is not None and fault.revision not in known:
                raise ValueError(f"faults.never_ready: unknown revision {fault.revision!r}")
        names = [namespace.name for namespace in self.namespaces]
        if len(set(names)) != len(names):
            raise ValueError("namespaces: a namespace is listed twice")
        return self

    def revision(self, name: str) -> RevisionSpec | None:
        return next((revision for revision in self.revisions if revision.name == name), None)

    def namespace_labels(self, namespace: NamespaceSpec) -> dict[str, str]:
        """Labels a namespace starts with: given ones, else ``istio.io/rev: <first tag>``."""
        if namespace.labels is not None:
            return dict(namespace.labels)
        if self.tags:
            return {"istio.io/rev": self.tags[0].name}
        return {"istio.io/rev": self.revisions[0].name}


# -- loading ---------------------------------------------------------------------------------


def _plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(value) for value in node]
    return node


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Validate scenario YAML; errors name the source, line and field."""
    try:
        document = YAML(typ="rt").load(text)
    except YAMLError as error:
        raise ScenarioError(f"{source}: not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise ScenarioError(f"{source}: a scenario must be a YAML mapping")
    try:
        return Scenario.model_validate(_plain(document))
    except ValidationError as error:
        problems = []
        for item in error.errors():
            location = tuple(item["loc"])
            field = ".".join(str(part) for part in location) or "(top level)"
            line = line_of(document, location)
            where = f"{source}:{line}" if line else source
            problems.append(f"{where}: {field}: {item['msg']}")
        raise ScenarioError("invalid scenario\n  " + "\n  ".join(problems)) from None


def scenario_path(name_or_path: str | Path) -> Path | None:
    """Find a scenario by path, or by short name in ``scenarios/`` or the packaged copies."""
    candidate = Path(name_or_path)
    if candidate.is_file():
        return candidate
    short = candidate.name if candidate.suffix in (".yaml", ".yml") else f"{candidate.name}.yaml"
    local = Path("scenarios") / short
    if local.is_file():
        return local
    packaged = resources.files("analyzer.sim") / "scenarios" / short
    if packaged.is_file():
        return Path(str(packaged))
    return None


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load and validate a scenario file (``healthy`` finds ``scenarios/healthy.yaml``)."""
    path = scenario_path(name_or_path)
    if path is None:
        raise ScenarioError(
            f"scenario {str(name_or_path)!r} not found (neither a file nor a name in "
            f"scenarios/ or the packaged scenarios: {', '.join(packaged_scenarios())})"
        )
    return parse_scenario(path.read_text(encoding="utf-8"), str(path))


def packaged_scenarios() -> list[str]:
    """Short names of the scenarios shipped with the package."""
    folder = resources.files("analyzer.sim") / "scenarios"
    if not folder.is_dir():
        return []
    return sorted(
        item.name.removesuffix(".yaml") for item in folder.iterdir() if item.name.endswith(".yaml")
    )
