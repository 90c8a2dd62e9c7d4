"""The ``upgrade`` subcommand: run one whole upgrade now, in the foreground, with progress.

Wires the real adapters (Kubernetes, Prometheus, state ConfigMap) to the engine. Rerunning
the same command after a crash resumes the recorded upgrade. Exit codes: 0 promoted ·
1 rolled back (or a rollback that could not finish) · 2 bad input / preflight failed ·
3 held (inconclusive) · 4 cluster or Prometheus unreachable · 70 internal error.
"""

from __future__ import annotations

from pathlib import Path

from analyzer.commands.common import (
    add_common_flags,
    add_notification_flags,
    add_output_flag,
    lazy_handler,
)
from analyzer.core.upgrade import UpgradeStyle


def register(subparsers) -> None:
    """Add ``upgrade`` to the command line."""
    parser = subparsers.add_parser(
        "upgrade",
        help="run one whole upgrade now, in the foreground",
        description="Move the revision tag (or namespace labels), restart the gateway, a canary "
        "namespace, then growing waves; judge each against the rules; promote or roll back. "
        "Rerun the same command to resume after a crash. Exit 0 promoted, 1 rolled back, "
        "2 bad input, 3 held (inconclusive), 4 cluster or Prometheus unreachable.",
    )
    parser.add_argument("--to-revision", required=True, metavar="REV", help="target revision")
    parser.add_argument(
        "--from-revision", metavar="REV", help="expected current revision of the tag (checked)"
    )
    parser.add_argument("--tag", help="revision tag to move (default: settings, 'default')")
    parser.add_argument(
        "--namespaces",
        metavar="NS,NS",
        help="namespaces in upgrade order (default: every namespace using the tag)",
    )
    parser.add_argument(
        "--style", choices=[s.value for s in UpgradeStyle], help="tag or namespace-label"
    )
    parser.add_argument(
        "--exclude-unrollable",
        action="store_true",
        help="leave out (and report) workloads a restart cannot roll (OnDelete, partitioned, "
        "owned by another controller) instead of refusing",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="check and print every action; change nothing"
    )
    add_output_flag(parser)
    parser.add_argument(
        "--report", metavar="FILE.html", type=Path, help="write a self-contained HTML report"
    )
    add_notification_flags(parser)
    add_common_flags(parser)
    parser.set_defaults(handler=lazy_handler("analyzer.commands._upgrade", "upgrade_command"))
