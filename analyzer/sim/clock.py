"""Simulated time: minutes of cluster life pass in seconds of real time.

The controller (readiness delays, progress deadlines) and the traffic generator (requests per
simulated second, drift over the simulated night) read one clock, so a scenario stays
coherent whatever its time scale. Object timestamps stay on the real wall clock, because the
clients (kubectl, the engine, Prometheus) compare them with their own clocks.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class SimClock:
    """Elapsed simulated seconds since start = real monotonic seconds × ``time_scale``."""

    def __init__(self, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError(f"time scale must be positive, got {time_scale}")
        self.time_scale = float(time_scale)
        self._started = time.monotonic()

    def elapsed(self) -> float:
        """Simulated seconds since the clock started."""
        return (time.monotonic() - self._started) * self.time_scale

    def to_real_seconds(self, simulated_seconds: float) -> float:
        """How many real seconds a simulated span lasts."""
        return simulated_seconds / self.time_scale

    def wall_now(self) -> datetime:
        """The real wall-clock time, for object timestamps."""
        return datetime.now(UTC)


class ManualClock(SimClock):
    """A clock that only moves when told to; for unit tests of the controller."""

    def __init__(self, time_scale: float = 1.0) -> None:
        super().__init__(time_scale)
        self._elapsed = 0.0
        self._lock = threading.Lock()

    def elapsed(self) -> float:
        with self._lock:
            return self._elapsed

    def advance(self, simulated_seconds: float) -> None:
        """Move simulated time forward."""
        with self._lock:
            self._elapsed += simulated_seconds


def rfc3339(moment: datetime) -> str:
    """Kubernetes' timestamp format: ``2024-05-01T01:02:03Z`` (seconds, UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(moment: datetime) -> str:
    """Kubernetes' MicroTime format, used by events.k8s.io and Leases."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
