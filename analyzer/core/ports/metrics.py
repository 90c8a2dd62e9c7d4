"""Metrics: a source that answers PromQL range queries, the series it returns, its errors.

The Prometheus adapter implements it; tests implement it in memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol


@dataclass(frozen=True)
class Series:
    """One time series of a range query: its labels and its (unix seconds, value) points."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


class MetricsError(Exception):
    """A metrics query did not give an answer; the result is ERROR, never PASS or FAIL."""


class MetricsUnreachableError(MetricsError):
    """The metrics source could not be reached, timed out, or answered with a server error."""


class MetricsQueryRejectedError(MetricsError):
    """The metrics source refused the query (bad PromQL, 4xx): a rule-author problem."""


class MetricsSource(Protocol):
    """Answers PromQL range queries. Empty answers are ``[]``, not errors ("no data" is
    judged as missing evidence); failures raise ``MetricsError`` subclasses."""

    def query_range(
        self, query: str, start: datetime, end: datetime, step: timedelta
    ) -> list[Series]: ...
