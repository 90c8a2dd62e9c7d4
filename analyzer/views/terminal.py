"""What long command-line work shows on a terminal: progress while it queries, a summary table
at the end (rich). Only on a TTY: scripts and tests read the plain text unchanged.

Progress goes to stderr (stdout carries the result); the summary table goes to stdout in
text mode. Both are off when the stream is not a terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn
from rich.table import Table
from rich.text import Text

from analyzer.core.formatting import format_value
from analyzer.core.ports import MetricsSource
from analyzer.core.verdicts import NamespaceVerdict, Verdict
from analyzer.core.windows import RestartWindows
from analyzer.views.verdict_text import own_window_lines

_STYLE = {
    Verdict.PASS: "bold green",
    Verdict.FAIL: "bold white on red",
    Verdict.INCONCLUSIVE: "bold yellow",
    Verdict.ERROR: "bold magenta",
}


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _CountingSource:
    """Forwards range queries to the real source and advances the progress bar per answer."""

    def __init__(self, source: MetricsSource, progress: Progress, task: Any) -> None:
        self._source = source
        self._progress = progress
        self._task = task

    def query_range(self, query: str, start: datetime, end: datetime, step: timedelta) -> list:
        window = f"{start:%H:%M}–{end:%H:%M}"
        self._progress.update(self._task, description=f"querying Prometheus {window}")
        try:
            return self._source.query_range(query, start, end, step)
        finally:
            self._progress.advance(self._task)


@contextmanager
def query_progress(
    source: MetricsSource, total: int, stream: TextIO | None = None
) -> Iterator[MetricsSource]:
    """A spinner and ``n/total`` count per Prometheus query on a terminal (stderr by default);
    elsewhere the source itself, untouched."""
    stream = stream if stream is not None else sys.stderr
    if not is_terminal(stream):
        yield source
        return
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=Console(file=stream),
        transient=True,
    )
    with progress:
        task = progress.add_task("querying Prometheus", total=total)
        yield _CountingSource(source, progress, task)  # type: ignore[misc]


def verdict_table(verdict: NamespaceVerdict) -> Table:
    """One row per rule: verdict, before, after, evidence and the reason."""
    from analyzer.views.charts import rule_unit

    table = Table(
        title=f"{verdict.namespace}: {verdict.verdict.value.upper()}",
        title_style=_STYLE.get(verdict.verdict, "bold"),
        caption=verdict.reason,
        show_lines=False,
        expand=False,
    )
    table.add_column("verdict", no_wrap=True)
    table.add_column("rule", no_wrap=True)
    table.add_column("before", justify="right", no_wrap=True)
    table.add_column("after", justify="right", no_wrap=True)
    table.add_column("n after", justify="right")
    table.add_column("reason")
    for result in verdict.rules:
        unit = rule_unit(result)
        marks = [
            m
            for m, on in (("dry-run", result.dry_run), ("non-critical", not result.critical))
            if on
        ]
        name = result.rule + (f" [{', '.join(marks)}]" if marks else "")
        evidence = result.evidence
        requests = evidence.get("after_requests", evidence.get("after_points"))
        table.add_row(
            Text(result.verdict.value.upper(), style=_STYLE.get(result.verdict, "")),
            name,
            format_value(result.before, unit),
            format_value(result.after, unit),
            "" if requests is None else format_value(requests),
            result.reason,
        )
    return table


def print_verdict_table(
    verdict: NamespaceVerdict,
    windows: RestartWindows | None = None,
    controls: tuple[str, ...] | list[str] = (),
    console: Console | None = None,
) -> None:
    """The final summary of ``analyze`` on a terminal: windows, controls, one row per rule."""
    console = console or Console()
    console.print(verdict_table(verdict))
    if windows is not None:
        console.print(
            f"windows: before {windows.before.start:%Y-%m-%d %H:%M:%S}–{windows.before.end:%H:%M:%S}, "
            f"after {windows.after.start:%H:%M:%S}–{windows.after.end:%H:%M:%S} UTC "
            f"(restart {windows.restarted_at:%H:%M:%S}, step {windows.step.total_seconds():g}s)",
            style="dim",
            highlight=False,
        )
    for text in own_window_lines(verdict):
        console.print(f"window: {text}", style="dim", highlight=False)
    if controls:
        console.print(f"controls: {', '.join(controls)}", style="dim", highlight=False)
