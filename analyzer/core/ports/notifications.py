"""Notifications: a sink that delivers alerts to on-call (Alertmanager, a chat webhook),
and its error. The alerts themselves are ``core.alerts.Alert``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from analyzer.core.alerts import Alert


class NotificationError(Exception):
    """A notification sink did not accept an alert (unreachable, rejected)."""


class Notifier(Protocol):
    """Delivers alerts; raises ``NotificationError`` when it could not."""

    def send(self, alerts: Sequence[Alert]) -> None: ...
