"""The backtest table: one row per rule × restart of ``analyze`` over many restarts.

A rule author replays a new or changed rule over past restarts (``--restarted-at``
repeated, ``--restarts-file``) and reads one table: per restart and rule the verdict, the
before and after values, the raw change, the change the judge decided on (net of controls,
on the rule's scale: percentage points for ratios, log ratio for quantiles and volumes)
with its standard error, and the p-value. pandas builds, prints and exports it (CSV).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from analyzer.core.verdicts import NamespaceVerdict, Verdict
from analyzer.core.windows import RestartWindows

#: The table's columns, in order (the CSV header).
COLUMNS = (
    "restarted_at",
    "namespace",
    "rule",
    "verdict",
    "namespace_verdict",
    "before",
    "after",
    "change",
    "relative_change",
    "estimate",
    "estimate_standard_error",
    "p_value",
    "before_requests",
    "after_requests",
    "controls",
    "decides",
    "reason",
)
#: the columns that hold numbers (NaN where a rule has none)
NUMERIC_COLUMNS = COLUMNS[COLUMNS.index("before") : COLUMNS.index("after_requests") + 1]
#: Columns printed on the terminal (the CSV has them all).
SHOWN = (
    "restarted_at",
    "rule",
    "verdict",
    "before",
    "after",
    "relative_change",
    "estimate",
    "estimate_standard_error",
    "p_value",
)


@dataclass(frozen=True)
class JudgedRestart:
    """One restart of the backtest: its windows, the namespace's verdict, the controls used."""

    windows: RestartWindows
    verdict: NamespaceVerdict
    controls: tuple[str, ...]
    queries_sent: int = 0


def backtest_table(judged: list[JudgedRestart]) -> pd.DataFrame:
    """One row per restart × rule (``COLUMNS``), in the order judged."""
    rows = []
    for restart in judged:
        verdict = restart.verdict
        for result in verdict.rules:
            before, after = result.before, result.after
            change = after - before if before is not None and after is not None else None
            relative = change / before if change is not None and before else None
            statistic, evidence = result.statistic or {}, result.evidence or {}
            rows.append(
                {
                    "restarted_at": restart.windows.restarted_at,
                    "namespace": result.namespace,
                    "rule": result.rule,
                    "verdict": result.verdict.value,
                    "namespace_verdict": verdict.verdict.value,
                    "before": before,
                    "after": after,
                    "change": change,
                    "relative_change": relative,
                    "estimate": statistic.get("estimate"),
                    "estimate_standard_error": statistic.get("estimate_standard_error"),
                    "p_value": statistic.get("p_value"),
                    "before_requests": evidence.get("before_requests"),
                    "after_requests": evidence.get("after_requests"),
                    "controls": ",".join(restart.controls),
                    "decides": result.decides,
                    "reason": result.reason,
                }
            )
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    for column in NUMERIC_COLUMNS:
        table[column] = pd.to_numeric(table[column], errors="coerce")
    table["restarted_at"] = pd.to_datetime(table["restarted_at"], utc=True)
    return table


def worst_verdict(judged: list[JudgedRestart]) -> Verdict:
    """The backtest's exit verdict: any FAIL, else any INCONCLUSIVE or ERROR, else PASS."""
    verdicts = {restart.verdict.verdict for restart in judged}
    if Verdict.FAIL in verdicts:
        return Verdict.FAIL
    return Verdict.INCONCLUSIVE if verdicts - {Verdict.PASS} else Verdict.PASS


def format_backtest(table: pd.DataFrame, namespace: str) -> str:
    """The table for a terminal: the ``SHOWN`` columns and a count of verdicts per rule."""
    restarts = table["restarted_at"].nunique()
    shown = table.loc[:, list(SHOWN)].copy()
    shown["restarted_at"] = shown["restarted_at"].dt.strftime("%Y-%m-%d %H:%M:%S")
    shown = shown.rename(columns={"relative_change": "change", "estimate_standard_error": "se"})
    counts = (
        table.groupby(["rule", "verdict"])
        .size()
        .unstack(fill_value=0)
        .reindex(columns=[v.value for v in Verdict], fill_value=0)
    )
    return "\n".join(
        [
            f"{namespace}: {restarts} restart(s) × {table['rule'].nunique()} rule(s)",
            shown.to_string(
                index=False,
                na_rep="-",
                formatters={
                    "change": lambda v: "-" if pd.isna(v) else f"{v:+.1%}",
                    "p_value": lambda v: "-" if pd.isna(v) else f"{v:.2g}",
                },
                float_format=lambda v: f"{v:.4g}",
            ),
            "",
            "verdicts per rule:",
            counts.to_string(),
        ]
    )
