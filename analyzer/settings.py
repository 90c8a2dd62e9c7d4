"""Settings of the whole product, grouped per concern, from ``CANARY_*`` environment variables.

Nested groups use a double underscore: ``CANARY_PROMETHEUS__URL``,
``CANARY_WINDOWS__AFTER=10m``. Command-line flags override these (``settings_from_args``).
Every field says its unit and default, because operators set them through Helm values.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from analyzer.core.durations import Duration


class PrometheusSettings(BaseModel):
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


class WindowSettings(BaseModel):
    """The before/after windows around a restart (design.md, Judging)."""

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


class RulesSettings(BaseModel):
    """Which rule files judge, and how namespaces are named in the metrics."""

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


class KubernetesSettings(BaseModel):
    """How to reach the cluster."""

    kubeconfig: Path | None = Field(
        None,
        description="kubeconfig file. Default: $KUBECONFIG, else in-cluster configuration.",
    )
    request_timeout: Duration = Field(
        timedelta(seconds=30), description="Timeout of one API request. Default 30s."
    )


class Settings(BaseSettings):
    """All settings; each group maps to ``CANARY_<GROUP>__<FIELD>`` variables."""

    model_config = SettingsConfigDict(
        env_prefix="CANARY_", env_nested_delimiter="__", extra="ignore"
    )

    prometheus: PrometheusSettings = Field(default_factory=PrometheusSettings)
    windows: WindowSettings = Field(default_factory=WindowSettings)
    rules: RulesSettings = Field(default_factory=RulesSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
