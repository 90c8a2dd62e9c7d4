"""Tests of the simulated mesh: fake Kubernetes API, controllers, injection and traffic."""
