"""Fixtures of the service tests: the simulated mesh, the Kubernetes adapter on it, and the
alert receivers the dispatcher delivers to."""

from tests.fixtures.alerts import alert_logs, alertmanager, namespace, receiver
from tests.fixtures.sim_fixtures import cluster, kube_client, make_mesh, mesh

__all__ = [
    "alert_logs", "alertmanager", "cluster", "kube_client", "make_mesh", "mesh", "namespace",
    "receiver",
]
