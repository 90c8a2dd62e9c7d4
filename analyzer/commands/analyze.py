"""The ``analyze`` subcommand: judge past restarts of a namespace (retrospective, backtest).

One restart prints its verdict; several (``--restarted-at`` repeated, ``--restarts-file``)
print one backtest table, rule × restart, exported with ``--csv``.
Exit codes: 0 pass · 1 fail · 2 bad input · 3 inconclusive · 4 Prometheus unreachable.
"""

from __future__ import annotations

from analyzer.commands.common import add_common_flags, add_output_flag, lazy_handler


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="judge past restarts of a namespace (retrospective, backtest)",
        description="Judge a namespace's metrics before vs after a restart against the rules. "
        "Windows: before [t-before, t), after [t+settle, t+settle+after). Several restarts "
        "(--restarted-at repeated, --restarts-file, --last N recorded) are a backtest: one table, rule × restart, "
        "with effect sizes (--csv FILE exports it). Exit 0 pass, 1 fail, 2 bad input, "
        "3 inconclusive (for a backtest: the worst restart), 4 Prometheus unreachable.",
    )
    parser.add_argument("-n", "--namespace", required=True, help="the restarted namespace")
    parser.add_argument(
        "--restarted-at",
        action="append",
        metavar="TIME",
        help="restart time: ISO 8601 with a timezone (2026-11-27T01:30:00Z) or relative (2h ago, "
        "90m ago); never in the future. Repeat it to backtest several restarts",
    )
    parser.add_argument(
        "--restarts-file",
        metavar="FILE",
        help="restart times to backtest, one per line (as --restarted-at; '#' starts a comment)",
    )
    parser.add_argument(
        "--last",
        type=int,
        metavar="N",
        help="backtest the namespace's last N recorded restarts (upgrades and shadow mode "
        "append them to the restart history, service.history_file)",
    )
    parser.add_argument(
        "--history",
        metavar="FILE",
        help="the restart history --last reads (default: the service.history_file setting, "
        "else restarts.jsonl beside service.reports_dir)",
    )
    parser.add_argument(
        "--csv",
        metavar="FILE",
        help="write the table (rule × restart: verdict, before, after, change, estimate net of "
        "controls, its standard error, p-value) as CSV",
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
