"""The ``upgrade`` subcommand: run one whole upgrade now, in the foreground."""

from __future__ import annotations

from analyzer.commands._placeholder import register_placeholder


def register(subparsers) -> None:
    """Add ``upgrade`` to the command line."""
    register_placeholder(subparsers, "upgrade", "run one whole upgrade now, in the foreground")
