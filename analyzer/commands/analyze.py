"""The ``analyze`` subcommand: judge one past restart of a namespace (backtest, retrospective).

Exit codes: 0 pass · 1 fail · 2 bad input · 3 inconclusive · 4 Prometheus unreachable.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC

from analyzer.adapters.prometheus import PrometheusSource
from analyzer.commands.common import add_common_flags, load_rule_set, parse_time, settings_from_args
from analyzer.core.ports import MetricsUnreachableError
from analyzer.core.templates import TemplateError, validate_namespace
from analyzer.core.verdicts import Verdict
from analyzer.core.windows import RestartWindows, WindowError
from analyzer.errors import BadInputError, ExitCode, UnreachableError
from analyzer.runtime.analysis import (
    AnalysisRequest,
    analyze_restart,
    controls_excluding,
    discover_namespaces,
    parse_namespace_list,
)
from analyzer.runtime.verdict_text import namespace_text

VERDICT_EXIT = {
    Verdict.PASS: ExitCode.OK,
    Verdict.FAIL: ExitCode.REGRESSION,
    Verdict.INCONCLUSIVE: ExitCode.INCONCLUSIVE,
    Verdict.ERROR: ExitCode.UNREACHABLE,
}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="judge one past restart of a namespace (backtest)",
        description="Judge a namespace's metrics before vs after a restart against the rules. "
        "Windows: before [t-before, t), after [t+settle, t+settle+after). Exit 0 pass, "
        "1 fail, 2 bad input, 3 inconclusive, 4 Prometheus unreachable.",
    )
    parser.add_argument("--namespace", required=True, help="the restarted namespace")
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
    parser.add_argument("--output", choices=("text", "json"), default="text", help="output format")
    add_common_flags(parser, kubernetes=False)
    parser.set_defaults(handler=analyze_command)


def analyze_command(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    try:
        namespace = validate_namespace(args.namespace)
        controls = tuple(
            validate_namespace(n) for n in parse_namespace_list(args.controls) if n != "auto"
        )
    except TemplateError as error:
        raise BadInputError(str(error)) from None
    restarted_at = parse_time(args.restarted_at).astimezone(UTC)
    windows_settings = settings.windows
    try:
        windows = RestartWindows.around(
            restarted_at,
            before=windows_settings.before,
            settle=windows_settings.settle,
            after=windows_settings.after,
            step=windows_settings.step,
        )
    except WindowError as error:
        raise BadInputError(str(error)) from None
    rules = load_rule_set(settings)
    source = PrometheusSource(settings.prometheus)
    label = settings.rules.namespace_label
    try:
        source.ping()
        if args.controls and args.controls.strip() == "auto":
            controls = controls_excluding(discover_namespaces(source, windows, label), [namespace])
        outcome = analyze_restart(
            source,
            rules,
            AnalysisRequest(
                judged=(namespace,), controls=controls, windows=windows, namespace_label=label
            ),
        )
    except MetricsUnreachableError as error:
        raise UnreachableError(str(error)) from None
    finally:
        source.close()
    if outcome.source_unreachable:
        reasons = {r.reason for v in outcome.verdicts.values() for r in v.rules}
        raise UnreachableError("; ".join(sorted(reasons)))
    verdict = outcome.verdicts[namespace]
    if args.output == "json":
        document = {
            "namespace": namespace,
            "verdict": verdict.verdict.value,
            "reason": verdict.reason,
            "windows": windows.to_dict(),
            "controls": list(controls),
            "queries_sent": outcome.queries_sent,
            "rules": [result.to_dict() for result in verdict.rules],
        }
        print(json.dumps(document, indent=2, default=str))
    else:
        print(namespace_text(verdict, windows))
        if controls:
            print(f"  controls: {', '.join(controls)}")
    return VERDICT_EXIT[verdict.verdict]
