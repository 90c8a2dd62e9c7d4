"""The one HTTP sender of the notification sinks (Alertmanager, webhook).

Why one: a sink that pages on-call must behave the same whichever it is — a session that
ignores environment proxies (they must not see our credentials), a timeout on every
request, a bounded number of attempts with exponential backoff on the statuses worth
retrying, and errors that name the target without credentials and never echo headers.
``HttpNotifier`` is the set-up both sinks share (the URL check, the sender, ``close``);
each sink says only where it posts and what body it sends.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from analyzer.adapters.retry_policy import Retryable, call_with_retries
from analyzer.core.alerts import Alert, NotificationError

log = logging.getLogger("canary_analyzer.notify")

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


class HttpNotifier:
    """A ``Notifier`` that POSTs one JSON body per batch of alerts to one URL.

    Subclasses give ``payload(alerts)`` and, where it differs from the URL, the
    ``endpoint`` posted to; where the URL itself is the secret, ``shown_url`` (what
    ``repr`` names), ``shown_endpoint`` (what errors name) and ``bad_url`` say less.
    ``send`` and ``close`` are shared."""

    name = "http"
    what = "HTTP receiver"  # how errors name the sink

    def __init__(self, url: str, **sending: Any) -> None:
        """``sending``: the keyword arguments of ``HttpSender`` but ``what`` (the class's)."""
        if not url.startswith(("http://", "https://")):
            raise ValueError(self.bad_url(url))
        self.url = url
        self._http = HttpSender(what=self.what, **sending)

    @classmethod
    def bad_url(cls, url: str) -> str:
        """The message for a URL that is not HTTP(S)."""
        return f"{cls.what} URL must start with http:// or https://: {safe_url(url)!r}"

    @property
    def endpoint(self) -> str:
        return self.url

    @property
    def shown_url(self) -> str:
        return safe_url(self.url)

    @property
    def shown_endpoint(self) -> str:
        return safe_url(self.endpoint)

    def payload(self, alerts: Sequence[Alert]) -> Any:
        raise NotImplementedError

    def __repr__(self) -> str:  # never shows headers or credentials
        return f"{type(self).__name__}({self.shown_url!r})"

    def send(self, alerts: Sequence[Alert]) -> None:
        """POST the alerts (firing or resolved) in one request; raises ``NotificationError``."""
        if not alerts:
            return
        self._http.post(self.endpoint, self.payload(alerts), self.shown_endpoint)

    def close(self) -> None:
        self._http.close()
