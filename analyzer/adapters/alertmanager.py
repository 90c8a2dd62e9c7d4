"""Alertmanager notifier: sends alerts to on-call through Alertmanager's v2 API.

Why Alertmanager: large users already route, group, silence and page with it, so the
service only has to POST ``/api/v2/alerts`` and let their routing decide who is woken.
Each alert becomes ``{labels, annotations {summary, description, report_url?}, startsAt,
endsAt?, generatorURL?}``; resolving is the same labels with ``endsAt`` in the past. Firing
alerts must be sent again before Alertmanager's ``resolve_timeout`` (the dispatcher does).

Every request has a timeout and a bounded number of attempts with backoff; what is still
not accepted raises ``NotificationError``. Error messages name the URL without credentials
and never echo headers, so secrets cannot reach the logs.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from analyzer.adapters.retry_policy import Retryable, call_with_retries
from analyzer.core.alerts import Alert, NotificationError

log = logging.getLogger("canary_analyzer.alertmanager")

RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


def safe_url(url: str) -> str:
    """The URL without user:password (for messages and logs)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


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


class HttpSender:
    """POSTs JSON with a timeout, bounded attempts and exponential backoff (shared by sinks)."""

    def __init__(
        self,
        *,
        what: str,
        timeout: float,
        attempts: int,
        backoff: float,
        headers: Mapping[str, str] | None = None,
        basic_auth: tuple[str, str] | None = None,
        verify: bool | str = True,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.what = what
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self._sleep = sleep
        self._session = requests.Session()
        self._session.headers.update({"Content-Type": "application/json", **(headers or {})})
        self._session.auth = basic_auth
        self._session.verify = verify
        self._session.trust_env = False  # proxies from the environment must not see our auth

    def post(self, url: str, body: Any, shown_url: str | None = None) -> requests.Response:
        """POST ``body``; ``shown_url`` names the target in errors (default: URL sans password)."""
        shown = shown_url or safe_url(url)
        data = json.dumps(body)

        def attempt() -> requests.Response:
            try:
                response = self._session.post(url, data=data, timeout=self.timeout)
            except requests.RequestException as error:
                raise Retryable(f"{type(error).__name__} (unreachable or timed out)") from None
            if response.status_code < 300:
                return response
            text = response.text[:300].replace("\n", " ")
            problem = f"HTTP {response.status_code}: {text}"
            if response.status_code not in RETRY_STATUSES:
                raise NotificationError(f"{self.what} at {shown} rejected the alerts: {problem}")
            raise Retryable(problem)

        def on_retry(number: int, problem: str) -> None:
            log.debug(
                "notification attempt failed; retrying",
                extra={"fields": {"sink": self.what, "attempt": number, "problem": problem}},
            )

        try:
            return call_with_retries(
                attempt,
                attempts=self.attempts,
                backoff=self.backoff,
                sleep=self._sleep,
                on_retry=on_retry,
            )
        except Retryable as last:
            raise NotificationError(
                f"{self.what} at {shown} did not accept the alerts after {self.attempts} "
                f"attempt(s): {last.problem}"
            ) from None

    def close(self) -> None:
        self._session.close()


class AlertmanagerNotifier:
    """A ``Notifier`` for the Alertmanager v2 API (``POST {url}/api/v2/alerts``).

    ``url`` is the base URL (a path prefix such as ``/alertmanager`` is kept). Auth: a bearer
    token, basic auth, or any headers (multi-tenant gateways). Alertmanager deduplicates, so
    it wants firing alerts re-sent (``repeats``) and the heartbeat (``heartbeats``)."""

    name = "alertmanager"
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
        if not url.startswith(("http://", "https://")):
            raise ValueError(
                f"Alertmanager URL must start with http:// or https://: {safe_url(url)!r}"
            )
        self.url = url.rstrip("/")
        all_headers = dict(headers or {})
        if bearer_token:
            all_headers["Authorization"] = f"Bearer {bearer_token}"
        self._http = HttpSender(
            what="Alertmanager",
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

    def __repr__(self) -> str:  # never shows headers or credentials
        return f"AlertmanagerNotifier({safe_url(self.url)!r})"

    def send(self, alerts: Sequence[Alert]) -> None:
        """POST the alerts (firing or resolved) in one request; raises ``NotificationError``."""
        if not alerts:
            return
        self._http.post(self.endpoint, [alert_payload(alert) for alert in alerts])

    def close(self) -> None:
        self._http.close()
