"""Looking at a wave: the judge action for the next look, and what happens when a look at
every step is not yet certain either way.

Why a module of its own: the plan may judge a wave once at the end of the after-window and
of each extension (``LookPolicy.FIXED``) or at every step with anytime-valid bounds
(``LookPolicy.EVERY_STEP``, ``core/sequential.py``). The second asks the judge for one more
step of after-window each time and waits a step when the answer is not yet certain; the
machine (``machine._decide``) stops the wave at the first certain FAIL or when every
namespace passes, and never looks past the last extension's end.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from analyzer.core.upgrade.groups import _after_start, _controls, _horizon, _judged_after, _ready_at
from analyzer.core.upgrade.plan import LookPolicy, Step
from analyzer.core.upgrade.state import Note, Transition, UpgradeState, _set
from analyzer.core.upgrade.steps import Judge, WaitUntil


def _judge_action(state: UpgradeState) -> Judge:
    """Judge the current wave on the after-window so far (``_judged_after``). Fixed looks
    count the extensions (the night budget is spent across them); every-step looks count
    the steps to the last extension's end, and their budget is not split over looks."""
    plan = state.plan
    assert state.restarted_at is not None
    every_step = plan.looks is LookPolicy.EVERY_STEP
    after = _judged_after(state)
    if every_step:
        look, looks = state.steps_looked, max(1, _horizon(plan) // plan.step)
    else:
        look, looks = state.extensions, 1 + plan.max_extensions
    return Judge(
        judged=plan.waves[state.wave],
        controls=(controls := _controls(state)),
        control_restarts={
            r.name: r.restarted_at
            for r in state.namespaces
            if r.name in controls and r.restarted_at is not None
        },
        restarted_at=state.restarted_at,
        rolled_out_at=state.rolled_out_at,
        before=plan.before,
        settle=plan.settle,
        after=after,
        step=plan.step,
        plan_namespaces=len(plan.namespaces),
        look=look,
        looks=looks,
        passed_before=tuple(
            r.name for r in state.namespaces if r.state == "promoted" and r.evidence in ("", "own")
        ),
        anytime=every_step,
        scheduled=not every_step or after % plan.after == timedelta(0),
    )


def _look_again(state: UpgradeState, now: datetime, unsure: list[str]) -> Transition:
    """Looking at every step: not yet certain either way, so wait one step and look again.
    Interim looks stay out of the timeline; the end of the after-window and of each
    extension say where the wave stands, as the fixed looks' extension notes do."""
    plan = state.plan
    judged = _judged_after(state)
    state = _set(
        state,
        now,
        steps_looked=state.steps_looked + 1,
        extensions=min(judged // plan.after, plan.max_extensions),
    )
    until = _ready_at(state)
    state = _set(state, now, step=Step.WAIT, pending=WaitUntil(until=until, reason="next-look"))
    if judged % plan.after != timedelta(0):
        return Transition(state=state)
    last = _after_start(state) + _horizon(plan)
    note = Note(
        message=f"not yet certain in {', '.join(unsure)} after {_span(judged)} of "
        f"after-window; judging every step until {last.isoformat()}",
        reason="WindowExtended",
    )
    return Transition(state=state, notes=(note,))


def _span(length: timedelta) -> str:
    seconds = length.total_seconds()
    return f"{seconds / 60:g} min" if seconds >= 60 else f"{seconds:g} s"
