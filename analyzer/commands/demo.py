"""The ``demo`` subcommand: simulated mesh + real Prometheus + the real engine."""

from __future__ import annotations

from analyzer.commands._placeholder import register_placeholder


def register(subparsers) -> None:
    """Add ``demo`` to the command line."""
    register_placeholder(subparsers, "demo", "simulated mesh + real Prometheus + the real engine")
