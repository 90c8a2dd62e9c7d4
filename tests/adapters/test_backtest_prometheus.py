"""A backtest: ``analyze`` over ten recorded restarts of one namespace against a real
Prometheus holding backfilled Istio history, printing one table and writing a CSV.

``catalog`` was restarted every 30 minutes; after the 4th and the 8th restart its 5xx share
rose from 1 % to 6 % for 20 minutes (the other eight restarts changed nothing). ``billing``,
never restarted, is the control. The table must say exactly that: error-rate FAIL on those
two restarts and PASS on the eight others, one row per restart × rule.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.istio_history import NamespaceHistory, Traffic, start_history_prometheus

FIRST = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
RESTARTS = [FIRST + index * timedelta(minutes=30) for index in range(10)]
REGRESSED = {RESTARTS[3], RESTARTS[7]}
NORMAL = Traffic(rps=20, error_share=0.01, latency_median_ms=20)
BROKEN = Traffic(rps=20, error_share=0.06, latency_median_ms=20)
RULES = ("client-error-rate", "client-latency-p99", "error-rate", "latency-p50", "latency-p99",
         "request-volume")  # fmt: skip


def traffic_at(history: NamespaceHistory, moment: datetime) -> Traffic:
    if history.name == "catalog" and any(
        start <= moment < start + timedelta(minutes=20) for start in REGRESSED
    ):
        return BROKEN
    return NORMAL


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    middle = FIRST + timedelta(hours=2, minutes=15)
    server = start_history_prometheus(
        tmp_path_factory.mktemp("backtest"),
        [NamespaceHistory("catalog", NORMAL, NORMAL), NamespaceHistory("billing", NORMAL, NORMAL)],
        middle,
        span=timedelta(hours=2, minutes=45),
        traffic_at=traffic_at,
    )
    try:
        yield server
    finally:
        server.stop()


def test_a_backtest_over_ten_restarts_prints_one_table_and_writes_a_csv(prometheus, tmp_path):
    restarts = tmp_path / "restarts.txt"
    restarts.write_text(
        "# catalog's restarts, one per line\n"
        + "".join(f"{moment.isoformat()}\n" for moment in RESTARTS)
    )
    table = tmp_path / "backtest.csv"
    done = subprocess.run(
        [sys.executable, "-m", "analyzer", "analyze", "--namespace", "catalog",
         "--restarts-file", str(restarts), "--controls", "billing",
         "--prometheus-url", prometheus.url, "--rules", "rules", "--csv", str(table)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # two restarts regressed: the worst is FAIL
    out = done.stdout
    assert out.count("restarted_at") == 1  # one table, one header
    assert out.startswith("catalog: 10 restart(s) × 6 rule(s)")
    assert "verdicts per rule:" in out

    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 60
    assert {row["rule"] for row in rows} == set(RULES)
    error_rate = {
        datetime.fromisoformat(row["restarted_at"]): row for row in rows if row["rule"] == "error-rate"
    }
    assert set(error_rate) == set(RESTARTS)
    assert {moment for moment, row in error_rate.items() if row["verdict"] == "fail"} == REGRESSED
    assert {moment for moment, row in error_rate.items() if row["verdict"] == "pass"} == (
        set(RESTARTS) - REGRESSED
    )
    for moment in REGRESSED:
        row = error_rate[moment]
        assert row["namespace_verdict"] == "fail"
        # 1 % → 6 %: the estimate net of the control is about +5 percentage points
        assert 0.035 < float(row["estimate"]) < 0.065
        assert float(row["after"]) > float(row["before"])
    namespace_verdicts = {
        datetime.fromisoformat(row["restarted_at"]): row["namespace_verdict"] for row in rows
    }
    assert {m for m, v in namespace_verdicts.items() if v == "fail"} == REGRESSED


def test_relative_times_and_repeated_flags_judge_the_same_restarts(prometheus, tmp_path):
    """``--restarted-at`` repeated, one of them relative to now: the table has both."""
    ago = datetime.now(UTC) - RESTARTS[3]
    minutes = int(ago.total_seconds() // 60)
    table = tmp_path / "two.csv"
    done = subprocess.run(
        [sys.executable, "-m", "analyzer", "analyze", "--namespace", "catalog",
         "--restarted-at", RESTARTS[0].isoformat(), "--restarted-at", f"{minutes}m ago",
         "--controls", "billing", "--prometheus-url", prometheus.url, "--rules", "rules",
         "--csv", str(table)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    with table.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["rule"] == "error-rate"]
    assert [row["verdict"] for row in rows] == ["pass", "fail"]


def test_the_json_of_a_backtest_lists_each_restart_and_the_table(prometheus):
    import json

    done = subprocess.run(
        [sys.executable, "-m", "analyzer", "analyze", "--namespace", "catalog",
         "--restarted-at", RESTARTS[2].isoformat(), "--restarted-at", RESTARTS[7].isoformat(),
         "--controls", "billing", "--prometheus-url", prometheus.url, "--rules", "rules",
         "--output", "json"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    document = json.loads(done.stdout)
    assert document["verdict"] == "fail"
    assert [r["verdict"] for r in document["restarts"]] == ["pass", "fail"]
    assert len(document["table"]) == 12
    assert {row["rule"] for row in document["table"]} == set(RULES)


def test_last_ten_recorded_restarts_are_read_from_the_restart_history(prometheus, tmp_path):
    """``--last 10``: the ten restarts of ``catalog`` the history records (as ``upgrade``
    and ``serve`` append them), not ``billing``'s, each once although a verdict line
    repeats it; the same table and CSV as the restarts given by hand."""
    from analyzer.core.restart_history import RestartRecord
    from analyzer.service.history import RestartHistory

    history = RestartHistory(tmp_path / "restarts.jsonl")
    for index, moment in enumerate(RESTARTS):
        common = {"source": "upgrade", "restarted_at": moment, "upgrade_id": f"u{index}"}
        history.append([
            RestartRecord(event="restarted", namespace="catalog", **common),
            RestartRecord(event="judged", namespace="catalog", verdict="pass", **common),
            RestartRecord(event="restarted", namespace="billing",
                          **{**common, "restarted_at": moment + timedelta(minutes=5)}),
        ])  # fmt: skip
    table = tmp_path / "last.csv"
    done = subprocess.run(
        [sys.executable, "-m", "analyzer", "analyze", "--namespace", "catalog", "--last", "10",
         "--history", str(history.path), "--controls", "billing",
         "--prometheus-url", prometheus.url, "--rules", "rules", "--csv", str(table)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stdout.startswith("catalog: 10 restart(s) × 6 rule(s)")
    with table.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["rule"] == "error-rate"]
    assert [datetime.fromisoformat(row["restarted_at"]) for row in rows] == RESTARTS
    assert {datetime.fromisoformat(r["restarted_at"]) for r in rows if r["verdict"] == "fail"} == (
        REGRESSED
    )
