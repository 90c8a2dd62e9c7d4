"""Fixtures of the core tests: the namespace the shared failing verdict is built for."""

from tests.fixtures.alerts import namespace

__all__ = ["namespace"]
