"""The ``demo`` subcommand: the main job on a simulated mesh with real Prometheus and
Alertmanager, live, in a few minutes (``make demo``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from analyzer.errors import BadInputError, UnreachableError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="simulated mesh + real Prometheus + Alertmanager + the real service, compressed time",
        description="Run the service on a simulated mesh where the canary is healthy and a later "
        "wave regresses: watch the tag move, restarts, verdicts with numbers, the automatic "
        "rollback and the page on-call receives. Needs the Debian packages prometheus and "
        "prometheus-alertmanager (make demo installs them).",
    )
    parser.add_argument(
        "--scenario",
        default="bad-second-wave",
        help="scenario name or file (default bad-second-wave)",
    )
    parser.add_argument(
        "--work-dir", type=Path, help="where logs, data and the report go (default: a new temp dir)"
    )
    parser.add_argument(
        "--timeout", type=float, default=240.0, help="seconds the upgrade may take (default 240)"
    )
    parser.set_defaults(handler=demo_command)


def demo_command(args: argparse.Namespace) -> int:
    from analyzer.lab.demo import DemoError, run_demo
    from analyzer.lab.local_servers import LocalServerStartError

    try:
        return run_demo(args.scenario, args.work_dir, args.timeout)
    except DemoError as error:
        raise BadInputError(f"demo: {error}") from None
    except LocalServerStartError as error:
        raise UnreachableError(f"demo: {error}") from None
