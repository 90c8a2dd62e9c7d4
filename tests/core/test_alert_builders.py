"""Alert text and labels built from engine facts (pure, no servers)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from analyzer.core.alerts import AlertName, Severity
from analyzer.core.alerts import builders as build
from analyzer.core.rules import RuleProblem
from analyzer.core.upgrade import NamespaceRecord, UpgradeIdentity
from analyzer.core.verdicts import NamespaceVerdict, RuleResult, Verdict
from tests.fixtures.alerts import NOW, failing_verdict


def test_rollback_started_is_critical_with_routing_labels_and_the_explained_verdict():
    alert = build.rollback_started(
        failing_verdict("shop"),
        upgrade=UpgradeIdentity(
            "1-14-6", "1-15-4", "default", upgrade_id="u-1", link="http://canary.example/report/u-1"
        ),
        now=NOW,
        moved=("shop",),
        gateways=("istio-ingress",),
    )
    assert alert.name is AlertName.ROLLBACK_STARTED
    assert alert.severity is Severity.CRITICAL
    assert alert.labels == {
        "namespace": "shop",
        "revision": "1-15-4",
        "from_revision": "1-14-6",
        "rule": "error-rate",
        "tag": "default",
        "upgrade": "u-1",
    }
    assert (
        "\n" not in alert.summary and "shop error-rate regression: 1.00% → 5.00%" in alert.summary
    )
    text = alert.description
    for expected in (
        "before 0.01 → after 0.05",
        "before requests 12000",
        "after requests 11800",
        "allowed: change 0.005",
        "p-value: 1e-12",
        "controls: cart, search:",
        "change 0.0005",
        "Already done:",
        "Next:",
        "move tag default back to 1-14-6",
        "gateway in istio-ingress",
        "Report: http://canary.example/report/u-1",
    ):
        assert expected in text, expected
    assert "p99-latency" not in text  # only failing rules are explained
    assert alert.starts_at == NOW and alert.ends_at is None


def test_rollback_started_joins_several_failing_namespaces_and_rules():
    second = failing_verdict("cart")
    extra = RuleResult(rule="p99-latency", namespace="cart", verdict=Verdict.FAIL, reason="slow")
    second = NamespaceVerdict("cart", Verdict.FAIL, "two", rules=(*second.rules[:1], extra))
    alert = build.rollback_started(
        [failing_verdict("shop"), second],
        upgrade=UpgradeIdentity("a", "b", "default"),
        now=NOW,
    )
    assert alert.labels["namespace"] == "shop,cart"
    assert alert.labels["rule"] == "error-rate,p99-latency"


def test_a_namespace_record_gives_back_the_verdict_it_was_judged_with():
    verdict = failing_verdict("shop")
    record = NamespaceRecord(
        name="shop", state="failed", verdict=verdict.verdict, reason=verdict.reason,
        rules=verdict.rules,
    )  # fmt: skip
    assert record.judged() == verdict
    assert NamespaceRecord(name="cart").judged() is None


def test_rollback_finished_says_what_was_restored_and_whether_proxies_are_old():
    ok = build.rollback_finished(
        upgrade=UpgradeIdentity("1-14-6", "1-15-4", "default"),
        restored=("shop", "cart"),
        all_proxies_old=True,
        now=NOW,
    )
    assert ok.severity is Severity.CRITICAL and ok.name is AlertName.ROLLBACK_FINISHED
    assert "all proxies are back on 1-14-6" in ok.summary
    assert "Restored namespaces: shop, cart." in ok.description
    bad = build.rollback_finished(
        upgrade=UpgradeIdentity("1-14-6", "1-15-4", "default"),
        restored=("shop",),
        all_proxies_old=False,
        mismatched=("shop/web-1: revision 1-15-4",),
        now=NOW,
    )
    assert "NOT back on 1-14-6" in bad.summary
    assert "shop/web-1: revision 1-15-4" in bad.description


def test_held_is_a_warning_that_names_the_missing_evidence():
    thin = RuleResult(
        rule="error-rate",
        namespace="shop",
        verdict=Verdict.INCONCLUSIVE,
        reason="too little evidence: 40 requests after, need 500",
        evidence={"before_requests": 9000, "after_requests": 40, "min_requests": 500},
    )
    verdict = NamespaceVerdict("shop", Verdict.INCONCLUSIVE, "thin", rules=(thin,))
    alert = build.upgrade_held(
        [verdict],
        upgrade=UpgradeIdentity("1-14-6", "1-15-4", "default"),
        cause=build.HoldCause.INCONCLUSIVE,
        extensions=2,
        now=NOW,
    )
    assert alert.name is AlertName.HELD and alert.severity is Severity.WARNING
    assert alert.labels["reason"] == "inconclusive" and alert.labels["rule"] == "error-rate"
    assert "after 2 extension(s)" in alert.summary
    assert "What was missing:" in alert.description
    assert "after requests 40" in alert.description and "min requests 500" in alert.description


def test_data_source_errors_upgrade_done_and_rules_invalid():
    errors = build.data_source_errors(
        errors=["ConnectionError (unreachable)"], consecutive=3, now=NOW
    )
    assert errors.severity is Severity.WARNING and "3 time(s)" in errors.summary
    done = build.upgrade_done(
        upgrade=UpgradeIdentity("1-14-6", "1-15-4", "default"),
        namespaces=("a", "b"),
        now=NOW,
        started_at=NOW - timedelta(minutes=42),
    )
    assert done.severity is Severity.INFO and done.ends_at == NOW + timedelta(hours=1)
    assert "in 42m00s" in done.summary
    invalid = build.rules_invalid(
        [RuleProblem("rules/errors.yaml", 7, "spec.judge.direction: unknown value")],
        rules_dir="rules",
        kept=["error-rate"],
        now=NOW,
    )
    assert invalid.severity is Severity.WARNING and invalid.name is AlertName.RULES_INVALID
    assert "rules/errors.yaml:7: spec.judge.direction: unknown value" in invalid.description
    assert "Still in force: error-rate" in invalid.description


def test_heartbeat_always_fires_with_severity_none_and_expires_by_itself():
    beat = build.heartbeat(now=NOW, ttl=timedelta(minutes=4), instance="pod-a")
    assert beat.name.value == "CanaryAnalyzerHeartbeat"
    assert beat.severity is Severity.NONE
    assert beat.ends_at == NOW + timedelta(minutes=4)
    assert not beat.is_resolved(NOW) and beat.is_resolved(NOW + timedelta(minutes=4))
    assert beat.labels == {"service": "canary-analyzer", "instance": "pod-a"}


def test_rollback_needs_a_verdict():
    with pytest.raises(ValueError):
        build.rollback_started([], upgrade=UpgradeIdentity("a", "b", "t"), now=NOW)
