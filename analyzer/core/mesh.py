"""The cluster's interfaces, kept importable here: they live in ``core.ports`` (``cluster``
and ``state``), the one home of every Protocol the core defines."""

from __future__ import annotations

from analyzer.core.ports.cluster import (
    ClusterError,
    ClusterNotFoundError,
    ClusterUnreachableError,
    MeshCluster,
    RevisionInfo,
    TagInfo,
    UnrollableWorkload,
    WriteConflictError,
)
from analyzer.core.ports.state import StateStore, VersionedDocument, VersionedStore

__all__ = [
    "ClusterError",
    "ClusterNotFoundError",
    "ClusterUnreachableError",
    "MeshCluster",
    "RevisionInfo",
    "StateStore",
    "TagInfo",
    "UnrollableWorkload",
    "VersionedDocument",
    "VersionedStore",
    "WriteConflictError",
]
