"""An alert for on-call, as plain data: what happened, how bad, where, the explained verdict.

An alert is resolved by sending it again with ``ends_at`` set; its identity is its name
plus labels. Sinks deliver it through ``core.ports.Notifier``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How urgently on-call must look: critical pages, warning tickets, info informs."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"
    NONE = "none"  # never pages: the heartbeat (dead-man's switch) an outside monitor expects


class AlertName(StrEnum):
    """Every alert the product sends (docs/oncall.md explains each)."""

    ROLLBACK_STARTED = "CanaryAnalyzerRollbackStarted"
    ROLLBACK_FINISHED = "CanaryAnalyzerRollbackFinished"
    HELD = "CanaryAnalyzerUpgradeHeld"
    DATA_SOURCE_ERRORS = "CanaryAnalyzerDataSourceErrors"
    UPGRADE_DONE = "CanaryAnalyzerUpgradeDone"
    RULES_INVALID = "CanaryAnalyzerRulesInvalid"
    HEARTBEAT = "CanaryAnalyzerHeartbeat"
    PRUNE_READY = "CanaryAnalyzerPruneReady"
    SOAK_REGRESSION = "CanaryAnalyzerSoakRegression"


@dataclass(frozen=True)
class Alert:
    """One alert: what happened, how bad, where, and the explained verdict."""

    name: AlertName
    severity: Severity
    summary: str
    description: str
    starts_at: datetime
    labels: Mapping[str, str] = field(default_factory=dict)
    ends_at: datetime | None = None
    link: str | None = None
    #: extra annotations sent with the alert (e.g. ``runbook_url``); not part of its identity
    annotations: Mapping[str, str] = field(default_factory=dict)

    def identity(self) -> tuple[str, tuple[tuple[str, str], ...]]:
        """What makes two alerts the same alert (for resolving)."""
        return (self.name.value, tuple(sorted(self.labels.items())))

    def all_labels(self) -> dict[str, str]:
        """Labels as sent: alertname and severity first, then the alert's own."""
        return {"alertname": self.name.value, "severity": self.severity.value, **self.labels}

    def resolved(self, at: datetime) -> Alert:
        """The same alert (same identity) marked as over at ``at``."""
        return replace(self, ends_at=at)

    def is_resolved(self, now: datetime) -> bool:
        """Whether ``ends_at`` has passed: sinks show it as resolved, not firing."""
        return self.ends_at is not None and self.ends_at <= now

    def to_json(self) -> dict[str, Any]:
        """The alert as JSON-ready data (times ISO 8601): the service keeps a firing alert
        in its state so that a new leader can take it over and resolve it."""
        return {
            "name": self.name.value,
            "severity": self.severity.value,
            "summary": self.summary,
            "description": self.description,
            "starts_at": self.starts_at.isoformat(),
            "labels": dict(self.labels),
            "ends_at": self.ends_at.isoformat() if self.ends_at else None,
            "link": self.link,
            "annotations": dict(self.annotations),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Alert:
        """The inverse of ``to_json``; ``KeyError`` or ``ValueError`` when not an alert."""
        ends_at = data.get("ends_at")
        return cls(
            name=AlertName(data["name"]),
            severity=Severity(data["severity"]),
            summary=str(data["summary"]),
            description=str(data["description"]),
            starts_at=datetime.fromisoformat(data["starts_at"]),
            labels={str(k): str(v) for k, v in dict(data.get("labels") or {}).items()},
            ends_at=datetime.fromisoformat(ends_at) if ends_at else None,
            link=data.get("link"),
            annotations={str(k): str(v) for k, v in dict(data.get("annotations") or {}).items()},
        )
