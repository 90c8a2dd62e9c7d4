"""The alert builders, kept importable here: they live in ``core.alerts.builders`` (and the
texts they share in ``core.alerts.explain``)."""

from __future__ import annotations

from analyzer.core.alerts.builders import (
    HoldCause,
    data_source_errors,
    heartbeat,
    rollback_finished,
    rollback_started,
    rules_invalid,
    upgrade_done,
    upgrade_held,
)
from analyzer.core.alerts.explain import (
    DESCRIPTION_LIMIT,
    SERVICE_LABEL,
    explain_rule,
    explain_verdict,
)

__all__ = [
    "DESCRIPTION_LIMIT",
    "SERVICE_LABEL",
    "HoldCause",
    "data_source_errors",
    "explain_rule",
    "explain_verdict",
    "heartbeat",
    "rollback_finished",
    "rollback_started",
    "rules_invalid",
    "upgrade_done",
    "upgrade_held",
]
