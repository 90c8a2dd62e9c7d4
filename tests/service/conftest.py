"""Fixtures of the service tests: the simulated mesh for the Lease tests."""

from tests.fixtures.sim_fixtures import kube_client, make_mesh, mesh

__all__ = ["kube_client", "make_mesh", "mesh"]
