"""The soak after a promotion, as pure decisions: when the next look is due, which windows it
compares, and the rollback a person (or the opt-in automatic rollback) asks for while the old
revision is still installed.

Why pure: the service applies these (``analyzer/service/soak_judge.py``); keeping the
schedule and the window choice here lets tests walk a day of soak instantly.

Looks. The soak lasts ``soak`` after the promotion. A look judges the recent after-window
``[at - delay - window, at - delay)`` (``delay``: the evaluation delay, so the last samples
are scraped). The first look is due as soon as a whole window lies after the promotion, then
one every ``every`` until the soak ends; a look missed (the service was down, not leading)
is not made up: the next due one judges the most recent window.

Baseline. The after-window is compared with the same clock time before the upgrade: the
window shifted back by the smallest whole number of ``offset`` (24h: the night before; 168h:
the same time a week before) that puts it entirely before the upgrade started, so daily (or
weekly) seasonality cancels and no proxy of the new revision served in it.

Rollback. ``rollback_promoted`` reopens a PROMOTED state into the engine's own rollback
stage: the tag back to the old revision (in both styles: after a label-style promotion the
namespaces carry the tag's label), then what the tag reaches on the new revision is found and
every moved workload (gateways, the moved namespaces, the rest found) is restarted and
verified on the old proxy, exactly as a rollback during the night. The engine applies these
through the cluster adapter, which moves a tag as ``istioctl tag set --overwrite`` does and
restarts as ``kubectl rollout restart`` does (analyzer/adapters/kubernetes/, whose
``tags.py`` and ``restarts.py`` name the istioctl and kubectl sources they follow).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from analyzer.core.upgrade.plan import Outcome, Stage, Step
from analyzer.core.upgrade.state import Note, Transition, UpgradeState, _set
from analyzer.core.upgrade.steps import MoveTag
from analyzer.core.windows import RestartWindows, Window, WindowError


class SoakError(ValueError):
    """A soak decision that does not apply to the upgrade's state."""


def soaking(state: UpgradeState | None) -> bool:
    """The upgrade was promoted and is finished: the soak may apply to it."""
    return state is not None and state.finished and state.outcome is Outcome.PROMOTED


def look_times(promoted_at: datetime, soak: timedelta, every: timedelta, window: timedelta,
               delay: timedelta) -> list[datetime]:
    """Every look of the soak: the first once a whole window (and the delay) lies after the
    promotion, then one every ``every``, the last no later than the soak's end."""
    if every <= timedelta(0) or window <= timedelta(0):
        return []
    first = promoted_at + window + delay
    end = promoted_at + soak
    looks = []
    at = first
    while at <= end:
        looks.append(at)
        at += every
    return looks


def due_look(promoted_at: datetime, soak: timedelta, every: timedelta, window: timedelta,
             delay: timedelta, last: datetime | None, now: datetime) -> datetime | None:
    """The look to take now: the latest look time at or before ``now`` and after ``last``
    (the last look taken); None when none is due. Missed looks are not made up."""
    due = [at for at in look_times(promoted_at, soak, every, window, delay)
           if at <= now and (last is None or at > last)]
    return due[-1] if due else None


def next_look(promoted_at: datetime, soak: timedelta, every: timedelta, window: timedelta,
              delay: timedelta, now: datetime) -> datetime | None:
    """When the next look after ``now`` is due (None: the soak has no more looks)."""
    later = [at for at in look_times(promoted_at, soak, every, window, delay) if at > now]
    return later[0] if later else None


def after_window(at: datetime, window: timedelta, delay: timedelta) -> Window:
    """The recent window a look at ``at`` judges."""
    end = at - delay
    return Window(end - window, end)


def baseline_window(after: Window, upgrade_started: datetime, offset: timedelta) -> Window:
    """``after`` shifted back by the smallest whole number of ``offset`` that ends it no
    later than ``upgrade_started``: the same clock time, before any proxy moved."""
    if offset <= timedelta(0):
        raise WindowError(f"a soak baseline offset must be longer than zero, got {offset}")
    shifts = 1
    while after.end - offset * shifts > upgrade_started:
        shifts += 1
    shift = offset * shifts
    return Window(after.start - shift, after.end - shift)


def soak_windows(at: datetime, window: timedelta, delay: timedelta, step: timedelta,
                 upgrade_started: datetime, offsets: list[timedelta] | tuple[timedelta, ...]
                 ) -> list[RestartWindows]:
    """The windows a look at ``at`` may compare, in order of preference (one per baseline
    offset: the night before first, then e.g. the same time a week before)."""
    if step > window:
        raise WindowError(f"step {step} is longer than the soak window {window}")
    after = after_window(at, window, delay)
    chosen = []
    for offset in offsets:
        before = baseline_window(after, upgrade_started, offset)
        chosen.append(RestartWindows(restarted_at=before.end, before=before, after=after,
                                     step=step, rolled_out_at=None))
    return chosen


def rollback_promoted(state: UpgradeState, now: datetime, reason: str,
                      who: str = "operator") -> Transition:
    """Roll a promoted upgrade back during its soak: the engine's rollback stage, started by
    moving the tag back to the old revision (which is why the prune waits for the soak)."""
    if not soaking(state):
        outcome = state.outcome.value if state.outcome else state.stage.value
        raise SoakError(f"upgrade {state.plan.upgrade_id} is not promoted ({outcome}): "
                        "rollback applies to a promoted upgrade during its soak (a running or "
                        "held upgrade is aborted instead)")
    plan = state.plan
    why = f"rolled back after promotion by {who}: {reason}"
    state = _set(state, now, outcome=None, stage=Stage.ROLLBACK, step=Step.MOVE_TAG,
                 rollback_reason=why, rescheduled=(),
                 pending=MoveTag(tag=plan.tag, revision=plan.from_revision))
    note = Note(message=f"rolling back: {why}", reason="RollingBack", warning=True)
    return Transition(state=state, notes=(note,))
