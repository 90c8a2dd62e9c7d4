"""The Kubernetes adapter on the simulated API server, shared by the engine tests.

A module that defines its own ``mesh`` fixture (a scenario of its own) gets the adapter on
that mesh; the others get ``tests.fixtures.sim_fixtures``'s default one.
"""

from __future__ import annotations

import pytest

from analyzer.adapters.kubernetes import KubernetesCluster
from tests.fixtures.sim_fixtures import api_client_for, make_mesh, mesh  # noqa: F401


@pytest.fixture
def cluster(mesh):  # noqa: F811
    """``KubernetesCluster`` on ``mesh`` through the official client over HTTP."""
    adapter = KubernetesCluster(api_client_for(mesh), request_timeout=10, backoff=0.01)
    yield adapter
    adapter.close()
