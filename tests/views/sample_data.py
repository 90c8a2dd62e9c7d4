"""Verdicts for report tests: a rolled-back upgrade whose canary's error rate rose.

Built as the engine would hand it over (``core.upgrade.UpgradeSummary`` with typed rule
results, and a timeline of notes), with deterministic per-step series, so tests need no
cluster.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from analyzer.core.upgrade import (
    NamespaceOutlook,
    NamespaceRecord,
    Outcome,
    RuleOutlook,
    UpgradeStyle,
    UpgradeSummary,
)
from analyzer.core.verdicts import RuleResult, Verdict

RESTART = datetime(2026, 3, 2, 1, 30, tzinfo=UTC)
STEP = 60


def _series(start: datetime, minutes: int, level: float, wobble: float) -> list[list[float]]:
    t0 = start.timestamp()
    return [[t0 + STEP * (i + 1), level * (1 + wobble * math.sin(i * 1.7))] for i in range(minutes)]


def _band(start: datetime, minutes: int, low: float, high: float) -> list[list[float]]:
    t0 = start.timestamp()
    return [
        [t0 + STEP * (i + 1), low * (1 + 0.05 * math.sin(i)), high * (1 + 0.05 * math.cos(i))]
        for i in range(minutes)
    ]


def rule(
    name: str,
    namespace: str,
    verdict: str,
    before: float,
    after: float,
    reason: str,
    *,
    kind: str,
) -> RuleResult:
    """One rule result."""
    before_start = RESTART - timedelta(minutes=10)
    after_start = RESTART + timedelta(minutes=2)
    if kind == "ratio":
        statistic = {"test": "unconditional E test on error counts", "p_value": 1e-9}
        threshold = {"allowed_change": 0.005, "direction": "increase", "confidence": 0.99}
        evidence = {"before_requests": 12000, "after_requests": 11890}
    elif kind == "histogram":
        statistic = {"test": "z test on log p99 (power-law tail per bucket)", "p_value": 0.4}
        threshold = {"quantile": 0.99, "allowed_relative": 0.25, "allowed_absolute": 5,
                     "direction": "increase"}  # fmt: skip
        evidence = {"before_requests": 12000, "after_requests": 11890, "tail_events": 240}
    else:
        statistic = {"test": "Poisson rate ratio (log scale)", "p_value": 0.5}
        threshold = {"allowed_relative": 0.5, "direction": "decrease"}
        evidence = {"before_requests": 12000, "after_requests": 11890}
    return RuleResult(
        rule=name,
        namespace=namespace,
        verdict=Verdict(verdict),
        reason=reason,
        critical=True,
        dry_run=False,
        before=before,
        after=after,
        controls={"namespaces": ["checkout", "search"], "change": 0.0001},
        evidence=evidence,
        threshold=threshold,
        statistic=statistic,
        queries=(f"sum by (ns) (increase(metric_for_{name.replace('-', '_')}[1m]))",),
        series={
            "before": _series(before_start, 10, before, 0.08),
            "after": _series(after_start, 10, after, 0.08),
            "controls_before": _band(before_start, 10, before * 0.8, before * 1.25),
            "controls_after": _band(after_start, 10, before * 0.8, before * 1.25),
        },
    )


def canary_rules(namespace: str = "payments") -> list[RuleResult]:
    """The canary's rules: error rate failed (1.00% → 5.00%), latency and volume passed."""
    return [
        rule("latency-p99", namespace, "pass", 41.0, 43.5,
             "within allowed change: p99 41.0 ms → 43.5 ms (+6.1%; allowed +25% and +5 ms; p=0.4)",
             kind="histogram"),
        rule("error-rate", namespace, "fail", 0.01, 0.05,
             "regression: 1.00% → 5.00% (change net of controls +3.99 pp, allowed 0.50 pp, p=1e-09)",
             kind="ratio"),
        rule("request-volume", namespace, "pass", 20.0, 19.8,
             "within allowed change: request rate 20.00 rps → 19.80 rps (-1.0%; allowed -50%, p=0.5)",
             kind="volume"),
    ]  # fmt: skip


def rolled_back_summary() -> UpgradeSummary:
    """The summary of an upgrade rolled back on the canary's error rate."""
    return UpgradeSummary(
        outcome=Outcome.ROLLED_BACK,
        from_revision="1-14-6",
        to_revision="1-15-4",
        tag="default",
        style=UpgradeStyle.TAG,
        upgrade_id="up-20260302-0100",
        reason="payments failed: error-rate: regression: 1.00% → 5.00%",
        namespaces=(
            NamespaceRecord(name="payments", state="rolled_back", verdict=Verdict.FAIL,
                            reason="error-rate: regression: 1.00% → 5.00%",
                            rules=tuple(canary_rules())),
            NamespaceRecord(name="checkout"),
            NamespaceRecord(name="search"),
        ),
    )  # fmt: skip


def rolled_back_timeline() -> list[dict]:
    """What the engine noted, in order."""
    at = RESTART - timedelta(minutes=1)
    return [
        {"at": at, "reason": "TagMoved", "message": "tag default → 1-15-4"},
        {"at": at + timedelta(seconds=20), "reason": "GatewayRestarted",
         "namespace": "istio-system", "message": "gateway restarted on 1-15-4"},
        {"at": RESTART, "reason": "Restarted", "namespace": "payments",
         "message": "canary payments restarted (3 deployments)"},
        {"at": RESTART + timedelta(minutes=12), "reason": "VerdictFail", "namespace": "payments",
         "message": "verdict fail: error-rate: regression: 1.00% → 5.00%", "warning": True},
        {"at": RESTART + timedelta(minutes=12, seconds=1), "reason": "RollingBack",
         "message": "rolling back: payments failed error-rate", "warning": True},
        {"at": RESTART + timedelta(minutes=14), "reason": "UpgradeRolledBack",
         "message": "tag default back on 1-14-6; payments and the gateway restarted on 1-14-6"},
    ]  # fmt: skip


def planned_forecast() -> tuple[NamespaceOutlook, ...]:
    """The forecast an upgrade of payments, checkout and a quiet search was planned with."""
    return (
        NamespaceOutlook(
            namespace="payments", requests_per_window=48_000.0, requests_per_second=80.0,
            quiet=False, policy="own",
            rules=(RuleOutlook(rule="error-rate", detectable=0.0061, text="detects +0.61 pp"),
                   RuleOutlook(rule="latency-p99", detectable=0.12, text="detects +12%")),
        ),
        NamespaceOutlook(
            namespace="search", requests_per_window=72.0, requests_per_second=0.12,
            quiet=True, policy="pool",
            rules=(RuleOutlook(rule="error-rate", text="cannot judge it alone: ~72 requests "
                                                     "per window, needs 500"),),
        ),
    )  # fmt: skip
