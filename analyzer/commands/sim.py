"""The ``sim`` subcommand: run the simulated mesh in the foreground."""

from __future__ import annotations

from analyzer.commands._placeholder import register_placeholder


def register(subparsers) -> None:
    """Add ``sim`` to the command line."""
    register_placeholder(subparsers, "sim", "run the simulated mesh in the foreground")
