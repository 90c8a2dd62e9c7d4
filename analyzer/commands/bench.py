"""The ``bench`` subcommand: benchmarks of the judge and of query batching.

- ``bench judge --scenarios N --seed S [--output text|json]``: our judge and the
  Flagger-style, Kayenta-style and naive judges on the same seeded scenarios; one table (or
  the JSON contract ``{"judges": {"ours"|"flagger"|"kayenta"|"naive": {...}}}``).
- ``bench scale --namespaces N [--output text|json]``: batched vs per-namespace queries
  against a real local Prometheus on backfilled history (started and stopped here).

Exit codes: 0 done · 2 bad input, or Prometheus not installed (scale).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from analyzer.commands.common import share
from analyzer.errors import BadInputError, ExitCode


def _whole_number(minimum: int):
    """An argparse type: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        return value

    return parse


_positive = _whole_number(1)
_count = _whole_number(0)


def register(subparsers) -> None:
    """Add ``bench`` to the command line."""
    parser = subparsers.add_parser(
        "bench",
        help="benchmarks of the judge and of query batching",
        description="Measure verdict quality against peer judges, and query batching at scale.",
    )
    commands = parser.add_subparsers(dest="bench_command", metavar="BENCH")
    judge = commands.add_parser(
        "judge",
        help="verdict quality: ours vs Flagger-, Kayenta-style and naive judges",
        description="Seeded restart scenarios (drift, low traffic, injected regressions), "
        "every judge on the same data: false rollbacks, detection per regression size, "
        "inconclusive rate and the physical limit per traffic level.",
    )
    judge.add_argument("--scenarios", type=_positive, default=2000, help="scenarios (default 2000)")
    judge.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    judge.add_argument(
        "--limit-scenarios",
        type=_count,
        default=0,
        help="our judge against the physical limit: this many more scenarios per traffic "
        "level, healthy and errors+1pp in turn (default 0: no limit study)",
    )
    judge.add_argument(
        "--night-budget",
        type=share,
        help="our judge: accepted chance of any false rollback in a night, spread over "
        "--night-namespaces × 4 rules (default: each rule's own confidence)",
    )
    judge.add_argument(
        "--night-namespaces",
        type=_positive,
        help="our judge: namespaces the night's budget is spread over",
    )
    judge.add_argument("--output", choices=("text", "json"), default="text")
    judge.set_defaults(handler=judge_command)
    scale = commands.add_parser(
        "scale",
        help="batched vs per-namespace queries against a real local Prometheus",
        description="Backfill Istio history for N namespaces, start Prometheus on 127.0.0.1, "
        "judge all namespaces with one query per rule per window, then one namespace at a "
        "time; compare queries, seconds and verdicts. Needs the 'prometheus' package.",
    )
    scale.add_argument("--namespaces", type=_positive, default=500, help="default 500")
    scale.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    scale.add_argument("--output", choices=("text", "json"), default="text")
    scale.set_defaults(handler=scale_command)
    parser.set_defaults(handler=lambda args: _missing(parser))


def _missing(parser: argparse.ArgumentParser) -> int:
    parser.print_help(sys.stderr)
    return int(ExitCode.BAD_INPUT)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def judge_command(args: argparse.Namespace) -> int:
    from analyzer.bench.report import judge_table, limit_table, print_table
    from analyzer.bench.runner import BenchConfig, run, total_scenarios

    if (args.night_budget is None) != (args.night_namespaces is None):
        raise BadInputError("--night-budget and --night-namespaces go together")
    config = BenchConfig(
        scenarios=args.scenarios,
        seed=args.seed,
        limit_scenarios=args.limit_scenarios,
        night_budget=args.night_budget,
        night_namespaces=args.night_namespaces,
    )
    errors = Console(stderr=True)
    with _progress(errors) as progress:
        task = progress.add_task("judging scenarios", total=total_scenarios(config))
        result = run(config, progress=lambda n: progress.advance(task, n))
    if args.output == "json":
        print(json.dumps(result.to_dict(), indent=2))
    else:
        console = Console(width=200)
        print_table(judge_table(result), console)
        if result.limit_study:
            print_table(limit_table(result), console)
    return int(ExitCode.OK)


def scale_command(args: argparse.Namespace) -> int:
    from analyzer.bench import scale
    from analyzer.bench.report import print_table, scale_table
    from analyzer.runtime.local_servers import LocalServerMissingError, binary

    try:
        binary("prometheus")
        binary("promtool")
    except LocalServerMissingError as error:
        raise BadInputError(str(error)) from None
    if not getattr(args, "debug", False):  # one log line per rule and namespace drowns the figure
        logging.getLogger("canary_analyzer.analysis").setLevel(logging.WARNING)
    errors = Console(stderr=True)
    with errors.status("scale benchmark") as status:
        result = scale.run(args.namespaces, args.seed, status=lambda m: status.update(m))
    if args.output == "json":
        print(json.dumps(result, indent=2))
    else:
        print_table(scale_table(result), Console(width=200))
    return int(ExitCode.OK)
