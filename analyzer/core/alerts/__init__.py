"""Alerts for on-call: pure, built in core; the service dispatches them
(``service.alerting``) through the sinks' ``core.ports.Notifier``.

- ``alert``: the alert as plain data (``Alert``, ``AlertName``, ``Severity``);
- ``explain``: the text that explains a verdict rule by rule, and the pieces every alert uses;
- ``builders``: one function per alert (rollback started and finished, held, done, data
  source errors, invalid rules, heartbeat); those about an upgrade take its
  ``UpgradeIdentity``;
- ``upgrade``: which alert an upgrade event deserves, from the upgrade state.

Verdicts stay typed all the way (``NamespaceVerdict``, ``RuleResult``): nothing here reads
dicts (docs/architecture.md, "From plan to verdict to alert").
"""

from __future__ import annotations

from analyzer.core.alerts.alert import Alert, AlertName, Severity
from analyzer.core.ports.notifications import NotificationError, Notifier

__all__ = ["Alert", "AlertName", "NotificationError", "Notifier", "Severity"]
