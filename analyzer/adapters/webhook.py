"""Generic webhook notifier: Slack-compatible JSON for chat tools and simple receivers.

Why: not every team runs Alertmanager; most can take an incoming webhook (Slack, Mattermost,
Rocket.Chat, Teams connectors via a bridge, or any HTTP endpoint). The body is
``{"text": ..., "attachments": [{"color", "title", "title_link", "text", "fields", ...}]}``:
a one-line ``text`` for notifications, one attachment per alert coloured by severity (green
once resolved) holding the explained verdict. Chat tools do not deduplicate, so this sink
is sent each change once (``repeats = False``) and no heartbeat unless asked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from analyzer.adapters.http_sender import HttpNotifier, safe_url
from analyzer.core.alerts import Alert, Severity

COLORS = {
    Severity.CRITICAL: "#d00000",
    Severity.WARNING: "#f2a600",
    Severity.INFO: "#2f80ed",
    Severity.NONE: "#9e9e9e",
}
RESOLVED_COLOR = "#2eb67d"
TEXT_LIMIT = 3000  # Slack shows up to ~3000 characters of an attachment text comfortably


def _status(alert: Alert, now: datetime) -> str:
    return "resolved" if alert.is_resolved(now) else "firing"


def _attachment(alert: Alert, now: datetime) -> dict[str, Any]:
    status = _status(alert, now)
    text = alert.description
    if len(text) > TEXT_LIMIT:
        text = text[: TEXT_LIMIT - 30].rstrip() + "\n… (cut; see the report)"
    attachment: dict[str, Any] = {
        "fallback": f"[{status.upper()}:{alert.severity.value}] {alert.summary}",
        "color": RESOLVED_COLOR if status == "resolved" else COLORS[alert.severity],
        "title": f"[{status.upper()}] {alert.summary}",
        "text": f"```{text}```",
        "mrkdwn_in": ["text"],
        "fields": [
            {"title": key, "value": value, "short": True}
            for key, value in alert.all_labels().items()
            if value
        ],
        "footer": "canary-analyzer",
        "ts": int(alert.starts_at.timestamp()),
    }
    if alert.link:
        attachment["title_link"] = alert.link
    if alert.annotations.get("runbook_url"):
        attachment["fields"].append(
            {"title": "runbook", "value": alert.annotations["runbook_url"], "short": False}
        )
    return attachment


def slack_payload(alerts: Sequence[Alert], now: datetime) -> dict[str, Any]:
    """The Slack-compatible body for ``alerts`` as seen at ``now`` (firing or resolved)."""
    if len(alerts) == 1:
        alert = alerts[0]
        text = f"[{_status(alert, now).upper()}:{alert.severity.value}] {alert.summary}"
    else:
        worst = [a.severity.value for a in alerts if not a.is_resolved(now)]
        text = f"canary-analyzer: {len(alerts)} alerts" + (
            f" ({', '.join(dict.fromkeys(worst))} firing)" if worst else " (resolved)"
        )
    return {"text": text, "attachments": [_attachment(alert, now) for alert in alerts]}


class WebhookNotifier(HttpNotifier):
    """A ``Notifier`` that POSTs Slack-compatible JSON to one URL (the URL is the secret)."""

    name = "webhook"
    what = "webhook"
    repeats = False

    def __init__(
        self,
        url: str,
        timeout: float = 5.0,
        *,
        attempts: int = 3,
        backoff: float = 0.5,
        headers: Mapping[str, str] | None = None,
        heartbeats: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(
            url, timeout=timeout, attempts=attempts, backoff=backoff, headers=headers, sleep=sleep
        )
        self.heartbeats = heartbeats
        self._clock = clock

    @classmethod
    def bad_url(cls, url: str) -> str:
        return "webhook URL must start with http:// or https://"  # the URL is the secret

    @property
    def shown_url(self) -> str:
        """Scheme and host only: Slack-style webhook URLs carry their token in the path."""
        return "/".join(safe_url(self.url).split("/")[:3])

    @property
    def shown_endpoint(self) -> str:
        return self.shown_url

    def payload(self, alerts: Sequence[Alert]) -> dict[str, Any]:
        """One message holding every alert."""
        return slack_payload(alerts, self._clock())
