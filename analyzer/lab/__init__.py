"""Tooling for people trying the product: the demo and local Prometheus/Alertmanager servers.

Besides the commands, this is the only place that may import the simulated mesh.
"""
