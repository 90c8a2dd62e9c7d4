"""The before and after windows around a restart, computed from the restart time.

Before is ``[t - before, t)`` where ``t`` is the restart; after is ``[r + settle, r + settle
+ after)`` where ``r`` is when the rollout ended and every restarted proxy was verified on
the new revision (``r = t`` when it is not known, e.g. ``analyze`` given a restart time). So
the after-window never holds traffic served by an old proxy, however long the rollout; the
settle period after it (cold caches, connection churn) is never judged. A rule may set its
own before-window length (``spec.judge.beforeWindow``, ``RestartWindows.with_before``); it
ends at the restart all the same, for the canary and its controls.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta


class WindowError(ValueError):
    """Window lengths that cannot make sense (zero, negative, step larger than a window)."""


@dataclass(frozen=True)
class Window:
    """A half-open time interval ``[start, end)``."""

    start: datetime
    end: datetime

    @property
    def length(self) -> timedelta:
        return self.end - self.start

    def to_dict(self) -> dict[str, str]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


@dataclass(frozen=True)
class RestartWindows:
    """The windows judged for one restart at ``restarted_at`` (rolled out at ``rolled_out_at``)."""

    restarted_at: datetime
    before: Window
    after: Window
    step: timedelta
    rolled_out_at: datetime | None = None

    @classmethod
    def around(
        cls,
        restarted_at: datetime,
        before: timedelta,
        settle: timedelta,
        after: timedelta,
        step: timedelta,
        rolled_out_at: datetime | None = None,
    ) -> RestartWindows:
        """Build the windows; raises ``WindowError`` when the lengths do not fit together."""
        if restarted_at.tzinfo is None:
            raise WindowError("restart time must carry a timezone (e.g. 2026-11-27T01:00:00Z)")
        if rolled_out_at is not None and rolled_out_at.tzinfo is None:
            raise WindowError("rollout time must carry a timezone")
        if rolled_out_at is not None and rolled_out_at < restarted_at:
            raise WindowError(f"rollout end {rolled_out_at} is before the restart {restarted_at}")
        for name, value in (("before", before), ("after", after), ("step", step)):
            if value <= timedelta(0):
                raise WindowError(f"{name} window must be longer than zero, got {value}")
        if settle < timedelta(0):
            raise WindowError(f"settle must not be negative, got {settle}")
        if step > before or step > after:
            raise WindowError(
                f"step {step} is longer than a window (before {before}, after {after})"
            )
        after_start = (rolled_out_at or restarted_at) + settle
        return cls(
            restarted_at=restarted_at,
            before=Window(restarted_at - before, restarted_at),
            after=Window(after_start, after_start + after),
            step=step,
            rolled_out_at=rolled_out_at,
        )

    def with_before(self, before: timedelta | None) -> RestartWindows:
        """The same restart with a before-window of ``before`` ending at the restart (a
        rule's own ``beforeWindow``); None: unchanged. Raises ``WindowError`` when it is not
        longer than zero or shorter than a step."""
        if before is None or before == self.before.length:
            return self
        if before <= timedelta(0):
            raise WindowError(f"before window must be longer than zero, got {before}")
        if self.step > before:
            raise WindowError(f"step {self.step} is longer than the before window {before}")
        return replace(self, before=Window(self.restarted_at - before, self.restarted_at))

    def to_dict(self) -> dict[str, object]:
        return {
            "restarted_at": self.restarted_at.isoformat(),
            **({"rolled_out_at": self.rolled_out_at.isoformat()} if self.rolled_out_at else {}),
            "before": self.before.to_dict(),
            "after": self.after.to_dict(),
            "step_seconds": self.step.total_seconds(),
        }
