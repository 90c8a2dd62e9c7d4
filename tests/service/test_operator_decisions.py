"""Operator verbs and maintenance windows on the engine (in-memory mesh, virtual clock).

Approve lets a held upgrade go on; abort rolls back what moved (running or held); a gate can
stop the engine before a wave that would not finish inside the maintenance window, and a
later run resumes there without restarting anything twice.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from analyzer.core.upgrade import (
    OperatorDecisionError,
    Outcome,
    abort,
    approve,
    group_fits_window,
    starts_new_group,
)
from analyzer.core.verdicts import Verdict
from tests.fixtures.fakes import FakeMesh, ScriptedJudging
from tests.service.test_engine import NAMES, make_engine, make_plan


class WindowClosed(Exception):
    pass


def held_engine():
    mesh = FakeMesh.standard(NAMES)
    judging = ScriptedJudging(lambda _n, i: Verdict.INCONCLUSIVE if i <= 3 else Verdict.PASS)
    engine, clock = make_engine(mesh, judging)
    state = engine.run(make_plan())
    assert state.outcome is Outcome.HELD
    return mesh, engine, clock


def test_approve_continues_a_held_upgrade_to_the_end():
    mesh, engine, _ = held_engine()
    state = engine.decide(lambda s, now: approve(s, now, "alice"))
    assert state.outcome is None and state.record("a").state == "promoted"
    state = engine.run(None)
    assert state.outcome is Outcome.PROMOTED
    assert set(mesh.restarts().values()) == {1}


def test_abort_of_a_held_upgrade_rolls_back_what_moved():
    mesh, engine, _ = held_engine()
    engine.decide(lambda s, now: abort(s, now, "on-call decided"))
    state = engine.run(None)
    assert state.outcome is Outcome.ROLLED_BACK
    assert "aborted by operator: on-call decided" in state.rollback_reason
    assert mesh.tag_revision["default"] == "1-14-6"
    assert mesh.restarts()["a/web"] == 2 and mesh.restarts()["b/web"] == 0


def test_verbs_that_do_not_apply_are_refused():
    mesh = FakeMesh.standard(NAMES)
    engine, _ = make_engine(mesh)
    state = engine.run(make_plan())
    with pytest.raises(OperatorDecisionError):
        approve(state, state.updated_at)
    with pytest.raises(OperatorDecisionError):
        abort(state, state.updated_at, "too late")


def test_abort_while_running_rolls_back_at_the_next_step():
    mesh = FakeMesh.standard(NAMES)
    engine, _ = make_engine(mesh)

    def stop_after_first_wave(state):
        if state.wave == 1 and starts_new_group(state):
            raise WindowClosed

    with pytest.raises(WindowClosed):
        engine.run(make_plan(), gate=stop_after_first_wave)
    engine.decide(lambda s, now: abort(s, now, "pager"))
    state = engine.run(None)
    assert state.outcome is Outcome.ROLLED_BACK
    assert mesh.restarts()["a/web"] == 2 and mesh.restarts()["b/web"] == 0


def test_a_wave_that_cannot_finish_before_the_window_closes_waits_for_the_next_window():
    mesh = FakeMesh.standard(NAMES)
    engine, clock = make_engine(mesh)
    # room for the tag move, the gateway and the canary; not for a second wave
    closes_at = clock.now() + timedelta(minutes=20)
    stops = []

    def window_gate(state):
        if not group_fits_window(
            state, clock.now(), closes_at, rollout_estimate=timedelta(minutes=2)
        ):
            stops.append(state.wave)
            raise WindowClosed

    with pytest.raises(WindowClosed):
        engine.run(make_plan(), gate=window_gate)
    assert stops == [1]
    assert mesh.restarts()["a/web"] == 1 and mesh.restarts()["b/web"] == 0
    # the next night: no window end in sight, the engine resumes where it stopped
    clock.advance(timedelta(hours=20))
    state = engine.run(None, gate=lambda s: None)
    assert state.outcome is Outcome.PROMOTED
    assert set(mesh.restarts().values()) == {1}


def test_rollback_is_never_held_back_by_the_window():
    mesh = FakeMesh.standard(NAMES)
    engine, clock = make_engine(
        mesh, ScriptedJudging(lambda n, _i: Verdict.FAIL if n == "a" else Verdict.PASS)
    )
    closes_at = clock.now() + timedelta(minutes=20)
    blocked = []

    def window_gate(state):
        if not group_fits_window(state, clock.now(), closes_at, timedelta(minutes=2)):
            blocked.append(state.stage.value)
            raise WindowClosed

    state = engine.run(make_plan(), gate=window_gate)
    assert state.outcome is Outcome.ROLLED_BACK and blocked == []
