"""Registers a subcommand whose implementation has not landed yet, with an honest message."""

from __future__ import annotations

import argparse
import sys

from analyzer.errors import ExitCode


def register_placeholder(subparsers, name: str, help_text: str) -> argparse.ArgumentParser:
    """Add ``name`` to the command line; running it says it is not yet available (exit 2)."""
    parser = subparsers.add_parser(name, help=f"{help_text} (not yet available)")

    def handler(_args: argparse.Namespace) -> int:
        print(f"canary-analyzer {name}: not yet available in this version", file=sys.stderr)
        return ExitCode.BAD_INPUT

    parser.set_defaults(handler=handler)
    return parser
