"""Maintenance hours: when the service may act (cron start + duration, in a timezone).

Called "maintenance hours" in the code so that "window" means one thing there: the
before/after restart windows the judge compares (``core.windows``). The settings keys, the
command-line flags (``--window-cron``, ``--window-duration``) and the ``window`` field of
``/api/status`` keep their published names. Uses apscheduler's cron trigger for the calendar arithmetic (DST, day-of-week, ranges).
No cron means always open. The engine gets the current hours' end as plain data so the
pure state machine can refuse to start a wave that cannot finish before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from analyzer.core.cron import expand_macro
from analyzer.errors import BadInputError


@dataclass(frozen=True)
class HoursState:
    """Whether the maintenance hours are open at a moment, and their edges."""

    open: bool
    closes_at: datetime | None  # end of the current hours (None: always open, or closed)
    opens_at: datetime | None  # start of the next hours (None: always open)

    def to_dict(self) -> dict[str, object]:
        return {
            "open": self.open,
            "closes_at": self.closes_at.isoformat() if self.closes_at else None,
            "opens_at": self.opens_at.isoformat() if self.opens_at else None,
        }


class MaintenanceHours:
    """Recurring hours ``[cron fire, cron fire + duration)``, or always open."""

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

    def state(self, now: datetime) -> HoursState:
        """Open/closed at ``now`` (timezone-aware), with the current end or next start."""
        if self._trigger is None:
            return HoursState(open=True, closes_at=None, opens_at=None)
        # The latest start that could still cover ``now`` is at or after now - duration.
        start = self._trigger.get_next_fire_time(None, now - self.duration)
        if start is not None and start + self.duration <= now:  # the hours just ended
            start = self._trigger.get_next_fire_time(start, start + timedelta(seconds=1))
        if start is not None and start <= now < start + self.duration:
            return HoursState(open=True, closes_at=start + self.duration, opens_at=None)
        upcoming = self._trigger.get_next_fire_time(None, now)
        return HoursState(open=False, closes_at=None, opens_at=upcoming)

    def describe(self) -> str:
        if self._trigger is None:
            return "always open (no --window-cron)"
        return f"cron {self.cron!r} for {self.duration} ({self.timezone})"
