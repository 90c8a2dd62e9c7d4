"""The ``rules`` subcommand: rules."""

from __future__ import annotations

from analyzer.commands._placeholder import register_placeholder


def register(subparsers) -> None:
    """Add ``rules`` to the command line."""
    register_placeholder(subparsers, "rules", "rules")
