"""The ``serve`` subcommand: the long-running service."""

from __future__ import annotations

from analyzer.commands._placeholder import register_placeholder


def register(subparsers) -> None:
    """Add ``serve`` to the command line."""
    register_placeholder(subparsers, "serve", "the long-running service")
