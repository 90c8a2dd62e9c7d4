"""The fake cluster's etcd: objects, one global resourceVersion counter, and a change log
that watches replay.

Semantics kept from the real API server: every write gets a new resourceVersion; an update
carrying a stale resourceVersion fails with 409 Conflict; creating an existing name fails
with 409 AlreadyExists; spec changes of workloads bump ``metadata.generation``; types with a
status subresource keep status on main-resource writes and keep spec on status writes.
"""

from __future__ import annotations

import bisect
import copy
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from analyzer.sim.clock import SimClock, rfc3339
from analyzer.sim.resources import NAMESPACES, ResourceType

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class ApiError(Exception):
    """An error the API answers with a ``Status`` body."""

    code = 500
    reason = "InternalError"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    def status_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


class BadRequest(ApiError):
    code, reason = 400, "BadRequest"


class NotFound(ApiError):
    code, reason = 404, "NotFound"


class MethodNotAllowed(ApiError):
    code, reason = 405, "MethodNotAllowed"


class Conflict(ApiError):
    code, reason = 409, "Conflict"


class AlreadyExists(ApiError):
    code, reason = 409, "AlreadyExists"


class Gone(ApiError):
    code, reason = 410, "Expired"


class UnsupportedMediaType(ApiError):
    code, reason = 415, "UnsupportedMediaType"


class Invalid(ApiError):
    code, reason = 422, "Invalid"


class InternalError(ApiError):
    code, reason = 500, "InternalError"


def _details(rtype: ResourceType, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": rtype.plural}
    if rtype.group:
        details["group"] = rtype.group
    return details


def not_found(rtype: ResourceType, name: str) -> NotFound:
    return NotFound(f'{rtype.qualified} "{name}" not found', _details(rtype, name))


@dataclass(frozen=True)
class Change:
    """One entry of the change log: what a watch replays."""

    resource_version: int
    storage_key: tuple[str, str]
    type: str  # ADDED, MODIFIED, DELETED
    obj: dict[str, Any]
    previous: dict[str, Any] | None


ChangeListener = Callable[[ResourceType, Change], None]


@dataclass
class _Bucket:
    """Objects of one storage key, indexed by (namespace, name) and by namespace."""

    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    by_namespace: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    def put(self, key: tuple[str, str], obj: dict[str, Any]) -> None:
        self.objects[key] = obj
        self.by_namespace.setdefault(key[0], {})[key[1]] = obj

    def pop(self, key: tuple[str, str]) -> dict[str, Any] | None:
        self.by_namespace.get(key[0], {}).pop(key[1], None)
        return self.objects.pop(key, None)


class ObjectStore:
    """Thread-safe in-memory objects with Kubernetes write semantics."""

    HISTORY_LIMIT = 50_000

    def __init__(self, clock: SimClock) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._resource_version = 1000
        self._history: list[Change] = []
        self._history_versions: list[int] = []
        self._trimmed_through = 0
        self._listeners: list[ChangeListener] = []
        self._wakeups: list[Callable[[], None]] = []

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def add_listener(self, listener: ChangeListener) -> None:
        """Called (under the store lock) after every change."""
        self._listeners.append(listener)

    def add_wakeup(self, wakeup: Callable[[], None]) -> None:
        """Called after every change; watches use it to wake up."""
        with self._lock:
            self._wakeups.append(wakeup)

    def remove_wakeup(self, wakeup: Callable[[], None]) -> None:
        with self._lock:
            if wakeup in self._wakeups:
                self._wakeups.remove(wakeup)

    def current_resource_version(self) -> int:
        with self._lock:
            return self._resource_version

    def oldest_replayable_version(self) -> int:
        """Watches may start from this resourceVersion or later; older ones get 410 Gone."""
        with self._lock:
            return self._trimmed_through

    def changes_since(self, resource_version: int, storage_key: tuple[str, str]) -> list[Change]:
        with self._lock:
            start = bisect.bisect_right(self._history_versions, resource_version)
            return [change for change in self._history[start:]
                    if change.storage_key == storage_key]

    def _bucket(self, rtype: ResourceType) -> _Bucket:
        return self._buckets.setdefault(rtype.storage_key, _Bucket())

    def _record(
        self,
        rtype: ResourceType,
        change_type: str,
        obj: dict[str, Any],
        previous: dict[str, Any] | None,
    ) -> None:
        change = Change(
            self._resource_version,
            rtype.storage_key,
            change_type,
            copy.deepcopy(obj),
            copy.deepcopy(previous),
        )
        self._history.append(change)
        self._history_versions.append(change.resource_version)
        if len(self._history) > self.HISTORY_LIMIT * 1.2:
            cut = len(self._history) - self.HISTORY_LIMIT
            self._trimmed_through = self._history_versions[cut - 1]
            del self._history[:cut]
            del self._history_versions[:cut]
        for listener in self._listeners:
            listener(rtype, change)
        for wakeup in list(self._wakeups):
            wakeup()

    def _next_version(self) -> str:
        self._resource_version += 1
        return str(self._resource_version)

    # -- reads ------------------------------------------------------------------------------

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        with self._lock:
            obj = self._bucket(rtype).objects.get((namespace or "", name))
            if obj is None:
                raise not_found(rtype, name)
            return copy.deepcopy(obj)

    def find(self, rtype: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        """Like ``get`` but ``None`` when absent."""
        try:
            return self.get(rtype, namespace, name)
        except NotFound:
            return None

    def list(
        self,
        rtype: ResourceType,
        namespace: str | None = None,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        copy_objects: bool = True,
    ) -> tuple[list[dict[str, Any]], int]:
        """Objects sorted by namespace and name, with the list's resourceVersion.

        ``copy_objects=False`` returns the stored objects themselves, for read-only callers
        inside the simulator that must not modify them."""
        with self._lock:
            bucket = self._bucket(rtype)
            if namespace is None:
                candidates = [obj for _key, obj in sorted(bucket.objects.items())]
            else:
                candidates = [obj for _name, obj in sorted(
                    bucket.by_namespace.get(namespace, {}).items())]
            items = [copy.deepcopy(obj) if copy_objects else obj for obj in candidates
                     if predicate is None or predicate(obj)]
            return items, self._resource_version

    # -- writes -----------------------------------------------------------------------------

    def create(
        self, rtype: ResourceType, namespace: str | None, obj: dict[str, Any]
    ) -> dict[str, Any]:
        with self._lock:
            obj = copy.deepcopy(obj)
            metadata = obj.setdefault("metadata", {})
            if not metadata.get("name") and metadata.get("generateName"):
                metadata["name"] = metadata["generateName"] + uuid.uuid4().hex[:5]
            name = metadata.get("name")
            if not name:
                raise Invalid(
                    f"{rtype.kind} is invalid: metadata.name: Required value: name or "
                    "generateName is required",
                    _details(rtype, ""),
                )
            if rtype.kind != "Event" and not _DNS_SUBDOMAIN.match(name):
                raise Invalid(
                    f'{rtype.kind} "{name}" is invalid: metadata.name: Invalid value: '
                    f'"{name}": a lowercase RFC 1123 subdomain must consist of lower '
                    "case alphanumeric characters, '-' or '.'",
                    _details(rtype, name),
                )
            if rtype.namespaced:
                if metadata.get("namespace") and metadata["namespace"] != namespace:
                    raise BadRequest(
                        "the namespace of the provided object does not match the "
                        "namespace sent on the request"
                    )
                if (
                    NAMESPACES.storage_key in self._buckets
                    and ("", namespace) not in self._buckets[NAMESPACES.storage_key].objects
                ):
                    raise NotFound(
                        f'namespaces "{namespace}" not found',
                        {"name": namespace, "kind": "namespaces"},
                    )
                metadata["namespace"] = namespace
            else:
                metadata.pop("namespace", None)
            key = (namespace or "", name) if rtype.namespaced else ("", name)
            bucket = self._bucket(rtype)
            if key in bucket.objects:
                raise AlreadyExists(
                    f'{rtype.qualified} "{name}" already exists', _details(rtype, name)
                )
            obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
            if rtype.storage is not None:
                obj["apiVersion"] = "v1"
            metadata["uid"] = str(uuid.uuid4())
            metadata["creationTimestamp"] = rfc3339(self._clock.wall_now())
            metadata.pop("deletionTimestamp", None)
            if rtype.tracks_generation:
                metadata["generation"] = 1
            metadata["resourceVersion"] = self._next_version()
            bucket.put(key, obj)
            self._record(rtype, "ADDED", obj, None)
            return copy.deepcopy(obj)

    def update(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        obj: dict[str, Any],
        *,
        subresource: str | None = None,
        internal: bool = False,
    ) -> dict[str, Any]:
        """Replace an object (PUT semantics). ``internal`` writes come from controllers."""
        with self._lock:
            key = (namespace or "", name) if rtype.namespaced else ("", name)
            bucket = self._bucket(rtype)
            current = bucket.objects.get(key)
            if current is None:
                raise not_found(rtype, name)
            new = copy.deepcopy(obj)
            metadata = new.setdefault("metadata", {})
            sent_version = metadata.get("resourceVersion")
            if sent_version and sent_version != current["metadata"]["resourceVersion"]:
                raise Conflict(
                    f'Operation cannot be fulfilled on {rtype.qualified} "{name}": the object '
                    "has been modified; please apply your changes to the latest version and "
                    "try again",
                    _details(rtype, name),
                )
            if metadata.get("name", name) != name:
                raise BadRequest(
                    f"the name of the object ({metadata.get('name')}) does not "
                    f"match the name on the URL ({name})"
                )
            current_meta = current["metadata"]
            if subresource == "status":
                kept = copy.deepcopy(current)
                kept["status"] = new.get("status", {})
                new = kept
                metadata = new["metadata"]
            else:
                if rtype.has_status and not internal:
                    if "status" in current:
                        new["status"] = copy.deepcopy(current["status"])
                    else:
                        new.pop("status", None)
                for immutable in ("uid", "creationTimestamp", "namespace", "generation"):
                    if immutable in current_meta:
                        metadata[immutable] = current_meta[immutable]
                    else:
                        metadata.pop(immutable, None)
                if not internal:
                    if "deletionTimestamp" in current_meta:
                        metadata["deletionTimestamp"] = current_meta["deletionTimestamp"]
                    else:
                        metadata.pop("deletionTimestamp", None)
                metadata["name"] = name
                if rtype.tracks_generation and new.get("spec") != current.get("spec"):
                    metadata["generation"] = int(current_meta.get("generation", 1)) + 1
            new["apiVersion"] = current["apiVersion"]
            new["kind"] = current["kind"]
            metadata["resourceVersion"] = current_meta["resourceVersion"]
            if new == current:
                return copy.deepcopy(current)  # no-op writes keep the resourceVersion
            metadata["resourceVersion"] = self._next_version()
            bucket.put(key, new)
            self._record(rtype, "MODIFIED", new, current)
            return copy.deepcopy(new)

    def delete(self, rtype: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        with self._lock:
            key = (namespace or "", name) if rtype.namespaced else ("", name)
            bucket = self._bucket(rtype)
            current = bucket.pop(key)
            if current is None:
                raise not_found(rtype, name)
            removed = copy.deepcopy(current)
            removed["metadata"]["resourceVersion"] = self._next_version()
            self._record(rtype, "DELETED", removed, current)
            return removed

    def objects(self, rtypes: Iterable[ResourceType]) -> int:
        """How many objects of these types exist (for diagnostics)."""
        with self._lock:
            return sum(len(self._bucket(rtype).objects) for rtype in rtypes)
