"""The one retry policy of the adapters: bounded attempts, exponential backoff, with tenacity.

Why: the Kubernetes adapter and the notification sinks each retried by hand; the rule is
the same — try, and after the n-th failure wait ``backoff × 2^(n-1)`` seconds (capped at
``max_backoff``), up to ``attempts`` tries. ``tenacity`` does exactly that with its
``wait_exponential`` and ``stop_after_attempt``, and takes the ``sleep`` the tests inject.
(``stamina`` was weighed: it wraps tenacity with jittered waits and its own
instrumentation, which would change the backoff the operator reads in the settings.)
The Prometheus adapter keeps urllib3's ``Retry`` inside ``requests``, which
prometheus-api-client configures for it.

An attempt that may be retried raises ``Retryable(problem)``; anything else stops at once.
When the attempts run out, the last ``Retryable`` is raised for the caller to turn into
its own error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

T = TypeVar("T")


class Retryable(Exception):
    """An attempt failed in a way worth another try; ``problem`` says how."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def call_with_retries(
    operation: Callable[[], T],
    *,
    attempts: int,
    backoff: float,
    max_backoff: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[int, str], None] | None = None,
) -> T:
    """Run ``operation`` up to ``attempts`` times; ``on_retry(attempt, problem)`` before
    each wait. Raises the last ``Retryable`` when every attempt failed."""

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None and state.outcome is not None:
            error = state.outcome.exception()
            on_retry(state.attempt_number, getattr(error, "problem", str(error)))

    wait = (
        wait_exponential(multiplier=backoff, max=max_backoff)
        if max_backoff is not None
        else wait_exponential(multiplier=backoff)
    )
    retrying = Retrying(
        stop=stop_after_attempt(attempts),
        wait=wait,
        retry=retry_if_exception_type(Retryable),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(operation)
