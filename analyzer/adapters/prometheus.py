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
import time
from datetime import datetime, timedelta

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from analyzer.core.ports import (
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
        except PrometheusApiClientException as error:
            text = str(error)
            if "HTTP Status Code 4" in text and "HTTP Status Code 429" not in text:
                raise MetricsQueryRejectedError(f"{self.url} rejected the query: {text}") from None
            raise MetricsUnreachableError(f"{self.url} answered with an error: {text}") from None
        except requests.exceptions.RequestException as error:
            raise MetricsUnreachableError(
                f"cannot reach Prometheus at {self.url}: {type(error).__name__}"
            ) from None
        except ValueError as error:  # invalid JSON
            raise MetricsUnreachableError(
                f"{self.url} gave an unreadable answer: {error}"
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
            raise MetricsUnreachableError(
                f"cannot reach Prometheus at {self.url}: {type(error).__name__}"
            ) from None


def _to_series(item: dict) -> Series:
    points = []
    for timestamp, text in item.get("values", []):
        try:
            value = float(text)
        except (TypeError, ValueError):
            value = math.nan
        points.append((float(timestamp), value))
    return Series(labels=dict(item.get("metric", {})), points=tuple(points))
