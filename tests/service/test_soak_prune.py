"""After a promotion the service waits out the soak, offers the prune once, and prunes only
on approval, after checking use again (analyzer/service/soak.py).

The cluster is the simulated mesh through the official client and the real adapter
(analyzer/adapters/istio_revisions.py); the promoted state is built as the engine leaves it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from kubernetes import client as kube

from analyzer.adapters.istio_revisions import IstioRevisions
from analyzer.adapters.kubernetes import KubernetesCluster
from analyzer.core.alerts import AlertName
from analyzer.core.upgrade import Outcome, Stage, Step, UpgradeState
from analyzer.service.soak import PruneGate
from tests.fixtures.polling import wait_until
from tests.fixtures.sim_fixtures import api_client_for, fast_scenario, make_mesh  # noqa: F401
from tests.service.test_engine import make_plan

pytestmark = pytest.mark.timeout(120)

PROMOTED_AT = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
SOAK = timedelta(hours=24)


def _promoted() -> UpgradeState:
    return UpgradeState(plan=make_plan(), stage=Stage.FINISHED, step=Step.JUDGE, pending=None,
                        outcome=Outcome.PROMOTED, updated_at=PROMOTED_AT)


def _mesh(make_mesh, extra=()):  # noqa: F811
    return make_mesh(fast_scenario(
        revisions=[{"name": "1-14-6", "installed_by": "istioctl"},
                   {"name": "1-15-4", "installed_by": "istioctl"}],
        tags=[{"name": "default", "revision": "1-15-4"}],
        namespaces=[{"name": "foo", "workloads": [{"name": "web", "replicas": 1}]}, *extra],
        regressions=[]))


@pytest.fixture
def gate_on(make_mesh):  # noqa: F811
    clusters = []

    def build(mesh):
        cluster = KubernetesCluster(api_client_for(mesh), request_timeout=10, backoff=0.01)
        clusters.append(cluster)
        fired, resolved = [], []
        gate = PruneGate(lambda: IstioRevisions(cluster, "istio-system"), SOAK,
                         fired.append, resolved.append)
        return gate, fired, resolved

    yield build
    for cluster in clusters:
        cluster.close()


def _old_istiod(mesh) -> list[str]:
    api = api_client_for(mesh)
    try:
        return [d.metadata.name for d in kube.AppsV1Api(api).list_namespaced_deployment(
            "istio-system", label_selector="istio.io/rev=1-14-6").items]
    finally:
        api.close()


def test_offered_once_after_the_soak_and_pruned_on_approval(make_mesh, gate_on):  # noqa: F811
    mesh = _mesh(make_mesh)
    gate, fired, resolved = gate_on(mesh)
    gate.tick(_promoted(), PROMOTED_AT + SOAK - timedelta(minutes=1))
    assert not fired and gate.offer.state == "soaking"
    assert gate.approve() == (False, "nothing to prune: soaking")
    gate.tick(_promoted(), PROMOTED_AT + SOAK)
    gate.tick(_promoted(), PROMOTED_AT + SOAK + timedelta(minutes=1))
    assert [a.name for a in fired] == [AlertName.PRUNE_READY]  # once, not every pass
    assert "Deployment istio-system/istiod-1-14-6" in fired[0].description
    assert gate.offer.state == "ready" and _old_istiod(mesh)
    done, message = gate.approve()
    assert done and "istio-sidecar-injector-1-14-6" in message
    assert resolved == fired and gate.offer.state == "pruned"
    wait_until(lambda: not _old_istiod(mesh), timeout=30, message="old istiod gone")


def test_a_revision_in_use_is_never_offered_and_the_use_is_named(make_mesh, gate_on):  # noqa: F811
    legacy = {"name": "legacy", "labels": {"istio.io/rev": "1-14-6"},
              "workloads": [{"name": "svc", "replicas": 1}]}
    mesh = _mesh(make_mesh, [legacy])
    gate, fired, _resolved = gate_on(mesh)
    gate.tick(_promoted(), PROMOTED_AT + SOAK)
    assert not fired and gate.offer.state == "in-use"
    assert "namespace legacy is labelled istio.io/rev=1-14-6" in gate.offer.detail
    assert gate.approve()[0] is False and _old_istiod(mesh)


def test_use_appearing_after_the_offer_refuses_the_approval(make_mesh, gate_on):  # noqa: F811
    mesh = _mesh(make_mesh)
    gate, fired, _resolved = gate_on(mesh)
    gate.tick(_promoted(), PROMOTED_AT + SOAK)
    assert fired and gate.offer.state == "ready"
    api = api_client_for(mesh)
    try:  # someone pins a namespace to the old revision before the approval arrives
        kube.CoreV1Api(api).patch_namespace("foo", {"metadata": {"labels": {
            "istio.io/rev": "1-14-6"}}})
    finally:
        api.close()
    done, message = gate.approve()
    assert not done and "namespace foo is labelled istio.io/rev=1-14-6" in message
    assert not [w for w in mesh.writes() if w.method == "DELETE"] and _old_istiod(mesh)
