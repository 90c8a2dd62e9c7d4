"""The ``bench`` subcommand: benchmarks of the judge and of query batching."""

from __future__ import annotations

from analyzer.commands._placeholder import register_placeholder


def register(subparsers) -> None:
    """Add ``bench`` to the command line."""
    register_placeholder(subparsers, "bench", "benchmarks of the judge and of query batching")
