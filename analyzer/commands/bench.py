"""The ``bench`` subcommand: benchmarks of the judge, of query batching and of memory.

- ``bench judge --scenarios N --seed S [--output text|json]``: our judge and the
  Flagger-style, Kayenta-style and naive judges on the same seeded scenarios; one table (or
  the JSON contract ``{"judges": {"ours"|"flagger"|"kayenta"|"naive": {...}}}``); then our
  judge's calibration on real-shaped histograms (``--calibration-scenarios``, JSON
  ``calibration``) and minutes to a verdict, fixed windows against anytime-valid looks
  (``--decision-scenarios``, JSON ``time_to_decision``), and errors +0.5 pp against a rule
  allowing less, beside the Kayenta-style judge (``--allowance-scenarios``, JSON
  ``allowance_study``).
- ``bench night --namespaces N --nights M [--night-budget B] [--output text|json]``: seeded
  whole nights (waves, controls, extensions, the budget's Holm step-down) and how they
  end — promoted, rolled back or held — at each rule's own alpha and with the budget;
  the plan ordered by evidence and quiet namespaces judged by the quiet policy
  (``--order``, ``--quiet``, ``--traffic-mix``, ``--regression``/``--regression-in``).
- ``bench scale --namespaces N [--output text|json]``: batched vs per-namespace queries
  against a real local Prometheus on backfilled history (started and stopped here).
- ``bench memory [--runs N] [--scenario NAME] [--output text|json]``: the resident memory
  of an idle ``serve`` on the simulated mesh (both started as processes and stopped here).

Exit codes: 0 done · 2 bad input, or Prometheus not installed (scale).
"""

from __future__ import annotations

import argparse
import logging
import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from analyzer.commands.common import add_output_flag, print_document, share, structured
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
#: regression kinds ``--canary-regression`` accepts (the benchmark's injected regressions)
REGRESSION_KINDS = (
    "errors+0.5pp", "errors+1pp", "errors+2pp", "p99+10%", "p99+25%", "p99+50%", "traffic-50%",
)  # fmt: skip
#: and ``bench night --regression``: those, a quiet namespace's large one, and a crash loop
NIGHT_REGRESSION_KINDS = (*REGRESSION_KINDS, "errors+5pp", "crash-loop")


def _rps(text: str) -> float:
    """An argparse type: a request rate above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, got {text}")
    return value


def _wave_sizes(text: str) -> tuple[int, ...]:
    """An argparse type: ``1,2,4`` → (1, 2, 4), every size a whole number ≥ 1."""
    return tuple(_positive(part.strip()) for part in text.split(","))


def _traffic_range(text: str) -> tuple[float, float]:
    """An argparse type: ``10,200`` → (10.0, 200.0), 0 < low ≤ high."""
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH in rps, got {text!r}") from None
    if not 0 < low <= high:
        raise argparse.ArgumentTypeError(f"need 0 < LOW <= HIGH, got {text}")
    return low, high


def register(subparsers) -> None:
    """Add ``bench`` to the command line."""
    parser = subparsers.add_parser(
        "bench",
        help="benchmarks of the judge, of query batching and of memory",
        description="Measure verdict quality against peer judges, query batching at scale, "
        "and the idle service's memory.",
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
        "--calibration-scenarios",
        type=_count,
        default=50,
        help="healthy real-shaped restarts per calibration cell (Istio's bucket layouts × "
        "latency shapes × 5-50 rps; default 50; 0: no calibration table)",
    )
    judge.add_argument(
        "--decision-scenarios",
        type=_count,
        default=20,
        help="restarts per case of the time-to-decision study, fixed windows against "
        "anytime-valid looks (default 20; 0: none)",
    )
    judge.add_argument(
        "--allowance-scenarios",
        type=_count,
        default=0,
        help="errors +0.5 pp at >= 10 rps (and as many healthy): ours under the shipped "
        "rule and under a +0.25 pp allowance beside the Kayenta-style judge (default 0: none)",
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
    judge.add_argument(
        "--fail-when",
        choices=("estimate-beyond", "beyond-allowance"),
        default=None,
        help="our judge: every rule's judge.failWhen (default: as in the rules shipped)",
    )
    add_output_flag(judge)
    judge.set_defaults(handler=judge_command)
    night = commands.add_parser(
        "night",
        help="whole upgrade nights: how often they end rolled back or held",
        description="Seeded nights through the engine's waves, controls, extensions and night "
        "budget: the share promoted, rolled back and held, at each rule's own alpha and, "
        "with --night-budget, on the same nights with the budget.",
    )
    night.add_argument("--namespaces", type=_positive, default=25, help="per night (default 25)")
    night.add_argument("--nights", type=_positive, default=200, help="nights (default 200)")
    night.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    night.add_argument(
        "--night-budget",
        type=share,
        help="also judge the same nights with this accepted chance of any false rollback",
    )
    night.add_argument(
        "--waves",
        type=_wave_sizes,
        default=(1, 2, 4),
        help="wave sizes, comma-separated; the last keeps doubling (default 1,2,4)",
    )
    night.add_argument(
        "--max-extensions", type=_count, default=2, help="extensions per wave (default 2)"
    )
    night.add_argument(
        "--anytime",
        action="store_true",
        help="also judge the same nights with anytime-valid looks after every step (each "
        "rule's own alpha), stopping each wave at its first decision",
    )
    night.add_argument(
        "--canary-regression",
        choices=tuple(REGRESSION_KINDS),
        help="inject this regression into the canary (default: every namespace healthy)",
    )
    night.add_argument(
        "--traffic",
        type=_traffic_range,
        default=(10.0, 200.0),
        help="namespaces' request rates, drawn log-uniformly: LOW,HIGH rps (default 10,200)",
    )
    night.add_argument(
        "--traffic-mix",
        choices=("log-uniform", "heavy-tailed"),
        default="log-uniform",
        help="how rates are drawn within --traffic: log-uniform, or heavy-tailed (a Pareto "
        "tail: most namespaces near LOW, a few busy ones; default log-uniform)",
    )
    night.add_argument(
        "--order",
        choices=("evidence", "given"),
        default="evidence",
        help="the plan's order: evidence (busiest forecast first, quiet namespaces last; "
        "the product's) or given (as listed; before quiet namespaces had a policy)",
    )
    night.add_argument(
        "--quiet",
        choices=("pool", "inherit", "hold"),
        default="pool",
        help="every rule's quiet policy for namespaces too thin to judge alone (default "
        "pool, the rules' default)",
    )
    night.add_argument(
        "--regression",
        choices=NIGHT_REGRESSION_KINDS,
        help="inject this regression where --regression-in says (errors+5pp and crash-loop "
        "exist only here)",
    )
    night.add_argument(
        "--regression-in",
        choices=("canary", "all", "one-quiet"),
        default="canary",
        help="where --regression lives: the canary, every namespace on the new revision, or "
        "one quiet namespace alone at --quiet-rps (default canary)",
    )
    night.add_argument(
        "--quiet-rps",
        type=_rps,
        default=0.2,
        help="--regression-in one-quiet: that namespace's rate in rps (default 0.2)",
    )
    night.add_argument(
        "--before-windows",
        choices=("own", "fixed"),
        default="own",
        help="own: each rule reads its own before-window (beforeWindow: an hour for the p99 "
        "rules), controls restarted inside it left out, as the service judges (default); "
        "fixed: every rule on 10 minutes",
    )
    add_output_flag(night)
    night.set_defaults(handler=night_command)
    scale = commands.add_parser(
        "scale",
        help="batched vs per-namespace queries against a real local Prometheus",
        description="Backfill Istio history for N namespaces, start Prometheus on 127.0.0.1, "
        "judge all namespaces with one query per rule per window, then one namespace at a "
        "time; compare queries, seconds and verdicts. Needs the 'prometheus' package.",
    )
    scale.add_argument("--namespaces", type=_positive, default=500, help="default 500")
    scale.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    add_output_flag(scale)
    scale.set_defaults(handler=scale_command)
    memory = commands.add_parser(
        "memory",
        help="resident memory of an idle serve on the simulated mesh",
        description="Start the simulated mesh and 'serve' against it as processes, wait for "
        "the service's idle loop passes, and read its resident memory (Linux /proc); repeat "
        "for --runs and give the mean with its 95%% interval.",
    )
    memory.add_argument("--runs", type=_positive, default=3, help="fresh processes (default 3)")
    memory.add_argument(
        "--scenario", default="healthy", help="simulated mesh scenario (default healthy)"
    )
    memory.add_argument(
        "--passes", type=_positive, default=6, help="idle loop passes before reading (default 6)"
    )
    add_output_flag(memory)
    memory.set_defaults(handler=memory_command)
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
    from analyzer.bench.report import (
        allowance_table,
        calibration_table,
        decision_table,
        judge_table,
        limit_table,
        print_table,
    )
    from analyzer.bench.runner import BenchConfig, run, total_scenarios

    if (args.night_budget is None) != (args.night_namespaces is None):
        raise BadInputError("--night-budget and --night-namespaces go together")
    config = BenchConfig(
        scenarios=args.scenarios,
        seed=args.seed,
        limit_scenarios=args.limit_scenarios,
        night_budget=args.night_budget,
        night_namespaces=args.night_namespaces,
        calibration_scenarios=args.calibration_scenarios,
        decision_scenarios=args.decision_scenarios,
        allowance_scenarios=args.allowance_scenarios,
        fail_when=args.fail_when,
    )
    errors = Console(stderr=True)
    with _progress(errors) as progress:
        task = progress.add_task("judging scenarios", total=total_scenarios(config))
        result = run(config, progress=lambda n: progress.advance(task, n))
    if structured(args.output):
        print_document(result.to_dict(), args.output)
    else:
        console = Console(width=200)
        print_table(judge_table(result), console)
        if result.limit_study:
            print_table(limit_table(result), console)
        if result.calibration is not None:
            print_table(calibration_table(result), console)
        if result.time_to_decision is not None:
            print_table(decision_table(result), console)
        if result.allowance_study is not None:
            print_table(allowance_table(result), console)
    return int(ExitCode.OK)


def night_command(args: argparse.Namespace) -> int:
    from analyzer.bench.night import NightConfig, night_study
    from analyzer.bench.report import night_table, print_table

    config = NightConfig(
        namespaces=args.namespaces,
        waves=args.waves,
        max_extensions=args.max_extensions,
        night_budget=args.night_budget,
        canary_regression=args.canary_regression,
        traffic=args.traffic,
        anytime=args.anytime,
        traffic_mix=args.traffic_mix,
        order=args.order,
        quiet=args.quiet,
        regression=args.regression,
        regression_in=args.regression_in,
        quiet_rps=args.quiet_rps,
        rule_before_windows=args.before_windows == "own",
    )
    if args.regression and args.canary_regression:
        raise BadInputError("--canary-regression and --regression: give one")
    budget = args.night_budget is not None
    runs = 1 + budget + args.anytime * (1 + budget)
    errors = Console(stderr=True)
    with _progress(errors) as progress:
        task = progress.add_task("judging nights", total=args.nights * runs)
        study = night_study(
            config, args.nights, args.seed, progress=lambda n: progress.advance(task, n)
        )
    result = {
        "config": {
            "namespaces": config.namespaces,
            "waves": list(config.waves),
            "max_extensions": config.max_extensions,
            "night_budget": config.night_budget,
            "canary_regression": config.canary_regression,
            "traffic_rps": list(config.traffic),
            "seed": args.seed,
            "anytime": config.anytime,
            "traffic_mix": config.traffic_mix,
            "order": config.order,
            "quiet": config.quiet,
            "regression": config.regression,
            "regression_in": config.regression_in,
            "before_windows": args.before_windows,
            "quiet_rps": config.quiet_rps,
        },
        "nights": args.nights,
        "runs": {key: tally.to_dict() for key, tally in study.items()},
    }
    if structured(args.output):
        print_document(result, args.output)
    else:
        print_table(night_table(result), Console(width=200))
    return int(ExitCode.OK)


def scale_command(args: argparse.Namespace) -> int:
    from analyzer.bench import scale
    from analyzer.bench.report import print_table, scale_table
    from analyzer.lab.local_servers import LocalServerMissingError, binary

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
    if structured(args.output):
        print_document(result, args.output)
    else:
        print_table(scale_table(result), Console(width=200))
    return int(ExitCode.OK)


def memory_command(args: argparse.Namespace) -> int:
    from analyzer.bench import memory

    errors = Console(stderr=True)
    with errors.status("memory benchmark: idle serve"):
        try:
            result = memory.run(args.runs, args.scenario, args.passes)
        except memory.MemoryBenchError as error:
            raise BadInputError(str(error)) from None
    if structured(args.output):
        print_document(result, args.output)
    else:
        low, high = result["interval95_mb"]
        print(
            f"idle serve resident memory: {result['mean_mb']:.1f} MiB "
            f"(95% interval {low:.1f}–{high:.1f}; runs {result['runs']}: "
            f"{', '.join(f'{v:.1f}' for v in result['rss_mb'])}; scenario {result['scenario']}, "
            f"after {result['idle_passes']} idle loop passes)"
        )
    return int(ExitCode.OK)
