"""``analyze`` against a real Prometheus holding backfilled Istio metrics.

Each namespace below had one restart at ``RESTART``; their traffic before and after is
designed so the verdict is known: unchanged → pass, 5xx 1 % → 5 % → fail, p99 × 1.6 → fail,
0.05 rps → inconclusive, rate −95 % → fail, no series at all → not pass.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from tests.fixtures.istio_history import (
    NamespaceHistory,
    Traffic,
    history_prometheus,
)
from tests.fixtures.prometheus_server import free_port

RESTART = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
NORMAL = Traffic(rps=20, error_share=0.01, latency_median_ms=20)

HISTORIES = [
    NamespaceHistory("steady", NORMAL, NORMAL),
    NamespaceHistory("errors", NORMAL, Traffic(rps=20, error_share=0.05, latency_median_ms=20)),
    NamespaceHistory("slow", NORMAL, Traffic(rps=20, error_share=0.01, latency_median_ms=32)),
    NamespaceHistory(
        "quiet",
        Traffic(rps=0.05, error_share=0.01),
        Traffic(rps=0.05, error_share=0.01),
    ),
    NamespaceHistory("vanish", NORMAL, Traffic(rps=1, error_share=0.01, latency_median_ms=20)),
]


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory):
    with history_prometheus(
        tmp_path_factory.mktemp("prometheus-history"), HISTORIES, RESTART
    ) as server:
        yield server


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "analyzer", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def analyze(prometheus, namespace: str, *extra: str) -> tuple[int, dict]:
    result = run_cli(
        "analyze",
        "--namespace",
        namespace,
        "--restarted-at",
        RESTART.isoformat().replace("+00:00", "Z"),
        "--prometheus-url",
        prometheus.url,
        "--rules",
        "rules",
        "--output",
        "json",
        *extra,
    )
    assert result.stdout, result.stderr
    return result.returncode, json.loads(result.stdout)


def rule(document: dict, name: str) -> dict:
    return next(item for item in document["rules"] if item["rule"] == name)


def test_unchanged_namespace_passes(prometheus):
    code, document = analyze(prometheus, "steady")
    assert (code, document["verdict"]) == (0, "pass"), document
    assert {r["verdict"] for r in document["rules"]} == {"pass"}
    assert document["windows"]["before"]["end"] == RESTART.isoformat()


def test_error_rate_from_1_to_5_percent_fails(prometheus):
    code, document = analyze(prometheus, "errors")
    assert (code, document["verdict"]) == (1, "fail")
    result = rule(document, "error-rate")
    assert result["verdict"] == "fail"
    assert 0.005 < result["before"] < 0.02 and 0.035 < result["after"] < 0.07
    assert result["evidence"]["after_requests"] > 10_000
    assert result["statistic"]["p_value"] < 0.01
    assert "error-rate" in document["reason"]
    assert rule(document, "latency-p99")["verdict"] == "pass"


def test_a_night_budget_keeps_a_strong_regression_failing_and_says_so(prometheus):
    code, document = analyze(prometheus, "errors", "--night-budget", "0.08")
    assert (code, document["verdict"]) == (1, "fail")
    assert document["queries_sent"] == 12  # judged again from the same data, not re-queried
    statistic = rule(document, "error-rate")["statistic"]
    # one namespace: the budget's share (8 % / 6 rules = 1.33 % and up) is looser than the rule's own 1 %
    assert statistic["night_alpha"] >= 0.0125
    assert statistic["alpha"] == pytest.approx(0.01)
    assert "night budget 8% over 1 namespace × 6 rules" in statistic["alpha_source"]
    assert "rule's own confidence" in statistic["alpha_source"]
    assert "night budget" in rule(document, "error-rate")["reason"]


def test_p99_up_60_percent_fails(prometheus):
    code, document = analyze(prometheus, "slow")
    assert (code, document["verdict"]) == (1, "fail")
    result = rule(document, "latency-p99")
    assert result["verdict"] == "fail"
    assert result["after"] >= 1.4 * result["before"]
    assert rule(document, "error-rate")["verdict"] == "pass"


def test_low_traffic_is_inconclusive_not_pass(prometheus):
    code, document = analyze(prometheus, "quiet")
    assert (code, document["verdict"]) == (3, "inconclusive")
    assert all(r["verdict"] == "inconclusive" for r in document["rules"])
    assert "too little evidence" in rule(document, "error-rate")["reason"]


def test_traffic_drop_fails(prometheus):
    code, document = analyze(prometheus, "vanish")
    assert (code, document["verdict"]) == (1, "fail")
    assert rule(document, "request-volume")["verdict"] == "fail"


def test_namespace_without_series_is_not_pass(prometheus):
    code, document = analyze(prometheus, "ghost")
    assert (code, document["verdict"]) == (3, "inconclusive")
    deciding = [r for r in document["rules"] if r["applies"]]
    assert deciding and all("no data" in r["reason"] for r in deciding)
    # the client-side rules (whenAbsent: skip) stand aside for a namespace with no series
    assert {r["rule"] for r in document["rules"] if not r["applies"]} == {
        "client-error-rate",
        "client-latency-p99",
    }


def test_controls_cancel_nothing_when_unchanged(prometheus):
    code, document = analyze(prometheus, "errors", "--controls", "steady,quiet")
    assert (code, document["verdict"]) == (1, "fail")
    assert rule(document, "error-rate")["controls"]["namespaces"] == ["steady"]


def test_one_query_per_rule_per_window_however_many_namespaces(prometheus):
    result = run_cli(
        "--debug",
        "analyze",
        "--namespace",
        "steady",
        "--controls",
        "auto",
        "--restarted-at",
        RESTART.isoformat(),
        "--prometheus-url",
        prometheus.url,
        "--rules",
        "rules",
        "--output",
        "json",
    )
    document = json.loads(result.stdout)
    assert len(document["controls"]) == 4
    queries = [
        json.loads(line)
        for line in result.stderr.splitlines()
        if line.startswith("{") and "prometheus range query" in line
    ]
    # 1 discovery query + 6 rules x 2 windows, each covering all 5 namespaces
    assert len(queries) == 1 + 6 * 2 == document["queries_sent"] + 1
    assert all("errors|quiet|slow|steady|vanish" in q["query"] for q in queries[1:])


def test_text_output_is_one_line_per_rule(prometheus):
    result = run_cli(
        "analyze",
        "--namespace",
        "errors",
        "--restarted-at",
        RESTART.isoformat(),
        "--prometheus-url",
        prometheus.url,
        "--rules",
        "rules",
    )
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0].startswith("errors: FAIL")
    assert any(line.strip().startswith("FAIL") and "error-rate" in line for line in lines)
    assert (
        sum(1 for line in lines if line.startswith("  ") and ":" in line and "windows" not in line)
        >= 4
    )


def test_unreachable_prometheus_exits_4():
    result = run_cli(
        "analyze",
        "--namespace",
        "steady",
        "--restarted-at",
        RESTART.isoformat(),
        "--prometheus-url",
        f"http://127.0.0.1:{free_port()}",
        "--rules",
        "rules",
    )
    assert result.returncode == 4, result.stderr
    assert "cannot reach Prometheus" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_p99_rules_own_hour_before_on_a_prometheus_holding_25_minutes(prometheus):
    # the shipped latency-p99 judges 60 minutes before the restart (spec.judge.beforeWindow);
    # this Prometheus holds 25: judged on what is there, and the result says so
    code, document = analyze(prometheus, "slow")
    assert (code, document["verdict"]) == (1, "fail")
    result = rule(document, "latency-p99")
    window = result["evidence"]["before_window"]
    assert window["start"] == (RESTART - timedelta(minutes=60)).isoformat()
    assert window["end"] == RESTART.isoformat() and window["length"] == "1h"
    covered = datetime.fromisoformat(window["covered_start"])
    assert RESTART - timedelta(minutes=26) <= covered <= RESTART - timedelta(minutes=23)
    assert "before-window partial" in result["reason"] and "of the rule's 1h" in result["reason"]
    # rules without their own window are judged on windows.before and carry none
    assert "before_window" not in rule(document, "error-rate")["evidence"]
    assert document["windows"]["before"]["start"] == (RESTART - timedelta(minutes=10)).isoformat()
