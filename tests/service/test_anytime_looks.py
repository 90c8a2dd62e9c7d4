"""Judging at every step (``upgrade.looks: every-step``): the engine looks again each step
and stops as soon as the answer is certain either way.

Why: with fixed windows a gross regression waits for the whole after-window and a healthy
wave for its end too. Looking at every step must stop early both ways, never look past the
last extension's end, keep interim looks out of the timeline, and ask the judge for
anytime-valid bounds (``core/sequential.py``) whose night budget is not split over looks.
"""

from __future__ import annotations

from datetime import timedelta

from analyzer.core.multiplicity import NightBudget
from analyzer.core.upgrade import LookPolicy, Outcome, UpgradeState
from analyzer.core.verdicts import Verdict
from analyzer.service.analysis import AnalysisRequest, analyze_restart
from tests.core.test_night_budget import RULES, TRAFFIC, WINDOWS, CountsSource
from tests.fixtures.fakes import FakeMesh, ScriptedJudging, fail_in
from tests.service.test_engine import NAMES, make_engine, make_plan

EVERY_STEP = {"looks": LookPolicy.EVERY_STEP}


def test_a_regression_fails_at_the_look_that_is_certain_not_at_the_windows_end():
    mesh = FakeMesh.standard(NAMES)
    # inconclusive for two looks, then certain: the canary fails at its third step
    judging = ScriptedJudging(lambda _n, i: Verdict.FAIL if i == 3 else Verdict.INCONCLUSIVE)
    engine, clock = make_engine(mesh, judging)
    state = engine.run(make_plan(**EVERY_STEP))
    assert state.outcome is Outcome.ROLLED_BACK
    assert [j.after for j in judging.actions] == [timedelta(minutes=m) for m in (1, 2, 3)]
    assert all(j.anytime for j in judging.actions)
    first = judging.actions[0]
    # three steps of after-window, not ten: settle 2 min + 3 min + evaluation delay 30 s
    assert clock.now() - first.restarted_at < timedelta(minutes=10)
    assert mesh.restarts()["b/web"] == 0


def test_a_healthy_wave_passes_as_soon_as_it_is_certain_and_the_next_wave_goes_on():
    mesh = FakeMesh.standard(NAMES)
    judging = ScriptedJudging(lambda _n, i: Verdict.INCONCLUSIVE if i == 1 else Verdict.PASS)
    engine, _ = make_engine(mesh, judging)
    assert engine.run(make_plan(**EVERY_STEP)).outcome is Outcome.PROMOTED
    # canary: two looks (1 and 2 min); each later wave passes at its first step
    assert [(j.judged, j.after) for j in judging.actions] == [
        (("a",), timedelta(minutes=1)),
        (("a",), timedelta(minutes=2)),
        (("b", "c"), timedelta(minutes=1)),
        (("d", "e", "f"), timedelta(minutes=1)),
    ]


def test_looks_stop_at_the_last_extensions_end_then_the_inconclusive_policy_applies():
    mesh = FakeMesh.standard(NAMES)
    judging = ScriptedJudging(lambda _n, _i: Verdict.INCONCLUSIVE)
    alerts = []
    engine, _ = make_engine(mesh, judging, alerts=alerts)
    told = []
    engine.observer = lambda _state, notes, _pending: told.extend(notes)  # what serve wires
    state = engine.run(make_plan(**EVERY_STEP))  # after 10 min, 2 extensions, step 1 min
    assert state.outcome is Outcome.HELD
    assert [j.after for j in judging.actions] == [timedelta(minutes=m) for m in range(1, 31)]
    # the fixed judge's PASS counts at the window's and each extension's end only
    assert [j.after for j in judging.actions if j.scheduled] == [
        timedelta(minutes=m) for m in (10, 20, 30)
    ]
    assert any("inconclusive at every step" in note.message for note in told)
    assert state.record("a").state == "inconclusive"
    # interim looks stay out of the timeline: two notes at the window's and the first
    # extension's end, not one per step
    extended = [note.message for note in told if note.reason == "WindowExtended"]
    assert len(extended) == 2, extended


def test_fixed_looks_are_unchanged_by_default():
    judging = ScriptedJudging(fail_in({"a"}))
    engine, _ = make_engine(FakeMesh.standard(NAMES), judging)
    assert make_plan().looks is LookPolicy.FIXED
    engine.run(make_plan())
    assert [(j.after, j.anytime) for j in judging.actions] == [(timedelta(minutes=10), False)]


def test_a_state_saved_before_every_step_looks_existed_loads_with_fixed_looks():
    judging = ScriptedJudging()
    engine, _ = make_engine(FakeMesh.standard(NAMES), judging)
    state = engine.run(make_plan())
    document = state.model_dump(mode="json")
    document["plan"].pop("looks")
    document.pop("steps_looked")
    loaded = UpgradeState.model_validate(document)
    assert loaded.plan.looks is LookPolicy.FIXED and loaded.steps_looked == 0


def test_anytime_analysis_judges_with_always_valid_bounds_and_an_unsplit_budget():
    request = AnalysisRequest(
        judged=tuple(TRAFFIC), controls=(), windows=WINDOWS, anytime=True, scheduled=False
    )
    budget = NightBudget(0.05, 25, anytime=True)
    outcome = analyze_restart(CountsSource(TRAFFIC), RULES, request, budget=budget)
    strong = next(r for r in outcome.verdicts["strong"].rules if r.rule == "error-rate")
    assert strong.verdict is Verdict.FAIL
    assert "sequential" in strong.statistic
    assert strong.statistic["p_value"] == strong.statistic["sequential"]["always_valid_p_value"]
    assert "every step anytime-valid" in strong.statistic["alpha_source"]
    assert "look 1 of" not in strong.statistic["alpha_source"]
