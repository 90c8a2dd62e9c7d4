"""Restart times as people write them: ISO 8601 with a timezone, or relative ("2h ago").

``analyze`` judges past restarts only: a time in the future has no after-window yet and is
refused, as is a time without a timezone (ambiguous). Pure: "now" comes in as an argument.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from analyzer.core.durations import DurationError, parse_duration

_AGO = re.compile(r"^\s*(?P<length>.+?)\s+ago\s*$", re.IGNORECASE)


class RestartTimeError(ValueError):
    """A restart time that cannot be read, or that is not in the past."""


def parse_restart_time(text: str, now: datetime) -> datetime:
    """``2026-11-27T01:30:00Z``, ``2026-11-27T02:30:00+01:00``, ``2h ago``, ``90m ago``,
    ``1h30m ago`` → an aware datetime at or before ``now``."""
    relative = _AGO.match(text)
    if relative:
        try:
            length = parse_duration(relative.group("length"))
        except DurationError as error:
            raise RestartTimeError(f"{text!r}: {error} (e.g. 2h ago, 90m ago)") from None
        if length <= timedelta(0):
            raise RestartTimeError(f"{text!r}: the length before 'ago' must be positive")
        return now - length
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise RestartTimeError(
            f"not a time: {text!r} (ISO 8601 such as 2026-11-27T01:30:00Z, or relative such "
            "as 2h ago)"
        ) from None
    if moment.tzinfo is None:
        raise RestartTimeError(f"time {text!r} has no timezone; add Z or an offset such as +01:00")
    if moment > now:
        raise RestartTimeError(
            f"{text!r} is in the future (now is {now.isoformat(timespec='seconds')}): only a "
            "past restart can be judged"
        )
    return moment
