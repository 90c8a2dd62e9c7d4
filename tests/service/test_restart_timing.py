"""When a restart is stamped and where the judged windows lie, on the in-memory mesh.

Why: a restart planned, then held (an operator pause, the next maintenance window), must be
stamped when it is applied — ``kubectl rollout restart`` stamps the time it patches
(kubectl ``pkg/polymorphichelpers/objectrestarter.go``) — and the after-window must start
``settle`` after the rollout ended and the proxies were verified, never after the restart
alone, or it judges traffic served by old proxies. States saved by the previous release
(``tests/fixtures/state_samples``) must still load and resume.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from analyzer.core.upgrade import Restart, Step, UpgradeState, WaitUntil
from analyzer.core.verdicts import Verdict
from analyzer.core.windows import RestartWindows, WindowError
from analyzer.service.clock import VirtualClock
from analyzer.service.engine import LogNotifier, MemoryStateStore, UpgradeEngine
from tests.fixtures.fakes import FakeMesh, ScriptedJudging
from tests.service.test_engine import make_plan

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "state_samples"


def _engine(mesh: FakeMesh, judging: ScriptedJudging, store: MemoryStateStore | None = None):
    clock = VirtualClock()
    engine = UpgradeEngine(mesh, store or MemoryStateStore(), judging, clock, LogNotifier())
    return engine, clock


def _canary_restart(state: UpgradeState) -> bool:
    return isinstance(state.pending, Restart) and state.pending.step_id.endswith("wave-1")


def test_a_restart_applied_later_than_planned_is_stamped_when_applied():
    mesh = FakeMesh.standard()
    judging = ScriptedJudging()
    engine, clock = _engine(mesh, judging)
    planned = []

    def pause_before_the_canary(state: UpgradeState) -> None:
        if _canary_restart(state) and not planned:
            planned.append(state.updated_at)
            clock.advance(timedelta(hours=3))  # paused by an operator, resumed 3 h later

    engine.run(make_plan(), gate=pause_before_the_canary)
    (planned_at,) = planned
    canary = next(w for w in mesh.workloads if w.namespace == "a" and w.name == "web")
    stamp = canary.annotations["at"]
    assert stamp == (planned_at + timedelta(hours=3)).isoformat()
    first = judging.actions[0]
    assert first.restarted_at == planned_at + timedelta(hours=3)
    windows = RestartWindows.around(
        first.restarted_at, first.before, first.settle, first.after, first.step,
        rolled_out_at=first.rolled_out_at,
    )  # fmt: skip
    assert windows.after.start > planned_at + timedelta(hours=3)


def test_the_after_window_starts_settle_after_the_rollout_and_verification():
    mesh = FakeMesh.standard()
    mesh.rollout_checks = 20  # 20 polls of 10 s: the rollout lasts longer than settle (2 min)
    judging = ScriptedJudging()
    engine, _ = _engine(mesh, judging)
    plan = make_plan()
    engine.run(plan)
    for action in judging.actions:
        assert action.rolled_out_at is not None
        assert action.rolled_out_at - action.restarted_at >= timedelta(seconds=200)
        windows = RestartWindows.around(
            action.restarted_at, action.before, action.settle, action.after, action.step,
            rolled_out_at=action.rolled_out_at,
        )  # fmt: skip
        assert windows.before.end == action.restarted_at
        assert windows.before.start == action.restarted_at - plan.before
        assert windows.after.start == action.rolled_out_at + plan.settle
        assert windows.after.end == action.rolled_out_at + plan.settle + plan.after
        assert windows.to_dict()["rolled_out_at"] == action.rolled_out_at.isoformat()


def test_extensions_lengthen_the_after_window_from_the_same_start():
    mesh = FakeMesh.standard()
    mesh.rollout_checks = 20
    judging = ScriptedJudging(lambda _n, call: Verdict.INCONCLUSIVE if call < 3 else Verdict.PASS)
    engine, _ = _engine(mesh, judging)
    plan = make_plan()
    engine.run(plan)
    first, second, third = judging.actions[:3]
    assert first.judged == second.judged == third.judged == ("a",)
    assert first.rolled_out_at == second.rolled_out_at == third.rolled_out_at
    assert (first.after, second.after, third.after) == (
        plan.after, plan.after * 2, plan.after * 3
    )
    starts = {
        RestartWindows.around(a.restarted_at, a.before, a.settle, a.after, a.step,
                              rolled_out_at=a.rolled_out_at).after.start
        for a in (first, second, third)
    }  # fmt: skip
    assert starts == {first.rolled_out_at + plan.settle}


def test_judging_waits_for_the_after_window_measured_from_the_rollout():
    mesh = FakeMesh.standard()
    mesh.rollout_checks = 20
    judging = ScriptedJudging()
    engine, clock = _engine(mesh, judging)
    plan = make_plan(waves=(("a",),))
    engine.run(plan)
    (action,) = judging.actions
    assert clock.now() >= action.rolled_out_at + plan.settle + plan.after + plan.evaluation_delay


def test_windows_refuse_a_rollout_end_before_the_restart():
    restarted = VirtualClock().now()
    with pytest.raises(WindowError, match="before the restart"):
        RestartWindows.around(
            restarted, timedelta(minutes=10), timedelta(minutes=2), timedelta(minutes=10),
            timedelta(minutes=1), rolled_out_at=restarted - timedelta(seconds=1),
        )  # fmt: skip


def _sample_store(name: str) -> MemoryStateStore:
    configmap = json.loads((SAMPLES / name).read_text())
    store = MemoryStateStore()
    store.document = json.loads(configmap["data"]["state"])
    return store


def test_a_state_saved_by_the_previous_release_with_a_planned_restart_resumes_stamped_now():
    store = _sample_store("pending-restart.configmap.json")
    saved = store.document["state"]["pending"]
    assert saved["kind"] == "restart" and saved["at"] == "2026-11-27T01:00:10Z"
    mesh = FakeMesh.standard()
    mesh.tag_revision["default"] = "1-15-4"  # the saved upgrade had moved the tag
    gateway = next(w for w in mesh.workloads if w.namespace == "istio-ingress")
    gateway.pod_revision = "1-15-4"
    judging = ScriptedJudging()
    engine, clock = _engine(mesh, judging, store)
    loaded = engine.load()
    assert loaded is not None and isinstance(loaded.pending, Restart)
    clock.advance(timedelta(days=1))  # resumed in the next night's window
    resumed_at = clock.now()
    state = engine.run(None)
    assert state.outcome is not None and state.outcome.value == "promoted"
    canary = next(w for w in mesh.workloads if w.namespace == "a" and w.name == "web")
    assert canary.annotations["at"] == resumed_at.isoformat()
    assert judging.actions[0].restarted_at == resumed_at


def test_a_state_saved_by_the_previous_release_while_waiting_judges_as_it_would_have():
    store = _sample_store("waiting-after-window.configmap.json")
    mesh = FakeMesh.standard()
    mesh.tag_revision["default"] = "1-15-4"
    for workload in mesh.workloads:
        if workload.namespace in ("istio-ingress", "a"):
            workload.pod_revision = "1-15-4"
    judging = ScriptedJudging()
    engine, clock = _engine(mesh, judging, store)
    loaded = engine.load()
    assert loaded is not None and isinstance(loaded.pending, WaitUntil)
    assert loaded.step is Step.WAIT and loaded.rolled_out_at is None
    clock.advance(timedelta(minutes=5))
    engine.run(None)
    first = judging.actions[0]
    assert first.restarted_at == loaded.restarted_at and first.rolled_out_at is None
    windows = RestartWindows.around(
        first.restarted_at, first.before, first.settle, first.after, first.step,
        rolled_out_at=first.rolled_out_at,
    )  # fmt: skip
    assert windows.after.start == loaded.restarted_at + loaded.plan.settle


def test_pods_the_upgrade_does_not_restart_are_reported_once_per_group_not_failed():
    mesh = FakeMesh.standard()
    mesh.rollout_checks = 3
    mesh.unmanaged = {"a": ["nightly-report-29112345-abcde (Job nightly-report): revision 1-14-6"]}
    judging = ScriptedJudging()
    engine, _ = _engine(mesh, judging)
    state = engine.run(make_plan())
    assert state.outcome is not None and state.outcome.value == "promoted"
    reported = [(n, m) for n, r, m in mesh.events if r == "NotRestarted"]
    assert len(reported) == 1, reported  # one group restarted "a"
    namespace, message = reported[0]
    assert namespace == "a" and "nightly-report-29112345-abcde" in message
    assert "1-14-6" in message
