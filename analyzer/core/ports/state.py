"""Stored documents: where the engine keeps its state between steps (``StateStore``) and a
document several replicas change under optimistic concurrency (``VersionedStore``).

The Kubernetes adapter's ConfigMap store implements both; tests keep documents in memory.
A conflicting write raises ``cluster.WriteConflictError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


class StateStore(Protocol):
    """Where the engine keeps its state between steps (a ConfigMap in a cluster)."""

    def load(self) -> dict[str, Any] | None: ...

    def save(self, document: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class VersionedDocument:
    """A stored JSON document with the version it was read at (``version`` None: the
    object holding it does not exist yet; ``document`` None: nothing stored under its key)."""

    document: Any
    version: str | None


class VersionedStore(Protocol):
    """A document several replicas change: read it with its version, write it back only if
    nobody wrote in between (optimistic concurrency, e.g. a ConfigMap's resourceVersion)."""

    def read_versioned(self) -> VersionedDocument: ...

    def write_if_unchanged(self, document: Any, version: str | None) -> None:
        """Store ``document`` if the object is still at ``version`` (None: if it does not
        exist yet); ``WriteConflictError`` when another write came first."""
        ...
