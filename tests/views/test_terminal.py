"""The terminal summary of ``analyze``: a table with values, only when writing to a TTY."""

from __future__ import annotations

import io
from datetime import timedelta

from rich.console import Console

from analyzer.core.verdicts import combine_rule_results
from analyzer.core.windows import RestartWindows
from analyzer.views.terminal import is_terminal, print_verdict_table, query_progress
from tests.views.sample_data import RESTART, canary_rules


def _verdict():
    return combine_rule_results("payments", tuple(canary_rules()))


def test_summary_table_shows_values_and_reasons():
    console = Console(record=True, width=220, force_terminal=True)
    windows = RestartWindows.around(
        RESTART,
        before=timedelta(minutes=10),
        settle=timedelta(minutes=2),
        after=timedelta(minutes=10),
        step=timedelta(minutes=1),
    )
    print_verdict_table(_verdict(), windows, ["checkout", "search"], console=console)
    text = console.export_text()
    assert "payments: FAIL" in text
    row = next(line for line in text.splitlines() if "error-rate" in line and "FAIL" in line)
    assert "1.00%" in row and "5.00%" in row and "11,890" in row
    assert "41.0 ms" in text and "20.00 rps" in text
    assert "controls: checkout, search" in text
    assert "restart 01:30:00" in text


class _Source:
    def query_range(self, query, start, end, step):
        return []


def test_no_progress_wrapper_off_a_terminal():
    source = _Source()
    stream = io.StringIO()
    assert not is_terminal(stream)
    with query_progress(source, 4, stream=stream) as tracked:
        assert tracked is source
    assert stream.getvalue() == ""
