"""The ``canary-analyzer`` command line: one parser, subcommands registered by their modules.

Each subcommand lives in ``analyzer/commands/<name>.py`` and exposes ``register(subparsers)``,
which adds its parser and sets ``handler``: a function ``(args) -> int`` returning the exit
code. Errors map to exit codes here, in one place (the contract in docs/cli.md).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from analyzer import __version__
from analyzer.errors import CanaryAnalyzerError, ExitCode

#: Subcommand modules, in the order ``--help`` lists them.
COMMAND_MODULES = (
    "rules",
    "analyze",
    "upgrade",
    "serve",
    "control",
    "revisions",
    "demo",
    "sim",
    "bench",
    "completion",
)


def build_parser() -> argparse.ArgumentParser:
    """Build the full parser; every subcommand module registers itself."""
    parser = argparse.ArgumentParser(
        prog="canary-analyzer",
        description=(
            "Upgrade an Istio data plane unattended: move the revision tag, restart a canary "
            "namespace, judge its metrics against rule files, then promote or roll back."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="verbose logs and full tracebacks on errors"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"analyzer.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns (and exits with) the contract's exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return ExitCode.BAD_INPUT
    from analyzer.service.logs import configure_logging

    configure_logging(debug=args.debug)
    try:
        code = int(args.handler(args))
    except CanaryAnalyzerError as error:
        if args.debug:
            logging.getLogger("canary_analyzer").exception("command failed")
        print(f"canary-analyzer: error: {error}", file=sys.stderr)
        code = int(error.exit_code)
    except KeyboardInterrupt:
        print("canary-analyzer: interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:  # the reader went away (e.g. `| head`): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = int(ExitCode.OK)
    except Exception as error:  # the contract: message, no trace unless --debug
        if args.debug:
            raise
        print(
            f"canary-analyzer: internal error: {type(error).__name__}: {error} "
            "(run with --debug for the traceback)",
            file=sys.stderr,
        )
        code = int(ExitCode.INTERNAL)
    return code


def run() -> None:
    """Console-script shim so ``python -m analyzer`` and the script behave alike."""
    sys.exit(main())


if __name__ == "__main__":
    run()
