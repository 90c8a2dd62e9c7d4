"""canary-analyzer: unattended, metric-gated Istio data-plane upgrades.

Layers (enforced by import-linter, see pyproject.toml):
``core`` is pure decisions over plain data, ``adapters`` talk to Prometheus, Kubernetes and
notification sinks, ``service`` is the control loop that applies core's decisions through the
adapters, ``views`` render typed data for people, ``lab`` holds the demo and local servers,
``sim`` is a simulated mesh for demos, tests and rule authors, ``bench`` measures the judge.
"""

__version__ = "0.1.0"
