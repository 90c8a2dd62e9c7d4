"""The service's own metrics (``/metrics``), all named ``canary_analyzer_*``.

A registry per service instance (not the global one) so tests and several services in one
process never share counters. The chart's PrometheusRule alerts on these.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Info, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from analyzer import __version__
from analyzer.core.verdicts import NamespaceVerdict
from analyzer.service.memory import Phase

#: Phases the ``canary_analyzer_upgrade_phase`` gauge reports (exactly one is 1); a
#: standby reports as idle.
PHASES = tuple(phase for phase in Phase if phase is not Phase.STANDBY)


class SelfMetrics:
    """Every metric the service exports, with small methods the loop calls."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.build = Info("canary_analyzer_build", "Version of the running service.", registry=r)
        self.build.info({"version": __version__})
        self.phase = Gauge(
            "canary_analyzer_upgrade_phase",
            "1 for the current phase of the upgrade.",
            ["phase"],
            registry=r,
        )
        self.namespaces_total = Gauge(
            "canary_analyzer_namespaces_total",
            "Namespaces in the current upgrade plan.",
            registry=r,
        )
        self.namespaces_done = Gauge(
            "canary_analyzer_namespaces_done",
            "Namespaces of the current plan promoted so far.",
            registry=r,
        )
        self.verdicts = Counter(
            "canary_analyzer_verdicts",
            "Rule verdicts given, by rule and result.",
            ["rule", "result"],
            registry=r,
        )
        self.rollbacks = Counter("canary_analyzer_rollbacks", "Rollbacks started.", registry=r)
        self.last_analysis = Gauge(
            "canary_analyzer_last_successful_analysis_timestamp_seconds",
            "Unix time of the last analysis that reached a verdict without data-source errors.",
            registry=r,
        )
        self.query_errors = Counter(
            "canary_analyzer_prometheus_query_errors", "Metric queries that failed.", registry=r
        )
        self.notification_failures = Counter(
            "canary_analyzer_notification_failures",
            "Alerts a notification sink did not accept, by sink.",
            ["sink"],
            registry=r,
        )
        self.leader = Gauge(
            "canary_analyzer_leader", "1 while this replica holds the lease and acts.", registry=r
        )
        self.paused = Gauge(
            "canary_analyzer_paused", "1 while an operator has paused the service.", registry=r
        )
        self.heartbeat = Gauge(
            "canary_analyzer_heartbeat_timestamp_seconds",
            "Unix time of the last service loop.",
            registry=r,
        )
        self.set_phase(Phase.IDLE)

    def set_phase(self, phase: Phase) -> None:
        for name in PHASES:
            self.phase.labels(phase=name).set(1 if name == phase else 0)

    def record_verdicts(self, verdicts: dict[str, NamespaceVerdict], now_seconds: float) -> None:
        errors = 0
        for verdict in verdicts.values():
            for result in verdict.rules:
                self.verdicts.labels(rule=result.rule, result=result.verdict.value).inc()
                errors += result.verdict.value == "error"
        self.query_errors.inc(errors)
        if verdicts and not errors:
            self.last_analysis.set(now_seconds)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
