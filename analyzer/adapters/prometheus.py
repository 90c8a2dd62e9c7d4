"""Prometheus adapter: answers range queries through prometheus-api-client.

Works with the PromQL-compatible backends large users run (Prometheus, Thanos Querier,
Mimir, VictoriaMetrics): path prefix in the URL, bearer token file, basic auth, extra
headers such as ``X-Scope-OrgID``, CA bundle or no TLS verification. Queries go as POST
(long namespace alternations do not fit a URL). Every request has a timeout and bounded
retries. Answers come back as ``core.ports.Series``; failures as typed ``MetricsError``s.
"""

from __future__ import annotations

import logging
import math
import re
import socket
import ssl
import time
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.exceptions import NameResolutionError
from urllib3.util.retry import Retry

from analyzer.core.ports import (
    MetricsError,
    MetricsQueryRejectedError,
    MetricsUnreachableError,
    Series,
)
from analyzer.errors import BadInputError
from analyzer.settings import PrometheusSettings

log = logging.getLogger("canary_analyzer.prometheus")

_RETRY_STATUSES = (429, 500, 502, 503, 504)


def _read_secret(path, what: str) -> str:
    try:
        return path.read_text().strip()
    except OSError as error:
        raise BadInputError(f"cannot read the {what} file {path}: {error.strerror}") from None


class PrometheusSource:
    """A ``MetricsSource`` backed by a PromQL HTTP API."""

    def __init__(self, settings: PrometheusSettings):
        self.url = settings.url.rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise BadInputError(
                f"Prometheus URL must start with http:// or https://: {settings.url!r}"
            )
        self.timeout = settings.timeout.total_seconds()
        self.queries_sent = 0
        headers = dict(settings.headers)
        if settings.bearer_token_file:
            token = _read_secret(settings.bearer_token_file, "bearer token")
            headers["Authorization"] = f"Bearer {token}"
        auth = None
        if settings.basic_auth_username:
            password = (
                _read_secret(settings.basic_auth_password_file, "basic-auth password")
                if settings.basic_auth_password_file
                else ""
            )
            auth = (settings.basic_auth_username, password)
        session = requests.Session()
        session.verify = str(settings.ca_bundle) if settings.ca_bundle else settings.tls_verify
        retry = Retry(
            total=settings.retries,
            connect=settings.retries,
            read=settings.retries,
            status=settings.retries,
            backoff_factor=settings.retry_backoff,
            status_forcelist=_RETRY_STATUSES,
            allowed_methods=frozenset({"GET", "POST"}),
            raise_on_status=False,
        )
        self._client = PrometheusConnect(
            url=self.url,
            headers=headers or None,
            retry=retry,
            auth=auth,
            session=session,
            timeout=self.timeout,
            method="POST",
        )

    def close(self) -> None:
        self._client.close()

    def query_range(
        self, query: str, start: datetime, end: datetime, step: timedelta
    ) -> list[Series]:
        """One range query; ``[]`` when the answer is empty."""
        began = time.monotonic()
        self.queries_sent += 1
        try:
            raw = self._client.custom_query_range(
                query,
                start_time=start,
                end_time=end,
                step=f"{step.total_seconds():g}s",
                timeout=self.timeout,
            )
        except (PrometheusApiClientException, requests.exceptions.RequestException) as error:
            raise explain(error, self.url) from None
        except ValueError as error:  # invalid JSON
            raise MetricsUnreachableError(
                f"{self.url} gave an answer that is not the PromQL API's JSON ({error}); "
                "check the URL's path prefix"
            ) from None
        series = [_to_series(item) for item in raw]
        log.debug(
            "prometheus range query",
            extra={
                "fields": {
                    "query": " ".join(query.split()),
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "step_seconds": step.total_seconds(),
                    "series": len(series),
                    "seconds": round(time.monotonic() - began, 3),
                }
            },
        )
        return series

    def ping(self) -> None:
        """Raise ``MetricsUnreachableError`` unless the API answers a trivial query."""
        try:
            self._client.custom_query("vector(1)", params={"timeout": f"{self.timeout:g}s"})
        except (PrometheusApiClientException, requests.exceptions.RequestException) as error:
            raise explain(error, self.url) from None
        except ValueError as error:  # a page that is not JSON: another server at this path
            raise MetricsUnreachableError(
                f"{self.url} gave an answer that is not the PromQL API's JSON ({error}); "
                "check the URL's path prefix"
            ) from None


_STATUS = re.compile(r"HTTP Status Code (\d+)")

#: What to check, per HTTP status a PromQL API may answer with.
_STATUS_ADVICE = {
    401: "authentication refused: check bearer_token_file or basic_auth_username and "
    "basic_auth_password_file",
    403: "authenticated but not allowed: check the credentials' permissions and, for Mimir "
    "or Cortex, the tenant header (X-Scope-OrgID in headers)",
    404: "no PromQL API at this path: check the URL's path prefix (none for Prometheus, "
    "e.g. /prometheus for Mimir, /select/0/prometheus for VictoriaMetrics cluster)",
    405: "the server does not take POST queries here: check the URL's path prefix",
    429: "rate-limited by the server: lower the query load or raise its limits",
}


def _causes(error: BaseException):
    """The error and everything it wraps (requests → urllib3 → socket/ssl)."""
    seen: set[int] = set()
    stack: list[object] = [error]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack += [current.__cause__, current.__context__, getattr(current, "reason", None)]
        stack += list(getattr(current, "args", ()))


def explain(error: BaseException, url: str) -> MetricsError:
    """A ``MetricsError`` that keeps the HTTP status and says what to check.

    Told apart: an HTTP status (404 wrong path prefix, 401/403 auth, 400/422 the query),
    a host name that does not resolve (DNS), a TLS failure (e.g. https to a plain-HTTP
    port, an unknown CA), a refused connection (nothing listens on the port), a timeout.
    """
    host = urlsplit(url).netloc
    if isinstance(error, PrometheusApiClientException):
        match = _STATUS.search(str(error))
        status = int(match.group(1)) if match else None
        body = str(error).split(") ", 1)[-1][:200] if match else str(error)[:200]
        if status in (400, 422):
            return MetricsQueryRejectedError(f"{url} rejected the query (HTTP {status}): {body}")
        advice = _STATUS_ADVICE.get(status or 0, "the server failed; check its logs")
        return MetricsUnreachableError(f"{url} answered HTTP {status}: {advice}")
    causes = list(_causes(error))
    if any(isinstance(c, ssl.SSLError | requests.exceptions.SSLError) for c in causes):
        reason = next((str(c) for c in causes if isinstance(c, ssl.SSLError)), "")
        return MetricsUnreachableError(
            f"cannot reach Prometheus at {url}: TLS with {host} failed "
            f"({reason or 'handshake'}): check http:// versus https:// in the URL, ca_bundle, "
            "and tls_verify"
        )
    if any(isinstance(c, socket.gaierror | NameResolutionError) for c in causes):
        hostname = urlsplit(url).hostname
        return MetricsUnreachableError(
            f"cannot reach Prometheus at {url}: cannot resolve the host name {hostname!r} "
            "(DNS): check the host in the URL"
        )
    if any(isinstance(c, ConnectionRefusedError) for c in causes) or any(
        "Connection refused" in str(c) for c in causes
    ):
        return MetricsUnreachableError(
            f"cannot reach Prometheus at {url}: connection refused by {host}: nothing listens "
            "there; check the port in the URL and that Prometheus runs"
        )
    if isinstance(error, ValueError):  # requests' JSONDecodeError: a page, not the API
        return MetricsUnreachableError(
            f"{url} answered with something that is not the PromQL API's JSON: check the "
            "URL's path prefix"
        )
    if isinstance(error, requests.exceptions.Timeout):
        return MetricsUnreachableError(f"{url} did not answer in time: {type(error).__name__}")
    return MetricsUnreachableError(f"cannot reach Prometheus at {url}: {type(error).__name__}")


def _to_series(item: dict) -> Series:
    points = []
    for timestamp, text in item.get("values", []):
        try:
            value = float(text)
        except (TypeError, ValueError):
            value = math.nan
        points.append((float(timestamp), value))
    return Series(labels=dict(item.get("metric", {})), points=tuple(points))
