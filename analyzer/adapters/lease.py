"""Reads and writes a coordination.k8s.io/v1 Lease with the official client.

Writes carry the resourceVersion read before them, so two replicas racing for the lease
cannot both win: the loser gets ``LeaseConflictError`` (HTTP 409) and tries again later.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from kubernetes import client
from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError

from analyzer.core.leadership import LeaseRecord


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

    def _body(self, record: LeaseRecord) -> client.V1Lease:
        return client.V1Lease(
            metadata=client.V1ObjectMeta(
                name=self.name,
                namespace=self.namespace,
                resource_version=record.resource_version,
                labels={"app.kubernetes.io/name": "canary-analyzer"},
            ),
            spec=client.V1LeaseSpec(
                holder_identity=record.holder,
                lease_duration_seconds=max(1, round(record.duration.total_seconds())),
                acquire_time=record.acquired_at,
                renew_time=record.renewed_at,
                lease_transitions=record.transitions,
            ),
        )

    def create(self, record: LeaseRecord) -> None:
        self._write(
            lambda: self.api.create_namespaced_lease(
                self.namespace, self._body(record), _request_timeout=self.timeout
            )
        )

    def replace(self, record: LeaseRecord) -> None:
        self._write(
            lambda: self.api.replace_namespaced_lease(
                self.name, self.namespace, self._body(record), _request_timeout=self.timeout
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
