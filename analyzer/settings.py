"""Settings of the whole product, grouped per concern, from ``CANARY_*`` environment variables.

Nested groups use a double underscore: ``CANARY_PROMETHEUS__URL``,
``CANARY_WINDOWS__AFTER=10m``. Command-line flags override these (``settings_from_args``).
Every field says its unit and default, because operators set them through Helm values.
"""

from __future__ import annotations

import difflib
import json
import os
import typing
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from analyzer.core.durations import Duration
from analyzer.errors import BadInputError


class _Group(BaseModel):
    """A settings group: a key it does not know is an error naming the key, never ignored."""

    model_config = ConfigDict(extra="forbid")


class PrometheusSettings(_Group):
    """Where metrics come from and how to talk to it: Prometheus, Thanos, Mimir, VictoriaMetrics."""

    url: str = Field(
        "http://127.0.0.1:9090",
        description="Base URL of the PromQL API, including any path prefix "
        "(e.g. https://mimir.example/prometheus). Default http://127.0.0.1:9090.",
    )
    timeout: Duration = Field(
        timedelta(seconds=30), description="Timeout of one HTTP request. Default 30s."
    )
    retries: int = Field(
        3,
        ge=0,
        le=10,
        description="Retries of a failed request (connection errors, 5xx). Default 3.",
    )
    retry_backoff: float = Field(
        0.5,
        ge=0,
        description="Backoff factor in seconds between retries (doubles each try). Default 0.5.",
    )
    bearer_token_file: Path | None = Field(
        None, description="File holding a bearer token sent as Authorization. Default none."
    )
    basic_auth_username: str | None = Field(None, description="Basic-auth user. Default none.")
    basic_auth_password_file: Path | None = Field(
        None, description="File holding the basic-auth password. Default none."
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        description='Extra HTTP headers, e.g. {"X-Scope-OrgID": "tenant-1"} for Mimir. '
        "Default none.",
    )
    ca_bundle: Path | None = Field(
        None, description="CA bundle (PEM) to verify the server's certificate. Default: system."
    )
    tls_verify: bool = Field(
        True, description="Verify TLS certificates. Default true; false only for testing."
    )


class WindowSettings(_Group):
    """The before/after windows around a restart (docs/rules.md explains the judging)."""

    before: Duration = Field(
        timedelta(minutes=10), description="Length of the window before the restart. Default 10m."
    )
    settle: Duration = Field(
        timedelta(minutes=2),
        description="Time skipped after the restart (cold caches, connection churn). Default 2m.",
    )
    after: Duration = Field(
        timedelta(minutes=10), description="Length of the window after settling. Default 10m."
    )
    step: Duration = Field(
        timedelta(minutes=1),
        description="Resolution of the range queries; each point covers one step. Default 1m.",
    )


class RulesSettings(_Group):
    """Which rules judge, how metrics name namespaces, and the upgrade's false-rollback budget."""

    directory: Path | None = Field(
        None,
        description="Directory of rule files. Default: ./rules when present, else the "
        "defaults shipped with the package.",
    )
    namespace_label: str = Field(
        "destination_workload_namespace",
        pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$",
        description="Metric label holding the namespace. Default destination_workload_namespace.",
    )
    scrape_interval: Duration = Field(
        timedelta(seconds=15),
        description="How often Prometheus scrapes the proxies; rules lint warns when a rule's "
        "range window (e.g. [{{ step }}] at windows.step) is shorter than 4 times it. Default "
        "15s, the interval of Istio's own Prometheus add-on (samples/addons/prometheus.yaml); "
        "kube-prometheus-stack scrapes every 30s: set it, and a step of at least 2m.",
    )
    night_budget: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="The chance of at least one false rollback the operator accepts for a "
        "whole upgrade (a share between 0 and 1, e.g. 0.05 = 5 %), split over every "
        "namespace × critical rule the plan judges, with Holm's step-down within each wave; "
        "it never makes a rule less strict than its own confidence. Default none: each "
        "rule's own confidence.",
    )


class KubernetesSettings(_Group):
    """How to reach the cluster."""

    kubeconfig: Path | None = Field(
        None,
        description="kubeconfig file. Default: $KUBECONFIG, else in-cluster configuration.",
    )
    context: str | None = Field(
        None,
        description="kubeconfig context to use (as kubectl --context). Default: the "
        "kubeconfig's current context.",
    )
    request_timeout: Duration = Field(
        timedelta(seconds=30), description="Timeout of one API request. Default 30s."
    )


class UpgradeSettings(_Group):
    """How the ``upgrade`` command and the service move a data plane (issue 4)."""

    style: Literal["tag", "namespace-label"] = Field(
        "tag",
        description="tag: move the revision tag once, then restart namespaces wave by wave; "
        "namespace-label: relabel each wave's namespaces istio.io/rev=<revision> and move the "
        "tag at the end. Default tag.",
    )
    tag: str = Field("default", description="Revision tag to move. Default default.")
    waves: list[int] = Field(
        default_factory=lambda: [1, 2, 4],
        min_length=1,
        description="Namespaces per wave, in order; the first wave is the canary; after the "
        "last size the waves keep doubling. Default [1, 2, 4].",
    )
    gateways: list[str] = Field(
        default_factory=lambda: ["istio-ingress/istio-ingressgateway"],
        description="Gateway Deployments restarted before the canary, as namespace/name. "
        "Default [istio-ingress/istio-ingressgateway].",
    )
    istio_namespace: str = Field(
        "istio-system", description="Namespace of istiod and its webhooks. Default istio-system."
    )
    rollout_timeout: Duration = Field(
        timedelta(minutes=10),
        description="Deadline for a group's rollout and proxy verification; past it the "
        "upgrade rolls back. Default 10m.",
    )
    poll_interval: Duration = Field(
        timedelta(seconds=5),
        description="Interval between rollout and proxy checks. Default 5s.",
    )
    evaluation_delay: Duration = Field(
        timedelta(seconds=30),
        description="Wait after the after-window closes before judging, so the last samples "
        "are scraped (about one scrape interval). Default 30s.",
    )
    rollout_estimate: Duration = Field(
        timedelta(minutes=2),
        description="How long a wave's rollout is expected to take; with settle, after window "
        "and evaluation delay it decides whether a wave still fits in the maintenance window. "
        "Default 2m.",
    )
    max_extensions: int = Field(
        2,
        ge=0,
        le=20,
        description="Times an inconclusive after-window is extended (by one after-window "
        "each) before on_inconclusive applies. Default 2.",
    )
    exclude_unrollable: bool = Field(
        False,
        description="Upgrade namespaces holding workloads a restart cannot roll (OnDelete or "
        "partitioned StatefulSets/DaemonSets, workloads owned by another controller): leave "
        "them alone and report their pods as not restarted. Off: preflight refuses and names "
        "them with the command that fixes each. Default false.",
    )
    soak: Duration = Field(
        timedelta(hours=24),
        description="After a promotion, how long the old revision stays installed before the "
        "service offers to prune it (alert CanaryAnalyzerPruneReady, only with prune on). "
        "Default 24h.",
    )
    soak_every: Duration = Field(
        timedelta(hours=1),
        description="During the soak, how often the service judges the promoted namespaces "
        "again with the same rules, a recent soak_window against the same hours before the "
        "upgrade; a regression pages (CanaryAnalyzerSoakRegression) and offers a rollback. "
        "0s turns the soak looks off. Default 1h.",
    )
    soak_window: Duration = Field(
        timedelta(hours=1),
        description="Length of the recent window each soak look judges (and of its baseline "
        "before the upgrade). Default 1h.",
    )
    soak_baselines: list[Duration] = Field(
        default_factory=lambda: [timedelta(hours=24)],
        min_length=1,
        description="What a soak look compares with: the recent window shifted back by the "
        "smallest multiple of each offset that lies before the upgrade, tried in order while "
        "the evidence is too thin to judge (e.g. [24h, 168h]: the night before, then the same "
        "time a week before). Default [24h].",
    )
    soak_auto_rollback: bool = Field(
        False,
        description="Roll back on its own when a soak look finds a regression (the tag back "
        "to the old revision, every moved workload restarted), instead of paging and waiting "
        "for canary-analyzer rollback. Default false.",
    )
    prune: bool = Field(
        False,
        description="After the soak, when nothing uses the old revision, ask on-call to "
        "approve its removal (alert CanaryAnalyzerPruneReady; POST /api/approve-prune removes "
        "it as canary-analyzer prune does). Needs the chart's prune block. Default false.",
    )
    order: Literal["evidence", "given"] = Field(
        "evidence",
        description="The plan's order: evidence (the namespaces busiest in the same hours of "
        "previous nights first, so the canary and early waves are judged on real traffic; "
        "those too quiet to be judged alone last) or given (as listed or discovered). "
        "Default evidence.",
    )
    canary: str | None = Field(
        None,
        description="Pin the canary: this planned namespace goes first whatever its "
        "traffic. Default none (the busiest).",
    )
    looks: Literal["fixed", "every-step"] = Field(
        "every-step",
        description="When a wave is judged: fixed (once at the end of the after-window and "
        "of each extension) or every-step (at every step, with anytime-valid bounds: a "
        "regression beyond the allowance fails as soon as it is certain, a healthy wave "
        "passes as soon as its worst plausible change is inside the allowance; looking more "
        "spends no more of the night budget). Default every-step.",
    )
    on_inconclusive: Literal["hold", "rollback"] = Field(
        "hold",
        description="When evidence stays too thin: hold (stop where it is and page) or "
        "rollback. Default hold.",
    )
    state_configmap: str = Field(
        "canary-analyzer-state",
        description="ConfigMap holding the engine's state (written before each action). "
        "Default canary-analyzer-state.",
    )
    state_namespace: str = Field(
        "istio-system",
        description="Namespace of the state ConfigMap (the service's own namespace in a "
        "Helm install). Default istio-system.",
    )


class NotificationSettings(_Group):
    """Where on-call hears about rollbacks, holds and completed upgrades."""

    alertmanager_url: str | None = Field(
        None, description="Alertmanager base URL (v2 API). Default none."
    )
    webhook_url: str | None = Field(
        None, description="URL receiving a JSON POST per notification. Default none."
    )
    cluster: str | None = Field(
        None,
        description="Value of the cluster label on every alert. Default: the kubeconfig "
        "context's cluster name, else the API server's host.",
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description='Static labels added to every alert, e.g. {"team": "mesh"}. Default none.',
    )
    runbook_base_url: str = Field(
        "docs/oncall.md",
        description="Address of the on-call runbook (docs/oncall.md where your on-call reads "
        "it, e.g. your Git server's page of it); every alert's runbook_url annotation is this "
        "plus the anchor of the alert's section. Default docs/oncall.md (its path in the "
        "product's repository).",
    )


class ServiceSettings(_Group):
    """The long-running service: where it listens, when it may act, how replicas coordinate."""

    listen: str = Field(
        "127.0.0.1:8080", description="HOST:PORT of the HTTP interface. Default 127.0.0.1:8080."
    )
    token_file: Path | None = Field(
        None,
        description="File holding the bearer token control endpoints require. Default none: "
        "control endpoints refuse every request.",
    )
    user_header: str | None = Field(
        None,
        description="Header an authenticating proxy in front of the service sets to the "
        "caller's user name, e.g. X-Remote-User (kube-rbac-proxy with "
        "--auth-header-fields-enabled) or X-Auth-Request-User (oauth2-proxy). A control "
        "verb carrying it is recorded as that user (authenticated_by); without it, the name "
        "the caller claims (--as). Set it only when every request comes through the proxy "
        "(listen on 127.0.0.1 behind a sidecar). Default none: names are claims.",
    )
    window_cron: str | None = Field(
        None,
        description='Cron expression when maintenance windows start, e.g. "0 1 * * *", '
        '"0 1 * * 1-5" (0 and 7 are Sunday, as in cron) or a macro such as "@daily". '
        "Default none: always open.",
    )
    window_duration: Duration = Field(
        timedelta(hours=4), description="Length of each maintenance window. Default 4h."
    )
    timezone: str = Field("UTC", description="Timezone of window_cron. Default UTC.")
    to_revision: str | None = Field(
        None,
        description="Declared pending upgrade: the revision to move the tag to. Default none.",
    )
    from_revision: str | None = Field(
        None,
        description="Declared pending upgrade: the expected current revision. Default: "
        "whatever the tag points at.",
    )
    mode: Literal["act", "shadow"] = Field(
        "act",
        description="act: run upgrades (move the tag, restart, promote or roll back, page). "
        "shadow: judge-only for the first weeks: watch restarts that happen anyway, judge "
        "them with the same rules and windows, record the verdicts (timeline, status, "
        "restart history), act on nothing, page nobody and write nothing to the cluster "
        "(no state ConfigMap, no Lease: one replica). Default act.",
    )
    shadow_namespaces: list[str] = Field(
        default_factory=list,
        description="Shadow mode: the namespaces to watch. Default: those labelled "
        "istio.io/rev=<upgrade.tag>, which an upgrade would restart.",
    )
    history_file: Path | None = Field(
        None,
        description="Append-only restart history (JSON lines): each namespace restart an "
        "upgrade makes or shadow mode sees, and its verdict; analyze --last N reads it. "
        "Default: restarts.jsonl beside reports_dir.",
    )
    detect_upgrades: bool = Field(
        False,
        description="Start an upgrade on its own when a newer istiod revision is ready and the "
        "tag still points at an older one. Default false (opt-in).",
    )
    tick_interval: Duration = Field(
        timedelta(seconds=5),
        description="How often the service checks windows, leadership and pending work. "
        "Default 5s.",
    )
    identity: str | None = Field(
        None, description="This replica's name in the Lease. Default: $POD_NAME, else hostname."
    )
    lease_name: str = Field("canary-analyzer", description="Lease name. Default canary-analyzer.")
    lease_namespace: str | None = Field(
        None,
        description="Namespace of the Lease. Default: $POD_NAMESPACE, else the state namespace.",
    )
    lease_duration: Duration = Field(
        timedelta(seconds=15),
        description="A leader that has not renewed for this long loses the lease. Default 15s.",
    )
    leader_election: bool = Field(
        True, description="Coordinate replicas with a Lease. Default true."
    )
    heartbeat_interval: Duration = Field(
        timedelta(minutes=1),
        description="How often the always-firing heartbeat alert is re-sent. Default 1m.",
    )
    rules_reload_interval: Duration = Field(
        timedelta(seconds=30),
        description="How often the rules directory is checked for changes. Default 30s.",
    )
    reports_dir: Path = Field(
        Path("/tmp/canary-analyzer/reports"),
        description="Where HTML reports are written and served from. "
        "Default /tmp/canary-analyzer/reports.",
    )
    public_url: str | None = Field(
        None,
        description="URL on-call uses to reach this service (links in alerts). Default: none.",
    )


class Settings(BaseSettings):
    """All settings; each group maps to ``CANARY_<GROUP>__<FIELD>`` variables."""

    model_config = SettingsConfigDict(
        env_prefix="CANARY_", env_nested_delimiter="__", extra="ignore"
    )

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        """The environment without the variables the commands read themselves
        (``NON_SETTING_VARIABLES``), which the groups would refuse as unknown keys."""
        variables = getattr(env_settings, "env_vars", None)
        if isinstance(variables, Mapping):
            env_settings.env_vars = {
                name: value
                for name, value in variables.items()
                if name.upper() not in NON_SETTING_VARIABLES
            }
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    windows: WindowSettings = Field(default_factory=WindowSettings)
    rules: RulesSettings = Field(default_factory=RulesSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    upgrade: UpgradeSettings = Field(default_factory=UpgradeSettings)
    notifications: NotificationSettings = Field(default_factory=NotificationSettings)
    service: ServiceSettings = Field(default_factory=ServiceSettings)


#: ``CANARY_*`` variables that are not settings but are read by the commands themselves.
NON_SETTING_VARIABLES = frozenset({"CANARY_SERVICE__URL"})

_PREFIX = "CANARY_"


def _is_complex(annotation: object) -> bool:
    """Lists and dictionaries come as JSON in the environment (pydantic-settings' rule)."""
    origins = {typing.get_origin(arg) or arg for arg in typing.get_args(annotation)}
    origins.add(typing.get_origin(annotation) or annotation)
    return bool(origins & {list, dict})


def _variables() -> dict[str, tuple[str, str | None]]:
    """Every variable name the settings read -> (group, field or None for the whole group)."""
    names: dict[str, tuple[str, str | None]] = {}
    for group_name, group_field in Settings.model_fields.items():
        names[f"{_PREFIX}{group_name.upper()}"] = (group_name, None)
        model = group_field.annotation
        for field_name in model.model_fields:  # type: ignore[union-attr]
            names[f"{_PREFIX}{group_name.upper()}__{field_name.upper()}"] = (group_name, field_name)
    return names


def check_environment(environ: Mapping[str, str]) -> None:
    """Refuse misspelt ``CANARY_*`` variables and lists or maps that are not JSON, by name.

    pydantic-settings ignores a variable it does not know, and reports a list that is not
    JSON as a parsing error of the whole group; both hide the culprit from the operator.
    """
    known = _variables()
    problems: list[str] = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(_PREFIX) or upper in NON_SETTING_VARIABLES:
            continue
        if upper not in known:
            guess = difflib.get_close_matches(upper, [*known, *NON_SETTING_VARIABLES], n=1)
            hint = f" (did you mean {guess[0]}?)" if guess else ""
            problems.append(f"{name}: unknown setting{hint}")
            continue
        group, field = known[upper]
        annotation = (
            Settings.model_fields[group].annotation
            if field is None
            else Settings.model_fields[group].annotation.model_fields[field].annotation  # type: ignore[union-attr]
        )
        if field is None or _is_complex(annotation):
            try:
                json.loads(environ[name])
            except ValueError:
                example = '[1, 2, 4]' if "list" in str(annotation) else '{"key": "value"}'
                problems.append(
                    f"{name}={environ[name]!r}: not JSON; write lists and maps as JSON, "
                    f"e.g. {name}='{example}'"
                )
    if problems:
        raise BadInputError("invalid settings from the environment: " + "; ".join(problems))


def _variable_of(location: tuple) -> str:
    parts = [str(part) for part in location]
    name = _PREFIX + "__".join(part.upper() for part in parts[:2])
    rest = parts[2:]
    return name + (f" (item {'.'.join(rest)})" if rest else "")


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment, or ``BadInputError`` naming each bad variable."""
    check_environment(os.environ if environ is None else environ)
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"{_variable_of(item['loc'])}: unknown setting"
            if item["type"] == "extra_forbidden"
            else f"{_variable_of(item['loc'])}: {item['msg']}"
            + (f" (got {item['input']!r})" if isinstance(item.get("input"), str) else "")
            for item in error.errors()
        )
        raise BadInputError(f"invalid settings from the environment: {problems}") from None
    except SettingsError as error:
        raise BadInputError(f"invalid settings from the environment: {error}") from None
