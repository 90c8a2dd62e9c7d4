"""Fixtures of the simulated-mesh tests (shared ones live in tests/fixtures/sim_fixtures)."""

from tests.fixtures.sim_fixtures import kube_client, make_mesh, make_prometheus, mesh

__all__ = ["kube_client", "make_mesh", "make_prometheus", "mesh"]
