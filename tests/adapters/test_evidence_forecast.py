"""Before a night starts, the planned namespaces too quiet to be judged are found with one
query against a real Prometheus holding backfilled Istio history (the request-volume
rule's own PromQL), and the warning says what the night will do there."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analyzer.adapters.prometheus import PrometheusSource
from analyzer.adapters.rule_files import load_rules
from analyzer.service.analysis import forecast_thin_evidence, planned_evidence_warnings
from analyzer.settings import PrometheusSettings, Settings
from tests.fixtures.istio_history import NamespaceHistory, Traffic, history_source

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)  # the end of the recorded history's before part
BUSY = Traffic(rps=20)  # 12,000 requests in 10 minutes
QUIET = Traffic(rps=0.3)  # ~180: the default rules need 500 per window
HISTORIES = [NamespaceHistory("busy", BUSY, BUSY), NamespaceHistory("quiet", QUIET, QUIET)]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    with history_source(tmp_path_factory.mktemp("evidence"), HISTORIES, NOW) as source:
        yield source


def test_one_query_finds_the_quiet_and_the_silent_namespaces(source):
    rules = load_rules([REPO / "rules"])
    found = forecast_thin_evidence(
        source, rules, ["busy", "quiet", "absent"], timedelta(minutes=10), timedelta(minutes=1),
        NOW,
    )  # fmt: skip
    assert [thin.namespace for thin in found] == ["quiet", "absent"]
    quiet = found[0]
    assert quiet.needed == 500 and 100 < quiet.requests < 300
    assert found[1].requests == 0


def test_the_warnings_follow_the_settings_and_a_dead_prometheus_only_skips_the_check(source):
    rules = load_rules([REPO / "rules"])
    settings = Settings.model_validate({"upgrade": {"on_inconclusive": "rollback"}})
    warnings = planned_evidence_warnings(source, rules, settings, ["busy", "quiet"], NOW)
    assert len(warnings) == 1
    assert warnings[0].startswith("namespace quiet served ~")
    # the shipped rules' quiet policy (pool) judges it, not on_inconclusive
    assert "in the last 10m" in warnings[0] and "quiet policy (pool)" in warnings[0]

    dead = PrometheusSource(PrometheusSettings(url="http://127.0.0.1:9", timeout="2s"))
    try:
        skipped = planned_evidence_warnings(dead, rules, settings, ["busy", "quiet"], NOW)
    finally:
        dead.close()
    assert len(skipped) == 1 and skipped[0].startswith("could not check whether the planned")
