"""The service's durable memory: JSON documents under the keys of one ConfigMap.

Why it exists: state is written before every side effect so a killed process resumes
where it stopped; the engine, the service, the timeline and the inbox each keep a key, and
a key several replicas change is written with optimistic concurrency (resourceVersion).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from kubernetes.client.exceptions import ApiException

from analyzer.adapters.kubernetes.api import STRATEGIC, ClusterApi
from analyzer.adapters.kubernetes.objects import MANAGED_BY, meta_of
from analyzer.core.ports import ClusterNotFoundError, VersionedDocument, WriteConflictError

log = logging.getLogger("canary_analyzer.kubernetes")


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

    def __init__(self, cluster: ClusterApi, name: str, namespace: str, key: str = "state") -> None:
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
        return VersionedDocument(
            document=document, version=meta_of(configmap).get("resourceVersion")
        )

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
