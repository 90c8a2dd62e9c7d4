"""Fixtures of the adapter tests: the simulated mesh, the Kubernetes adapter on it, and the
real Alertmanager and webhook receiver that notifications are delivered to."""

from tests.fixtures.alerts import alert_logs, alertmanager, namespace, receiver
from tests.fixtures.sim_fixtures import cluster, kube_client, make_mesh, mesh

__all__ = [
    "alert_logs", "alertmanager", "cluster", "kube_client", "make_mesh", "mesh", "namespace",
    "receiver",
]
