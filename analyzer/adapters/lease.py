"""Reads and writes a coordination.k8s.io/v1 Lease with the official client.

Writes carry the resourceVersion read before them, so two replicas racing for the lease
cannot both win: the loser gets ``LeaseConflictError`` (HTTP 409) and tries again later.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError

from analyzer.core.leadership import LeaseRecord


def micro_time(moment: datetime) -> str:
    """metav1.MicroTime on the wire (RFC3339Micro): six fractional digits, always."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def send_json(
    api_client: client.ApiClient, method: str, path: str, body: dict[str, Any], timeout: float
) -> dict[str, Any]:
    """Send ``body`` exactly as given (the official client's typed methods turn MicroTime
    strings back into datetimes and re-serialize them with ``isoformat()``, which drops a
    zero fraction); the answer as JSON, or ``ApiException`` for an error status."""
    request = api_client.param_serialize(
        method=method,
        resource_path=path,
        header_params={"Content-Type": "application/json", "Accept": "application/json"},
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api_client.call_api(*request, _request_timeout=timeout)
    response.read()
    if not 200 <= response.status < 300:
        raise ApiException(
            status=response.status,
            reason=response.reason,
            body=(response.data or b"").decode("utf-8", "replace"),
        )
    return json.loads(response.data or b"{}")


class LeaseError(Exception):
    """The Lease could not be read or written."""


class LeaseConflictError(LeaseError):
    """Someone else wrote the Lease since we read it (409), or created it first."""


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class KubernetesLease:
    """One named Lease in one namespace."""

    def __init__(
        self, api_client: client.ApiClient, namespace: str, name: str, request_timeout: float = 10.0
    ):
        self.api = client.CoordinationV1Api(api_client)
        self.namespace = namespace
        self.name = name
        self.timeout = request_timeout

    def read(self) -> LeaseRecord | None:
        try:
            lease = self.api.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=self.timeout
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise LeaseError(
                f"cannot read lease {self.namespace}/{self.name}: {error.status} {error.reason}"
            ) from None
        except HTTPError as error:
            raise LeaseError(f"cannot read lease {self.namespace}/{self.name}: {error}") from None
        spec = lease.spec
        return LeaseRecord(
            holder=spec.holder_identity or None,
            duration=timedelta(seconds=spec.lease_duration_seconds or 15),
            acquired_at=_aware(spec.acquire_time),
            renewed_at=_aware(spec.renew_time),
            transitions=spec.lease_transitions or 0,
            resource_version=lease.metadata.resource_version,
        )

    def _body(self, record: LeaseRecord) -> dict[str, Any]:
        """The Lease as JSON. Times are written as MicroTime by hand: the client would send
        ``datetime.isoformat()``, which drops the fraction when the microseconds are zero,
        and the API server parses MicroTime with exactly six fractional digits
        (k8s.io/apimachinery pkg/apis/meta/v1/micro_time.go, RFC3339Micro)."""
        metadata: dict[str, Any] = {
            "name": self.name,
            "namespace": self.namespace,
            "labels": {"app.kubernetes.io/name": "canary-analyzer"},
        }
        if record.resource_version:
            metadata["resourceVersion"] = record.resource_version
        spec: dict[str, Any] = {
            "holderIdentity": record.holder,
            "leaseDurationSeconds": max(1, round(record.duration.total_seconds())),
            "leaseTransitions": record.transitions,
        }
        if record.acquired_at is not None:
            spec["acquireTime"] = micro_time(record.acquired_at)
        if record.renewed_at is not None:
            spec["renewTime"] = micro_time(record.renewed_at)
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": metadata,
            "spec": spec,
        }

    def _path(self, name: str | None = None) -> str:
        path = f"/apis/coordination.k8s.io/v1/namespaces/{self.namespace}/leases"
        return f"{path}/{name}" if name else path

    def create(self, record: LeaseRecord) -> None:
        self._write(
            lambda: send_json(
                self.api.api_client, "POST", self._path(), self._body(record), self.timeout
            )
        )

    def replace(self, record: LeaseRecord) -> None:
        self._write(
            lambda: send_json(
                self.api.api_client,
                "PUT",
                self._path(self.name),
                self._body(record),
                self.timeout,
            )
        )

    def _write(self, call) -> None:
        try:
            call()
        except ApiException as error:
            if error.status == 409:
                raise LeaseConflictError(
                    f"lease {self.namespace}/{self.name} changed under us"
                ) from None
            raise LeaseError(
                f"cannot write lease {self.namespace}/{self.name}: {error.status} {error.reason}"
            ) from None
        except HTTPError as error:
            raise LeaseError(f"cannot write lease {self.namespace}/{self.name}: {error}") from None
