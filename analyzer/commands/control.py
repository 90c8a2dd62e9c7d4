"""The ``status``, ``pause``, ``resume``, ``approve`` and ``abort`` subcommands."""

from __future__ import annotations

from analyzer.commands._placeholder import register_placeholder


def register(subparsers) -> None:
    """Add the verbs that talk to a running service."""
    for verb in ("status", "pause", "resume", "approve", "abort"):
        register_placeholder(subparsers, verb, f"{verb} a running service")
