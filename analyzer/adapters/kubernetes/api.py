"""The plumbing every cluster call goes through: the client, retries, JSON, workload APIs.

Why it exists: each concern of ``KubernetesCluster`` (discovery, the tag, restarts, proxies,
events) calls the API server the same way — objects as the JSON it sent
(``_preload_content=False``, no client-model conversions), one request timeout, conflicts,
429/5xx and timeouts retried with backoff, 404 as ``ClusterNotFoundError`` and other 4xx as
``ClusterRefusedError`` — and finds a workload's owner the same way. ``ClusterApi`` is that
base; the concerns are mixins on it (``cluster.py``).
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable
from typing import Any, Self, TypeVar

import urllib3
from kubernetes import client as kube
from kubernetes.client.exceptions import ApiException

from analyzer.adapters import kubeconfig
from analyzer.adapters.kubernetes.errors import ClusterRefusedError, api_message
from analyzer.adapters.kubernetes.objects import controller_of, meta_of
from analyzer.adapters.retry_policy import Retryable, call_with_retries
from analyzer.core.ports import ClusterError, ClusterNotFoundError, ClusterUnreachableError
from analyzer.core.upgrade import Target
from analyzer.settings import KubernetesSettings

log = logging.getLogger("canary_analyzer.kubernetes")

STRATEGIC = "application/strategic-merge-patch+json"
RETRY_STATUSES = frozenset({409, 429, 500, 502, 503, 504})
KINDS = ("Deployment", "StatefulSet", "DaemonSet")

T = TypeVar("T")


def connect(settings: KubernetesSettings) -> kube.ApiClient:
    """An ApiClient from the kubeconfig (settings, else $KUBECONFIG) or in-cluster config."""
    configuration, _ = kubeconfig.load(settings)
    configuration.retries = 0  # retries are ours (with backoff, on 409/5xx as well)
    return kube.ApiClient(configuration)


class ClusterApi:
    """The official client's APIs, with the timeout and retry policy every call uses."""

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
        # events.py: who writes the Events, and whether a refusal of them was logged
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
    def from_settings(cls, settings: KubernetesSettings, istio_namespace: str) -> Self:
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
                            what, error.status, error.reason, api_message(error)
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
            str(meta_of(rs).get("name")): controller_of(rs)
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
