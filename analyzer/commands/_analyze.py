"""The ``analyze`` command's implementation, imported only when it runs (fast ``--help``).

The ``analyze`` subcommand: judge one past restart of a namespace (backtest, retrospective).

Exit codes: 0 pass · 1 fail · 2 bad input · 3 inconclusive · 4 Prometheus unreachable.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC
from urllib.parse import urlsplit, urlunsplit

from analyzer.adapters.prometheus import PrometheusSource
from analyzer.commands.common import (
    load_rule_set,
    parse_time,
    print_document,
    settings_from_args,
    structured,
)
from analyzer.core.multiplicity import NightBudget
from analyzer.core.ports import MetricsUnreachableError
from analyzer.core.templates import TemplateError, validate_namespace
from analyzer.core.verdicts import Verdict
from analyzer.core.windows import RestartWindows, WindowError
from analyzer.errors import BadInputError, ExitCode, UnreachableError
from analyzer.service.analysis import (
    AnalysisRequest,
    analyze_restart,
    controls_excluding,
    discover_namespaces,
    parse_namespace_list,
)
from analyzer.views.terminal import is_terminal, print_verdict_table, query_progress
from analyzer.views.verdict_text import namespace_text

VERDICT_EXIT = {
    Verdict.PASS: ExitCode.OK,
    Verdict.FAIL: ExitCode.REGRESSION,
    Verdict.INCONCLUSIVE: ExitCode.INCONCLUSIVE,
    Verdict.ERROR: ExitCode.UNREACHABLE,
}


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
    auto = bool(args.controls and args.controls.strip() == "auto")
    try:
        source.ping()
        with query_progress(source, 2 * len(rules) + int(auto)) as tracked:
            if auto:
                controls = controls_excluding(
                    discover_namespaces(tracked, windows, label), [namespace]
                )
            judged = (namespace,)
            outcome = analyze_restart(
                tracked,
                rules,
                AnalysisRequest(
                    judged=judged, controls=controls, windows=windows, namespace_label=label
                ),
                budget=(
                    NightBudget(settings.rules.night_budget, len(judged))
                    if settings.rules.night_budget is not None
                    else None
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
    if structured(args.output):
        document = {
            "namespace": namespace,
            "verdict": verdict.verdict.value,
            "reason": verdict.reason,
            "windows": windows.to_dict(),
            "controls": list(controls),
            "queries_sent": outcome.queries_sent,
            "rules": [result.to_dict() for result in verdict.rules],
        }
        print_document(document, args.output)
    elif is_terminal(sys.stdout):
        print_verdict_table(verdict, windows, controls)
    else:
        print(namespace_text(verdict, windows))
        if controls:
            print(f"  controls: {', '.join(controls)}")
    if args.report:
        _write_report(args.report, verdict, windows, controls, settings, outcome.queries_sent)
    return VERDICT_EXIT[verdict.verdict]


def _write_report(path, verdict, windows, controls, settings, queries_sent: int) -> None:
    """Write the HTML report of this analysis (``--report``); exit 2 when it cannot."""
    from analyzer.views.reports import render_analysis_report, write_report

    meta = {
        "Prometheus": _without_credentials(settings.prometheus.url),
        "Rules": str(settings.rules.directory or "default rules"),
        "Queries sent": queries_sent,
    }
    try:
        written = write_report(path, render_analysis_report(verdict, windows, controls, meta))
    except OSError as error:
        raise BadInputError(f"--report: cannot write {path}: {error.strerror or error}") from None
    print(f"report written to {written}", file=sys.stderr)


def _without_credentials(url: str) -> str:
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))
