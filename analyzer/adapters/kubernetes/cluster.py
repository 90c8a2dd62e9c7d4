"""``KubernetesCluster``: the ``MeshCluster`` port on a real (or simulated) API server.

Why it exists: the upgrade engine depends on the ``MeshCluster`` Protocol; this is the one
implementation that talks to an API server. Its work is spread over modules by concern, as
one controller's methods are spread over several files; this class only puts them together.
"""

from __future__ import annotations

from analyzer.adapters.kubernetes.discovery import Discovery
from analyzer.adapters.kubernetes.events import EventRecorder
from analyzer.adapters.kubernetes.namespaces import NamespaceLabels
from analyzer.adapters.kubernetes.proxies import ProxyChecks
from analyzer.adapters.kubernetes.restarts import WorkloadRestarts
from analyzer.adapters.kubernetes.tags import TagMoves


class KubernetesCluster(
    Discovery, NamespaceLabels, TagMoves, WorkloadRestarts, ProxyChecks, EventRecorder
):
    """``MeshCluster`` on a real (or simulated) API server.

    | concern | module |
    | --- | --- |
    | client, retries, JSON, workload APIs | ``api.py`` (``ClusterApi``) |
    | revisions, workloads, a tag's reach | ``discovery.py`` |
    | namespace ``istio.io/rev`` labels | ``namespaces.py`` |
    | tags listed and moved (``istioctl tag set``) | ``tags.py``, ``webhooks.py`` |
    | restarts and rollout status (kubectl's rules) | ``restarts.py``, ``workloads.py`` |
    | proxies verified, pods left alone, pod health | ``proxies.py``, ``pods.py`` |
    | Events about namespaces | ``events.py`` |
    """
