"""The soak and the prune told in the timeline and the report, and the inventory kept for
``/api/status`` (analyzer/service/prune_path.py).

The cluster is the simulated mesh through the official client and the real adapter; the
promoted state is built as the engine leaves it (tests/service/test_soak_prune.py); the
timeline is the service's own ``KeptTimeline`` over an in-memory store.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from kubernetes import client as kube

from analyzer.adapters.istio_revisions import IstioRevisions
from analyzer.adapters.kubernetes import KubernetesCluster
from analyzer.core.ports import ClusterUnreachableError
from analyzer.service.control import Requester
from analyzer.service.engine import MemoryStateStore
from analyzer.service.prune_path import PrunePath, SeenRevisions
from analyzer.service.soak import PruneGate
from analyzer.service.timeline import KeptTimeline
from tests.fixtures.polling import wait_until
from tests.fixtures.sim_fixtures import api_client_for, fast_scenario, make_mesh  # noqa: F401
from tests.service.test_soak_prune import PROMOTED_AT, SOAK, _promoted

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def path_on(make_mesh):  # noqa: F811
    """``build(extra namespaces) → (mesh, path, store, fired, reports written)``."""
    clusters = []

    def build(extra=()):
        mesh = make_mesh(fast_scenario(
            revisions=[{"name": "1-14-6", "installed_by": "istioctl"},
                       {"name": "1-15-4", "installed_by": "istioctl"}],
            tags=[{"name": "default", "revision": "1-15-4"}],
            namespaces=[{"name": "foo", "workloads": [{"name": "web", "replicas": 1}]},
                        *extra],
            regressions=[]))  # fmt: skip
        cluster = KubernetesCluster(api_client_for(mesh), request_timeout=10, backoff=0.01)
        clusters.append(cluster)
        now = [PROMOTED_AT]
        seen = SeenRevisions(lambda: IstioRevisions(cluster, "istio-system"), lambda: now[0])
        fired, written = [], []
        gate = PruneGate(seen, SOAK, fired.append, lambda _alert: None)
        store = MemoryStateStore()
        path = PrunePath(gate, KeptTimeline(store), lambda: written.append(1), seen)
        return mesh, path, store, fired, written

    yield build
    for cluster in clusters:
        cluster.close()


def _reasons(path: PrunePath) -> list[str]:
    return [item["reason"] for item in path.timeline.items]


def _written(path: PrunePath) -> None:
    assert path.write_report.idle.wait(30), "the report write did not end"


def test_soak_offer_and_approval_are_told_once_each_with_who_and_why(path_on):
    _mesh, path, _store, fired, written = path_on()
    soaking_at = PROMOTED_AT + timedelta(minutes=5)
    path.tick(_promoted(), soaking_at)
    path.tick(_promoted(), soaking_at + timedelta(seconds=1))
    assert _reasons(path) == ["SoakStarted"]
    assert f"until at least {(PROMOTED_AT + SOAK).isoformat()}" in path.timeline.items[0]["message"]
    assert path.timeline.items[0]["at"] == PROMOTED_AT  # the soak starts at the promotion
    revisions = path.revisions_json()  # read while soaking, for /api/status
    assert revisions is not None
    assert {r["revision"] for r in revisions["revisions"]} == {"1-14-6", "1-15-4"}

    early = path.approve(soaking_at, Requester("bob", "too soon"))
    assert early == (False, "nothing to prune: soaking")
    assert path.timeline.items[-1]["message"] == (
        "prune approval by bob: too soon refused: nothing to prune: soaking")
    assert path.timeline.items[-1]["warning"] is True

    path.tick(_promoted(), PROMOTED_AT + SOAK)
    path.tick(_promoted(), PROMOTED_AT + SOAK + timedelta(minutes=1))
    assert _reasons(path)[-2:] == ["SoakEnded", "PruneOffered"] and len(fired) == 1
    _written(path)
    assert written, "the report was not written again after the offer"

    done, _message = path.approve(PROMOTED_AT + SOAK + timedelta(hours=1),
                                  Requester("alice", "change 4711"))
    assert done
    items = path.timeline.items
    approved = next(i for i in items if i["reason"] == "PruneApproved")
    assert approved["message"] == "prune of 1-14-6 approved by alice: change 4711"
    deleted = [i["message"] for i in items if i["reason"] == "PruneDeleted"]
    assert "deleted Deployment istio-system/istiod-1-14-6" in deleted
    assert "deleted MutatingWebhookConfiguration istio-sidecar-injector-1-14-6" in deleted
    assert _reasons(path)[-1] == "Pruned"
    assert path.offer_json()["state"] == "pruned"


def test_a_restarted_service_does_not_tell_the_same_steps_again(path_on):
    _mesh, path, store, _fired, _written = path_on()
    path.tick(_promoted(), PROMOTED_AT + SOAK)
    told = _reasons(path)
    assert told == ["SoakStarted", "SoakEnded", "PruneOffered"]
    again = PrunePath(PruneGate(path.seen, SOAK, lambda _a: None, lambda _a: None),
                      KeptTimeline(store), seen=path.seen)  # fmt: skip
    again.timeline.load()
    again.tick(_promoted(), PROMOTED_AT + SOAK + timedelta(minutes=1))
    assert _reasons(again) == told


def test_a_use_keeps_the_offer_back_named_and_the_offer_follows_when_it_goes(path_on):
    legacy = {"name": "legacy", "labels": {"istio.io/rev": "1-14-6"}, "workloads": []}
    mesh, path, _store, fired, _written = path_on([legacy])
    path.tick(_promoted(), PROMOTED_AT + SOAK)
    offer = path.offer_json()
    assert offer["state"] == "in-use" and not fired
    assert "namespace legacy is labelled istio.io/rev=1-14-6" in offer["blockers"]
    blocked = path.timeline.items[-1]
    assert blocked["reason"] == "PruneBlocked" and blocked["warning"] is True
    assert "namespace legacy is labelled istio.io/rev=1-14-6" in blocked["message"]
    path.tick(_promoted(), PROMOTED_AT + SOAK + timedelta(minutes=1))
    assert _reasons(path).count("PruneBlocked") == 1  # the same use is told once

    api = api_client_for(mesh)
    try:
        kube.CoreV1Api(api).patch_namespace("legacy", {"metadata": {"labels": {
            "istio.io/rev": None}}})
    finally:
        api.close()

    def offered() -> bool:
        path.tick(_promoted(), PROMOTED_AT + SOAK + timedelta(minutes=2))
        return path.offer_json()["state"] == "ready"

    wait_until(offered, timeout=60, message="the offer once the namespace is gone")
    assert _reasons(path)[-1] == "PruneOffered" and len(fired) == 1


class FailingSecondDelete:
    """The real adapter, except that its second delete fails as an unreachable API does."""

    def __init__(self, inner: IstioRevisions) -> None:
        self.inner = inner
        self.deletes = 0

    def inputs(self):  # type: ignore[no-untyped-def]
        return self.inner.inputs()

    def revision_objects(self, revision):  # type: ignore[no-untyped-def]
        return self.inner.revision_objects(revision)

    def delete(self, obj):  # type: ignore[no-untyped-def]
        self.deletes += 1
        if self.deletes == 2:
            raise ClusterUnreachableError("connection refused")
        return self.inner.delete(obj)


def test_a_prune_failing_midway_tells_what_was_deleted_and_the_offer_stands(make_mesh):  # noqa: F811
    mesh = make_mesh(fast_scenario(
        revisions=[{"name": "1-14-6", "installed_by": "istioctl"},
                   {"name": "1-15-4", "installed_by": "istioctl"}],
        tags=[{"name": "default", "revision": "1-15-4"}],
        namespaces=[{"name": "foo", "workloads": [{"name": "web", "replicas": 1}]}],
        regressions=[]))  # fmt: skip
    cluster = KubernetesCluster(api_client_for(mesh), request_timeout=10, backoff=0.01)
    try:
        port = FailingSecondDelete(IstioRevisions(cluster, "istio-system"))
        gate = PruneGate(lambda: port, SOAK, lambda _a: None, lambda _a: None)
        path = PrunePath(gate, KeptTimeline(MemoryStateStore()))
        path.tick(_promoted(), PROMOTED_AT + SOAK)
        with pytest.raises(ClusterUnreachableError):
            path.approve(PROMOTED_AT + SOAK, Requester("alice", "change 4711"))
        told = [(i["reason"], i["message"]) for i in path.timeline.items[-2:]]
        assert told[0][0] == "PruneDeleted" and told[0][1].startswith("deleted ")
        assert told[1][0] == "PruneFailed"
        assert told[1][1].startswith("prune of 1-14-6 approved by alice: change 4711 failed "
                                     "after 1 deletions: ClusterUnreachableError")
        assert path.offer_json()["state"] == "ready"
    finally:
        cluster.close()
