"""Shadow mode's decisions (``core.shadow``): which restarts happened on their own, when they
are due, which namespaces may serve as controls.

A restart is what ``kubectl rollout restart`` does (the pod template's
``kubectl.kubernetes.io/restartedAt`` stamped with the time, kubectl
``pkg/polymorphichelpers/objectrestarter.go``) or any template change (a generation bump).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from analyzer.core.shadow import (
    WOULD,
    ShadowWindows,
    WorkloadTemplate,
    detect_restarts,
    due_restarts,
    merge_restart,
    shadow_controls,
)
from analyzer.core.verdicts import Verdict

T0 = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)
WINDOWS = ShadowWindows(timedelta(minutes=30), timedelta(minutes=2), timedelta(minutes=10),
                        timedelta(seconds=30))  # fmt: skip


def w(namespace, name, generation=1, restarted_at=None, kind="Deployment"):
    return WorkloadTemplate(namespace, kind, name, generation, restarted_at)


def keyed(workloads):
    return {x.key: x for x in workloads}


def test_the_first_look_only_learns_and_an_unchanged_cluster_has_no_restart():
    current = [w("a", "web"), w("b", "api")]
    assert detect_restarts(None, current, T0) == []
    assert detect_restarts(keyed(current), current, T0) == []


def test_kubectls_stamp_times_the_restart_and_one_namespace_makes_one_restart():
    before = [w("a", "web"), w("a", "worker"), w("b", "api")]
    stamp = T0 - timedelta(seconds=20)
    after = [w("a", "web", 2, stamp), w("a", "worker", 2, stamp + timedelta(seconds=1)),
             w("b", "api")]  # fmt: skip
    (seen,) = detect_restarts(keyed(before), after, T0)
    assert seen.namespace == "a"
    assert seen.restarted_at == stamp  # the earliest stamp
    assert seen.workloads == ("Deployment/web", "Deployment/worker")
    assert seen.cause == "restartedAt"


def test_a_template_change_without_a_stamp_is_timed_at_the_pass_that_saw_it():
    (seen,) = detect_restarts(keyed([w("a", "web", 3)]), [w("a", "web", 4)], T0)
    assert (seen.restarted_at, seen.cause) == (T0, "template")
    # a stamp in the future (a skewed clock) is not believed either
    (skewed,) = detect_restarts(
        keyed([w("a", "web")]), [w("a", "web", 2, T0 + timedelta(hours=1))], T0
    )
    assert skewed.restarted_at == T0


def test_a_new_workload_is_a_deployment_not_a_restart():
    assert detect_restarts(keyed([w("a", "web")]), [w("a", "web"), w("a", "new", 1, T0)], T0) == []


def test_a_restart_is_due_when_its_after_window_has_ended_and_again_restarts_start_over():
    first = detect_restarts(keyed([w("a", "web")]), [w("a", "web", 2, T0)], T0)[0]
    pending = merge_restart([], first, WINDOWS)
    assert pending[0].due == T0 + timedelta(minutes=12)
    assert due_restarts(pending, T0 + timedelta(minutes=11))[0] == []
    later = detect_restarts(
        keyed([w("a", "web", 2, T0)]),
        [w("a", "web", 3, T0 + timedelta(minutes=5))],
        T0 + timedelta(minutes=5),
    )[0]
    pending = merge_restart(pending, later, WINDOWS)
    assert [p.seen.restarted_at for p in pending] == [T0 + timedelta(minutes=5)]
    due, waiting = due_restarts(pending, T0 + timedelta(minutes=17))
    assert [p.seen.namespace for p in due] == ["a"] and waiting == []


def test_controls_leave_out_namespaces_restarted_within_the_windows():
    a = detect_restarts(keyed([w("a", "x")]), [w("a", "x", 2, T0)], T0)[0]
    b = detect_restarts(keyed([w("b", "x")]), [w("b", "x", 2, T0)], T0 + timedelta(minutes=5))[0]
    pending = merge_restart(merge_restart([], a, WINDOWS), b, WINDOWS)
    watched = ["a", "b", "c", "d"]
    assert shadow_controls(pending[0], watched, recently_restarted=["d"]) == ("c",)
    assert shadow_controls(pending[1], watched, recently_restarted=[]) == ("c", "d")


def test_every_verdict_says_what_an_upgrade_would_have_done():
    assert set(WOULD) == set(Verdict)
    assert "roll back" in WOULD[Verdict.FAIL]
