"""The one home of every interface (Protocol) the core defines, one module per capability,
with the data each carries and its errors:

- ``metrics``: ``MetricsSource`` answers PromQL range queries (``Series``; ``MetricsError``);
- ``cluster``: ``MeshCluster``, what the upgrade needs from a cluster with Istio
  (``RevisionInfo``, ``TagInfo``, ``UnrollableWorkload``; ``ClusterError``);
- ``state``: ``StateStore`` keeps the engine's state, ``VersionedStore`` a document several
  replicas change;
- ``notifications``: ``Notifier`` delivers alerts (``NotificationError``).

Adapters implement them structurally; tests implement them in memory. One capability per
Protocol (Flagger's providers show why): a metrics source answers range queries, nothing
else. ``core.alerts`` re-exports the notification names next to the alerts it delivers.
"""

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
from analyzer.core.ports.metrics import (
    MetricsError,
    MetricsQueryRejectedError,
    MetricsSource,
    MetricsUnreachableError,
    Series,
)
from analyzer.core.ports.notifications import NotificationError, Notifier
from analyzer.core.ports.state import StateStore, VersionedDocument, VersionedStore

__all__ = [
    "ClusterError",
    "ClusterNotFoundError",
    "ClusterUnreachableError",
    "MeshCluster",
    "MetricsError",
    "MetricsQueryRejectedError",
    "MetricsSource",
    "MetricsUnreachableError",
    "NotificationError",
    "Notifier",
    "RevisionInfo",
    "Series",
    "StateStore",
    "TagInfo",
    "UnrollableWorkload",
    "VersionedDocument",
    "VersionedStore",
    "WriteConflictError",
]
