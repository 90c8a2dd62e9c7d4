"""The engine on an in-memory mesh with a virtual clock: every branch of the upgrade.

Why: promote, roll back (verdict, rollout deadline, wrong proxy), extend then hold, and a
crash at every single cluster call followed by a resume — all in milliseconds.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from analyzer.core.alerts import AlertName
from analyzer.core.upgrade import (
    InconclusivePolicy,
    Outcome,
    Target,
    UpgradePlan,
    UpgradeStyle,
    split_waves,
    summary,
)
from analyzer.core.verdicts import Verdict
from analyzer.service.clock import VirtualClock
from analyzer.service.engine import (
    DryRunCluster,
    DryRunJudging,
    LogNotifier,
    MemoryStateStore,
    StateConflictError,
    UpgradeEngine,
)
from tests.fixtures.fakes import Crash, FakeMesh, ScriptedJudging, fail_in

NAMES = ("a", "b", "c", "d", "e", "f")
GATEWAY = Target(namespace="istio-ingress", kind="Deployment", name="istio-ingressgateway")


def make_plan(style: UpgradeStyle = UpgradeStyle.TAG, **changes) -> UpgradePlan:
    fields = dict(
        upgrade_id="u1",
        tag="default",
        from_revision="1-14-6",
        to_revision="1-15-4",
        style=style,
        gateways=(GATEWAY,),
        waves=split_waves(NAMES, [1, 2]),
        before=timedelta(minutes=10),
        settle=timedelta(minutes=2),
        after=timedelta(minutes=10),
        step=timedelta(minutes=1),
        evaluation_delay=timedelta(seconds=30),
        rollout_timeout=timedelta(minutes=5),
        poll_interval=timedelta(seconds=10),
        max_extensions=2,
    )
    fields.update(changes)
    return UpgradePlan(**fields)


def make_engine(mesh: FakeMesh, judging=None, store=None, alerts=None):
    clock = VirtualClock()
    engine = UpgradeEngine(
        cluster=mesh,
        store=store or MemoryStateStore(),
        judging=judging or ScriptedJudging(),
        clock=clock,
        notifier=LogNotifier(sent=alerts if alerts is not None else []),
    )
    return engine, clock


@pytest.mark.parametrize("style", list(UpgradeStyle))
def test_healthy_upgrade_promotes_and_restarts_everything_once(style):
    mesh = FakeMesh.standard(NAMES)
    alerts = []
    engine, _ = make_engine(mesh, alerts=alerts)
    state = engine.run(make_plan(style))
    assert state.outcome is Outcome.PROMOTED
    assert set(mesh.restarts().values()) == {1}
    assert {w.pod_revision for w in mesh.workloads} == {"1-15-4"}
    assert mesh.tag_revision["default"] == "1-15-4"
    assert all(labels["istio.io/rev"] == "default" for labels in mesh.namespaces.values())
    assert [a.name for a in alerts] == [AlertName.UPGRADE_DONE]
    assert {r["state"] for r in summary(state)["namespaces"]} == {"promoted"}


def test_controls_are_namespaces_whose_proxies_did_not_change_during_the_windows():
    mesh = FakeMesh.standard(NAMES)
    judging = ScriptedJudging()
    engine, _ = make_engine(mesh, judging)
    engine.run(make_plan())
    assert [(j.judged, j.controls) for j in judging.actions] == [
        (("a",), ("b", "c", "d", "e", "f")),
        (("b", "c"), ("a", "d", "e", "f")),  # a moved before this wave's before-window
        (("d", "e", "f"), ("a", "b", "c")),  # the last wave still has a control
    ]


def test_every_judgement_knows_how_many_namespaces_the_plan_judges():
    # the night's false-rollback budget is split over the whole plan, canary included
    judging = ScriptedJudging()
    engine, _ = make_engine(FakeMesh.standard(NAMES), judging)
    engine.run(make_plan())
    assert [j.plan_namespaces for j in judging.actions] == [len(NAMES)] * 3


def test_a_namespace_restarted_inside_the_before_window_is_no_control():
    mesh = FakeMesh.standard(NAMES)
    judging = ScriptedJudging()
    engine, _ = make_engine(mesh, judging)
    engine.run(make_plan(before=timedelta(minutes=20)))  # longer than settle + after + delay
    assert [(j.judged, j.controls) for j in judging.actions][1] == (("b", "c"), ("d", "e", "f"))


def test_the_judgement_says_when_each_moved_control_was_restarted():
    # a rule reading a longer before-window of its own leaves out the controls restarted
    # inside it (service.analysis); the engine tells it when each was restarted
    judging = ScriptedJudging()
    engine, _ = make_engine(FakeMesh.standard(NAMES), judging)
    state = engine.run(make_plan())
    first, _, last = judging.actions
    assert first.control_restarts == {}
    assert set(last.control_restarts) == {"a", "b", "c"} == set(last.controls)
    assert last.control_restarts["b"] == state.record("b").restarted_at


def test_judging_waits_for_settle_after_and_evaluation_delay():
    mesh = FakeMesh.standard(NAMES)
    judging = ScriptedJudging()
    engine, clock = make_engine(mesh, judging)
    start = clock.now()
    engine.run(make_plan(waves=(("a",),)))
    (action,) = judging.actions
    assert action.restarted_at >= start
    assert clock.now() >= action.restarted_at + timedelta(minutes=12, seconds=30)


@pytest.mark.parametrize("style", list(UpgradeStyle))
def test_fail_in_canary_rolls_back_canary_and_gateway_only(style):
    mesh = FakeMesh.standard(NAMES)
    alerts = []
    engine, _ = make_engine(mesh, ScriptedJudging(fail_in({"a"})), alerts=alerts)
    state = engine.run(make_plan(style))
    assert state.outcome is Outcome.ROLLED_BACK
    assert mesh.tag_revision["default"] == "1-14-6"
    restarts = mesh.restarts()
    assert restarts["istio-ingress/istio-ingressgateway"] == 2
    assert restarts["a/web"] == restarts["a/db"] == 2
    assert all(restarts[f"{n}/web"] == 0 for n in NAMES[1:])
    assert {w.pod_revision for w in mesh.workloads} == {"1-14-6"}
    assert all(labels["istio.io/rev"] == "default" for labels in mesh.namespaces.values())
    document = summary(state)
    canary = document["namespaces"][0]
    assert (canary["name"], canary["state"], canary["verdict"]) == ("a", "rolled_back", "fail")
    assert canary["rules"][0]["rule"] == "error-rate"
    assert document["namespaces"][1]["state"] == "pending"
    assert [a.name for a in alerts] == [AlertName.ROLLBACK_STARTED, AlertName.ROLLBACK_FINISHED]


def test_label_style_never_moves_the_tag_on_rollback():
    mesh = FakeMesh.standard(NAMES)
    engine, _ = make_engine(mesh, ScriptedJudging(fail_in({"b"})))
    state = engine.run(make_plan(UpgradeStyle.NAMESPACE_LABEL))
    assert state.outcome is Outcome.ROLLED_BACK
    assert not any(call.startswith("move_tag") for call in mesh.writes)
    restarts = mesh.restarts()
    assert [restarts[f"{n}/web"] for n in NAMES] == [2, 2, 2, 0, 0, 0]


def test_fail_in_second_wave_rolls_back_every_moved_namespace():
    mesh = FakeMesh.standard(NAMES)
    engine, _ = make_engine(mesh, ScriptedJudging(fail_in({"c"})))
    state = engine.run(make_plan())
    assert state.outcome is Outcome.ROLLED_BACK
    assert set(state.moved) == {"a", "b", "c"}
    restarts = mesh.restarts()
    assert [restarts[f"{n}/db"] for n in NAMES] == [2, 2, 2, 0, 0, 0]
    assert {w.pod_revision for w in mesh.workloads} == {"1-14-6"}
    assert "regression in c" in state.rollback_reason


def test_rollout_deadline_rolls_back():
    mesh = FakeMesh.standard(NAMES)
    mesh.never_ready = {"a"}
    judging = ScriptedJudging()
    engine, clock = make_engine(mesh, judging)
    started = clock.now()
    state = engine.run(make_plan())
    assert state.outcome is Outcome.ROLLED_BACK
    assert "rollout deadline 0:05:00 exceeded waiting for a/web" in state.rollback_reason
    assert clock.now() - started >= timedelta(minutes=5)
    assert mesh.restarts()["a/web"] == 2 and mesh.restarts()["b/web"] == 0
    assert judging.actions == []


def test_rollback_that_cannot_complete_is_failed():
    mesh = FakeMesh.standard(NAMES)
    mesh.never_ready_any = {"a"}
    engine, _ = make_engine(mesh)
    state = engine.run(make_plan())
    assert state.outcome is Outcome.FAILED
    assert "rollout deadline" in state.rollback_reason


def test_wrong_proxy_revision_rolls_back_after_deadline():
    mesh = FakeMesh.standard(NAMES)
    mesh.wrong_revision = {"a"}
    engine, _ = make_engine(mesh)
    state = engine.run(make_plan())
    assert "not on revision 1-15-4" in state.rollback_reason
    assert "a/web-0: revision 1-0-0" in state.rollback_reason


def test_inconclusive_extends_then_holds():
    mesh = FakeMesh.standard(NAMES)
    judging = ScriptedJudging(lambda _n, _i: Verdict.INCONCLUSIVE)
    alerts = []
    engine, _ = make_engine(mesh, judging, alerts=alerts)
    state = engine.run(make_plan())
    assert state.outcome is Outcome.HELD
    assert [j.after for j in judging.actions] == [timedelta(minutes=m) for m in (10, 20, 30)]
    # each extension is another look at the wave: the night budget is spent across them
    assert [(j.look, j.looks) for j in judging.actions] == [(0, 3), (1, 3), (2, 3)]
    assert mesh.restarts()["b/web"] == 0 and mesh.restarts()["a/web"] == 1
    assert [a.name for a in alerts] == [AlertName.HELD]
    assert state.record("a").state == "inconclusive"


def test_inconclusive_then_pass_promotes():
    mesh = FakeMesh.standard(NAMES)
    judging = ScriptedJudging(lambda _n, i: Verdict.INCONCLUSIVE if i == 1 else Verdict.PASS)
    engine, _ = make_engine(mesh, judging)
    assert engine.run(make_plan()).outcome is Outcome.PROMOTED
    assert len(judging.actions) == 4


def test_inconclusive_policy_rollback():
    mesh = FakeMesh.standard(NAMES)
    judging = ScriptedJudging(lambda _n, _i: Verdict.INCONCLUSIVE)
    engine, _ = make_engine(mesh, judging)
    plan = make_plan(on_inconclusive=InconclusivePolicy.ROLLBACK, max_extensions=0)
    state = engine.run(plan)
    assert state.outcome is Outcome.ROLLED_BACK
    assert "inconclusive" in state.rollback_reason


def _healthy_call_count(style: UpgradeStyle, script) -> int:
    mesh = FakeMesh.standard(NAMES)
    engine, _ = make_engine(mesh, ScriptedJudging(script))
    engine.run(make_plan(style))
    return len(mesh.calls)


@pytest.mark.parametrize("style", list(UpgradeStyle))
@pytest.mark.parametrize("script_name", ["pass", "fail-b"])
def test_crash_at_every_call_then_resume_gives_same_outcome_without_double_restart(
    style, script_name
):
    script = {"pass": fail_in(set()), "fail-b": fail_in({"b"})}[script_name]
    expected = Outcome.PROMOTED if script_name == "pass" else Outcome.ROLLED_BACK
    reference = FakeMesh.standard(NAMES)
    engine, _ = make_engine(reference, ScriptedJudging(script))
    engine.run(make_plan(style))
    expected_restarts = reference.restarts()
    for crash_at in range(1, len(reference.calls) + 1):
        mesh = FakeMesh.standard(NAMES)
        mesh.crash_at_call = crash_at
        store = MemoryStateStore()
        first, clock = make_engine(mesh, ScriptedJudging(script), store=store)
        with pytest.raises(Crash):
            first.run(make_plan(style))
        second, _ = make_engine(mesh, ScriptedJudging(script), store=store)
        second.clock = clock
        state = second.run(make_plan(style))
        assert state.outcome is expected, crash_at
        assert mesh.restarts() == expected_restarts, crash_at


def test_resume_refuses_a_different_upgrade():
    mesh = FakeMesh.standard(NAMES)
    mesh.crash_at_call = 3
    store = MemoryStateStore()
    engine, _ = make_engine(mesh, store=store)
    with pytest.raises(Crash):
        engine.run(make_plan())
    engine, _ = make_engine(mesh, store=store)
    with pytest.raises(StateConflictError):
        engine.run(make_plan(to_revision="1-16-0"))


def test_dry_run_writes_nothing_and_lists_every_write():
    mesh = FakeMesh.standard(NAMES)
    clock = VirtualClock()
    dry = DryRunCluster(mesh, clock)
    engine = UpgradeEngine(dry, MemoryStateStore(), DryRunJudging(), clock)
    state = engine.run(make_plan())
    assert state.outcome is Outcome.PROMOTED
    assert mesh.writes == []
    assert dry.writes[0] == "would point tag default at revision 1-15-4"
    assert sum(w.startswith("would restart") for w in dry.writes) == 4


def test_events_are_recorded_on_namespaces():
    mesh = FakeMesh.standard(NAMES)
    engine, _ = make_engine(mesh, ScriptedJudging(fail_in({"a"})))
    engine.run(make_plan())
    reasons = {(n, r) for n, r, _ in mesh.events}
    assert ("a", "Judged") in reasons
    assert ("a", "Restarting") in reasons


def test_pods_on_an_unexpected_revision_outside_the_plan_are_reported_and_not_controls():
    mesh = FakeMesh.standard(NAMES)
    stray = next(w for w in mesh.workloads if w.namespace == "e" and w.name == "web")
    stray.pod_revision = "1-15-4"  # rescheduled overnight after the tag moved, never judged
    judging = ScriptedJudging()
    engine, _ = make_engine(mesh, judging)
    engine.run(make_plan())
    assert "e" not in judging.actions[0].controls and "d" in judging.actions[0].controls
    assert any(ns == "e" and reason == "UnexpectedProxyRevision" for ns, reason, _ in mesh.events)
