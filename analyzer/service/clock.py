"""Time for the engine as an object, so tests run hours of upgrade in milliseconds.

The state machine never reads a clock; the engine asks its clock for ``now`` and to sleep
until a moment. ``RealClock`` sleeps; ``VirtualClock`` jumps (unit tests, ``--dry-run``).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep_until(self, moment: datetime) -> None: ...


class RealClock:
    """Wall-clock time (UTC); sleeps in short slices so a stop request is seen quickly."""

    def __init__(self, stop: threading.Event | None = None, slice_seconds: float = 1.0) -> None:
        self._stop = stop or threading.Event()
        self._slice = slice_seconds

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep_until(self, moment: datetime) -> None:
        while not self._stop.is_set():
            remaining = (moment - self.now()).total_seconds()
            if remaining <= 0:
                return
            self._stop.wait(min(remaining, self._slice))


class VirtualClock:
    """A clock that jumps to whatever moment is awaited; ``advance`` moves it by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
        self.sleeps = 0

    def now(self) -> datetime:
        return self._now

    def sleep_until(self, moment: datetime) -> None:
        self.sleeps += 1
        if moment > self._now:
            self._now = moment

    def advance(self, delta: timedelta) -> None:
        self._now += delta
