"""The cluster through the official ``kubernetes`` client: revisions, tags, restarts, proxies.

Why it exists: the upgrade engine depends on the ``MeshCluster`` Protocol; this package is
the one implementation that talks to a real API server (or the simulated mesh's fake one).
It does what the people's tools do, by their rules (docs/architecture.md, "Moving the tag"):
- move a tag as ``istioctl tag set --overwrite``: the tag webhook, the tag Service when there
  is one, for ``default`` the non-revisioned injector deactivated and
  ``istiod-default-validator`` moved; installer-owned objects are warned of (``tags.py``,
  ``webhooks.py``);
- restart like ``kubectl rollout restart`` (strategic-merge patch of the pod template's
  ``restartedAt``), plus ``canary-analyzer.io/restart-step`` so a step never restarts twice
  (``restarts.py``);
- rollout status by kubectl's rules (``workloads.py``); per-pod proxy revision from
  ``sidecar.istio.io/status`` (``pods.py``, ``proxies.py``).
Objects are handled as plain JSON dicts (``_preload_content=False``): what the API sent,
no client-model conversions. Conflicts, 429/5xx and timeouts are retried with backoff
(``api.py``). The state ConfigMap is ``state_store.py``; Events ``events.py``.

One module per concern; ``KubernetesCluster`` (``cluster.py``) puts the concerns together.
Every public name is exported here, so callers import from ``analyzer.adapters.kubernetes``.
"""

from analyzer.adapters.kubernetes.api import KINDS, RETRY_STATUSES, STRATEGIC, ClusterApi, connect
from analyzer.adapters.kubernetes.cluster import KubernetesCluster
from analyzer.adapters.kubernetes.errors import ClusterRefusedError, WorkloadPausedError
from analyzer.adapters.kubernetes.events import EVENTS_NAMESPACE, REPORTING_CONTROLLER
from analyzer.adapters.kubernetes.objects import MANAGED_BY, controller_of
from analyzer.adapters.kubernetes.pods import (
    INJECT,
    SIDECAR_STATUS,
    has_proxy,
    injection_skipped,
    pod_revision,
)
from analyzer.adapters.kubernetes.restarts import RESTART_STEP, RESTARTED_AT
from analyzer.adapters.kubernetes.state_store import ConfigMapStateStore
from analyzer.adapters.kubernetes.webhooks import (
    DEFAULT_VALIDATOR,
    INJECTOR_SUFFIX,
    NEVER_MATCH,
    OPERATOR_LABELS,
    TAG_LABEL,
    tag_webhook_name,
)
from analyzer.adapters.kubernetes.workloads import (
    STANDARD_POD_CONTROLLERS,
    rollout_problem,
    unrollable,
)

__all__ = [
    "DEFAULT_VALIDATOR",
    "EVENTS_NAMESPACE",
    "INJECT",
    "INJECTOR_SUFFIX",
    "KINDS",
    "MANAGED_BY",
    "NEVER_MATCH",
    "OPERATOR_LABELS",
    "REPORTING_CONTROLLER",
    "RESTARTED_AT",
    "RESTART_STEP",
    "RETRY_STATUSES",
    "SIDECAR_STATUS",
    "STANDARD_POD_CONTROLLERS",
    "STRATEGIC",
    "TAG_LABEL",
    "ClusterApi",
    "ClusterRefusedError",
    "ConfigMapStateStore",
    "KubernetesCluster",
    "WorkloadPausedError",
    "connect",
    "controller_of",
    "has_proxy",
    "injection_skipped",
    "pod_revision",
    "rollout_problem",
    "tag_webhook_name",
    "unrollable",
]
