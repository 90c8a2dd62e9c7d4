"""canary-analyzer: unattended, metric-gated Istio data-plane upgrades.

Layers (enforced by import-linter, see pyproject.toml):
``core`` is pure decisions over plain data, ``adapters`` talk to Prometheus, Kubernetes and
notification sinks, ``runtime`` applies core's decisions through the adapters, ``sim`` is a
simulated mesh for demos, tests and rule authors.
"""

__version__ = "0.1.0"
