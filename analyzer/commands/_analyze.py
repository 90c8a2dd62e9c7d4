"""The ``analyze`` command's implementation, imported only when it runs (fast ``--help``).

The ``analyze`` subcommand: judge past restarts of a namespace (retrospective, backtest):
one restart prints its verdict, several print one table (``commands._backtest``).

Exit codes: 0 pass · 1 fail · 2 bad input · 3 inconclusive · 4 Prometheus unreachable.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from analyzer.adapters.prometheus import PrometheusSource
from analyzer.commands._backtest import (
    JudgedRestart,
    backtest_table,
    format_backtest,
    worst_verdict,
)
from analyzer.commands.common import (
    load_rule_set,
    print_document,
    settings_from_args,
    structured,
)
from analyzer.core.multiplicity import NightBudget
from analyzer.core.ports import MetricsUnreachableError
from analyzer.core.restart_history import last_restarts
from analyzer.core.restart_times import RestartTimeError, parse_restart_time
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
from analyzer.service.history import HistoryReadError, history_path, read_history
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
    now = datetime.now(UTC)
    recorded = recorded_restarts(
        getattr(args, "last", None), getattr(args, "history", None), settings, namespace, now
    )
    restarts = restart_times(args.restarted_at or [], args.restarts_file, now, recorded)
    if args.report and len(restarts) > 1:
        raise BadInputError("--report: an HTML report covers one restart; give one --restarted-at")
    windows_settings = settings.windows
    try:
        all_windows = [
            RestartWindows.around(
                restarted_at,
                before=windows_settings.before,
                settle=windows_settings.settle,
                after=windows_settings.after,
                step=windows_settings.step,
            )
            for restarted_at in restarts
        ]
    except WindowError as error:
        raise BadInputError(str(error)) from None
    rules = load_rule_set(settings)
    source = PrometheusSource(settings.prometheus)
    auto = bool(args.controls and args.controls.strip() == "auto")
    judged: list[JudgedRestart] = []
    try:
        source.ping()
        per_restart = 2 * len(rules) + int(auto)
        with query_progress(source, per_restart * len(all_windows)) as tracked:
            for windows in all_windows:
                judged.append(_judge(tracked, rules, settings, namespace, controls, auto, windows))
    except MetricsUnreachableError as error:
        raise UnreachableError(str(error)) from None
    finally:
        source.close()
    if args.csv:
        _write_csv(args.csv, judged)
    if len(judged) > 1:
        return _print_backtest(args, namespace, judged)
    restart = judged[0]
    verdict, windows, used = restart.verdict, restart.windows, restart.controls
    if structured(args.output):
        document = {
            "namespace": namespace,
            "verdict": verdict.verdict.value,
            "reason": verdict.reason,
            "windows": windows.to_dict(),
            "controls": list(used),
            "queries_sent": restart.queries_sent,
            "rules": [result.to_dict() for result in verdict.rules],
        }
        print_document(document, args.output)
    elif is_terminal(sys.stdout):
        print_verdict_table(verdict, windows, used)
    else:
        print(namespace_text(verdict, windows))
        if used:
            print(f"  controls: {', '.join(used)}")
    if args.report:
        _write_report(args.report, verdict, windows, used, settings, restart.queries_sent)
    return VERDICT_EXIT[verdict.verdict]


def restart_times(
    given: list[str],
    restarts_file: str | None,
    now: datetime,
    recorded: Sequence[datetime] = (),
) -> list[datetime]:
    """Restart times from ``--restarted-at`` (repeatable), ``--restarts-file`` and the
    history (``recorded``, from ``--last``), in UTC, in that order; ``BadInputError``
    naming the flag (and the file's line) otherwise."""
    moments: list[datetime] = []
    for text in given:
        try:
            moments.append(parse_restart_time(text, now).astimezone(UTC))
        except RestartTimeError as error:
            raise BadInputError(f"--restarted-at: {error}") from None
    if restarts_file:
        try:
            lines = Path(restarts_file).read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as error:
            raise BadInputError(f"--restarts-file: cannot read {restarts_file}: {error}") from None
        for number, line in enumerate(lines, start=1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            try:
                moments.append(parse_restart_time(text, now).astimezone(UTC))
            except RestartTimeError as error:
                raise BadInputError(f"--restarts-file {restarts_file}:{number}: {error}") from None
    moments.extend(moment.astimezone(UTC) for moment in recorded)
    if not moments:
        raise BadInputError(
            "give the restart time: --restarted-at TIME (repeatable) or --restarts-file FILE, "
            "or --last N (the restart history)"
        )
    return moments


def recorded_restarts(
    last: int | None, history_file: str | None, settings, namespace: str, now: datetime
) -> list[datetime]:
    """``--last N``: the namespace's last N restarts in the restart history (``--history``,
    else the ``service.history_file`` setting, else restarts.jsonl beside the reports)."""
    if last is None:
        return []
    if last < 1:
        raise BadInputError(f"--last must be a positive number of restarts, not {last}")
    service = settings.service
    path = Path(history_file) if history_file else history_path(
        service.history_file, service.reports_dir
    )
    try:
        records = read_history(path)
    except HistoryReadError as error:
        raise BadInputError(f"--last: {error}") from None
    found = last_restarts(records, namespace, last, now)
    if not found:
        raise BadInputError(
            f"--last {last}: the restart history {path} records no restart of {namespace} "
            "(serve and upgrade append to it; --history FILE reads another)"
        )
    return found


def _judge(source, rules, settings, namespace, controls, auto, windows) -> JudgedRestart:
    """Judge ``namespace`` over one restart's windows (controls found per restart with auto)."""
    label = settings.rules.namespace_label
    if auto:
        controls = controls_excluding(discover_namespaces(source, windows, label), [namespace])
    outcome = analyze_restart(
        source,
        rules,
        AnalysisRequest(
            judged=(namespace,), controls=controls, windows=windows, namespace_label=label
        ),
        budget=(
            NightBudget(settings.rules.night_budget, 1)
            if settings.rules.night_budget is not None
            else None
        ),
    )
    if outcome.source_unreachable:
        reasons = {r.reason for v in outcome.verdicts.values() for r in v.rules}
        raise UnreachableError("; ".join(sorted(reasons)))
    return JudgedRestart(
        windows, outcome.verdicts[namespace], tuple(controls), outcome.queries_sent
    )


def _write_csv(path: str, judged: list[JudgedRestart]) -> None:
    try:
        backtest_table(judged).to_csv(path, index=False)
    except OSError as error:
        raise BadInputError(f"--csv: cannot write {path}: {error.strerror or error}") from None
    print(f"table written to {path}", file=sys.stderr)


def _print_backtest(args: argparse.Namespace, namespace: str, judged: list[JudgedRestart]) -> int:
    table = backtest_table(judged)
    if structured(args.output):
        document = {
            "namespace": namespace,
            "verdict": worst_verdict(judged).value,
            "restarts": [
                {
                    "restarted_at": restart.windows.restarted_at.isoformat(),
                    "verdict": restart.verdict.verdict.value,
                    "reason": restart.verdict.reason,
                    "controls": list(restart.controls),
                }
                for restart in judged
            ],
            "table": json.loads(table.to_json(orient="records", date_format="iso")),
        }
        print_document(document, args.output)
    else:
        print(format_backtest(table, namespace))
    return VERDICT_EXIT[worst_verdict(judged)]


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
