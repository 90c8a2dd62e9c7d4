"""Maintenance windows: when the service may act (cron start + duration, in a timezone).

Uses apscheduler's cron trigger for the calendar arithmetic (DST, day-of-week, ranges).
No cron means always open. The engine gets the current window's end as plain data so the
pure state machine can refuse to start a wave that cannot finish before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from analyzer.core.cron import expand_macro
from analyzer.errors import BadInputError


@dataclass(frozen=True)
class WindowState:
    """Whether the window is open at a moment, and its edges."""

    open: bool
    closes_at: datetime | None  # end of the current window (None: always open, or closed)
    opens_at: datetime | None  # start of the next window (None: always open)

    def to_dict(self) -> dict[str, object]:
        return {
            "open": self.open,
            "closes_at": self.closes_at.isoformat() if self.closes_at else None,
            "opens_at": self.opens_at.isoformat() if self.opens_at else None,
        }


class MaintenanceWindow:
    """A recurring window ``[cron fire, cron fire + duration)``, or always open."""

    def __init__(self, cron: str | None, duration: timedelta, timezone: str = "UTC"):
        self.cron = cron.strip() if cron else None
        self.duration = duration
        self.timezone = timezone
        self._trigger: CronTrigger | None = None
        if self.cron:
            if duration <= timedelta(0):
                raise BadInputError(f"--window-duration must be positive, got {duration}")
            try:
                self._trigger = CronTrigger.from_crontab(expand_macro(self.cron), timezone=timezone)
            except (ValueError, KeyError) as error:
                raise BadInputError(
                    f"invalid --window-cron {cron!r} or --timezone {timezone!r}: {error}"
                ) from None

    @property
    def always_open(self) -> bool:
        return self._trigger is None

    def state(self, now: datetime) -> WindowState:
        """Open/closed at ``now`` (timezone-aware), with the current end or next start."""
        if self._trigger is None:
            return WindowState(open=True, closes_at=None, opens_at=None)
        # The latest start that could still cover ``now`` is at or after now - duration.
        start = self._trigger.get_next_fire_time(None, now - self.duration)
        if start is not None and start + self.duration <= now:  # the window just ended
            start = self._trigger.get_next_fire_time(start, start + timedelta(seconds=1))
        if start is not None and start <= now < start + self.duration:
            return WindowState(open=True, closes_at=start + self.duration, opens_at=None)
        upcoming = self._trigger.get_next_fire_time(None, now)
        return WindowState(open=False, closes_at=None, opens_at=upcoming)

    def describe(self) -> str:
        if self._trigger is None:
            return "always open (no --window-cron)"
        return f"cron {self.cron!r} for {self.duration} ({self.timezone})"
