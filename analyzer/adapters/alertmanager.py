"""Alertmanager notifier: sends alerts to on-call through Alertmanager's v2 API.

Why Alertmanager: large users already route, group, silence and page with it, so the
service only has to POST ``/api/v2/alerts`` and let their routing decide who is woken.
Each alert becomes ``{labels, annotations {summary, description, report_url?}, startsAt,
endsAt?, generatorURL?}``; resolving is the same labels with ``endsAt`` in the past. Firing
alerts must be sent again before Alertmanager's ``resolve_timeout`` (the dispatcher does).

Delivery (timeout, bounded attempts with backoff, ``NotificationError``, messages that
name the URL without credentials and never echo headers) is ``http_sender``'s, shared with
the webhook sink.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from analyzer.adapters.http_sender import HttpNotifier
from analyzer.core.alerts import Alert


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def alert_payload(alert: Alert) -> dict[str, Any]:
    """One item of the ``POST /api/v2/alerts`` body."""
    annotations = {
        **alert.annotations,
        "summary": alert.summary,
        "description": alert.description,
    }
    if alert.link:
        annotations["report_url"] = alert.link
    item: dict[str, Any] = {
        "labels": {key: value for key, value in alert.all_labels().items() if value},
        "annotations": annotations,
        "startsAt": timestamp(alert.starts_at),
    }
    if alert.ends_at is not None:
        item["endsAt"] = timestamp(alert.ends_at)
    if alert.link and alert.link.startswith(("http://", "https://")):
        item["generatorURL"] = alert.link
    return item


class AlertmanagerNotifier(HttpNotifier):
    """A ``Notifier`` for the Alertmanager v2 API (``POST {url}/api/v2/alerts``).

    ``url`` is the base URL (a path prefix such as ``/alertmanager`` is kept). Auth: a bearer
    token, basic auth, or any headers (multi-tenant gateways). Alertmanager deduplicates, so
    it wants firing alerts re-sent (``repeats``) and the heartbeat (``heartbeats``)."""

    name = "alertmanager"
    what = "Alertmanager"
    repeats = True
    heartbeats = True

    def __init__(
        self,
        url: str,
        timeout: float = 5.0,
        *,
        attempts: int = 3,
        backoff: float = 0.5,
        headers: Mapping[str, str] | None = None,
        bearer_token: str | None = None,
        basic_auth: tuple[str, str] | None = None,
        verify: bool | str = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        all_headers = dict(headers or {})
        if bearer_token:
            all_headers["Authorization"] = f"Bearer {bearer_token}"
        super().__init__(
            url.rstrip("/"),
            timeout=timeout,
            attempts=attempts,
            backoff=backoff,
            headers=all_headers,
            basic_auth=basic_auth,
            verify=verify,
            sleep=sleep,
        )

    @property
    def endpoint(self) -> str:
        return f"{self.url}/api/v2/alerts"

    def payload(self, alerts: Sequence[Alert]) -> list[dict[str, Any]]:
        return [alert_payload(alert) for alert in alerts]
