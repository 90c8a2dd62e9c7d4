"""The ``analyze`` subcommand: judge one past restart of a namespace (backtest, retrospective).

Exit codes: 0 pass · 1 fail · 2 bad input · 3 inconclusive · 4 Prometheus unreachable.
"""

from __future__ import annotations

from analyzer.commands.common import add_common_flags, add_output_flag, lazy_handler


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="judge one past restart of a namespace (backtest)",
        description="Judge a namespace's metrics before vs after a restart against the rules. "
        "Windows: before [t-before, t), after [t+settle, t+settle+after). Exit 0 pass, "
        "1 fail, 2 bad input, 3 inconclusive, 4 Prometheus unreachable.",
    )
    parser.add_argument("-n", "--namespace", required=True, help="the restarted namespace")
    parser.add_argument(
        "--restarted-at",
        required=True,
        metavar="ISO8601",
        help="restart time, e.g. 2026-11-27T01:30:00Z",
    )
    parser.add_argument(
        "--controls",
        metavar="NS,NS|auto",
        help="namespaces NOT restarted, judged over the same windows to cancel drift; "
        "'auto' = every other namespace with traffic (default: none)",
    )
    add_output_flag(parser)
    parser.add_argument(
        "--report",
        metavar="FILE.html",
        help="also write a self-contained HTML report with a chart per rule (no network needed "
        "to open it)",
    )
    add_common_flags(parser, kubernetes=False)
    parser.set_defaults(handler=lazy_handler("analyzer.commands._analyze", "analyze_command"))
