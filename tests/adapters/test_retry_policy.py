"""The adapters' one retry policy keeps the backoff the settings promise.

After the n-th failure it waits ``backoff × 2^(n-1)`` (capped at ``max_backoff``), tries
``attempts`` times, stops at once on an error that is not worth retrying, and raises the
last problem when every attempt failed. The sleep is injected: no real waiting.
"""

from __future__ import annotations

import pytest

from analyzer.adapters.http_sender import HttpSender
from analyzer.adapters.retry_policy import Retryable, call_with_retries
from analyzer.core.alerts import NotificationError
from tests.fixtures.canned_http import canned_server, closed_port


def failing(times: int, then: object = "ok"):
    calls = []

    def operation():
        calls.append(1)
        if len(calls) <= times:
            raise Retryable(f"failure {len(calls)}")
        return then

    return operation, calls


def test_waits_double_and_are_capped():
    waits: list[float] = []
    operation, calls = failing(5)
    assert call_with_retries(
        operation, attempts=6, backoff=0.2, max_backoff=1.0, sleep=waits.append
    ) == "ok"
    assert waits == [0.2, 0.4, 0.8, 1.0, 1.0] and len(calls) == 6


def test_the_last_problem_is_raised_after_the_last_attempt():
    waits: list[float] = []
    retried: list[tuple[int, str]] = []
    operation, calls = failing(10)
    with pytest.raises(Retryable, match="failure 3"):
        call_with_retries(
            operation, attempts=3, backoff=0.5, sleep=waits.append,
            on_retry=lambda n, p: retried.append((n, p)),
        )  # fmt: skip
    assert waits == [0.5, 1.0] and len(calls) == 3
    assert retried == [(1, "failure 1"), (2, "failure 2")]


def test_an_error_not_worth_retrying_stops_at_once():
    calls = []

    def operation():
        calls.append(1)
        raise KeyError("refused")

    with pytest.raises(KeyError):
        call_with_retries(operation, attempts=5, backoff=0.1, sleep=lambda _s: None)
    assert len(calls) == 1


def test_notification_sink_retries_5xx_and_names_the_last_answer():
    waits: list[float] = []
    with canned_server(503, b"overloaded") as url:
        sender = HttpSender(what="Alertmanager", timeout=5, attempts=3, backoff=0.5,
                            sleep=waits.append)  # fmt: skip
        with pytest.raises(NotificationError, match=r"after 3 attempt\(s\): HTTP 503: overloaded"):
            sender.post(f"{url}/api/v2/alerts", [])
    assert waits == [0.5, 1.0]


def test_notification_sink_does_not_retry_a_4xx_and_retries_a_refused_connection():
    waits: list[float] = []
    with canned_server(400, b"bad alert") as url:
        sender = HttpSender(what="Alertmanager", timeout=5, attempts=3, backoff=0.5,
                            sleep=waits.append)  # fmt: skip
        with pytest.raises(NotificationError, match="rejected the alerts: HTTP 400"):
            sender.post(f"{url}/api/v2/alerts", [])
    assert waits == []
    with pytest.raises(NotificationError, match="unreachable or timed out"):
        sender.post(f"http://127.0.0.1:{closed_port()}/api/v2/alerts", [])
    assert waits == [0.5, 1.0]
