"""The ``analyze`` subcommand: analyze."""

from __future__ import annotations

from analyzer.commands._placeholder import register_placeholder


def register(subparsers) -> None:
    """Add ``analyze`` to the command line."""
    register_placeholder(subparsers, "analyze", "analyze")
