"""End to end: whole nights on a mesh shaped like real clusters, promoted and rolled back.

Why: issue 13's promises hold only together. On the ``mixed-workloads`` scenario — running
and completed Job pods, a CronJob's Job pod, a bare pod, a hostNetwork DaemonSet (never
injected: istio ``pkg/kube/inject/inject.go``), a namespace reached through
``istio-injection=enabled`` and one reached only through pod labels
(``sidecar.istio.io/inject=true``, the default tag's ``object.sidecar-injector.istio.io``),
rollouts longer than settle — ``canary-analyzer upgrade`` runs as a subprocess with a real
Prometheus (the fixture of test_upgrade_flows.py) and must:
- healthy: promote; leave the tag webhook and the tag Service exactly as Istio's chart
  renders them for the new revision; put every controller-owned pod the tag reaches on the
  new proxy; report the pods a restart cannot move (Job, bare, hostNetwork) as
  ``NotRestarted`` Events, with their revision, instead of failing on them;
- bad new revision (``mixed-workloads-bad``, in the layout without the tag Service): roll
  back; webhook and validator equal the chart's rendering for the OLD revision; every
  controller-owned pod the tag reaches back on the old proxy.
Waits on conditions, never on the clock.
"""

from __future__ import annotations

import json

import pytest
from kubernetes import client as kube

from analyzer.adapters.kubernetes import KubernetesCluster
from tests.e2e.test_upgrade_flows import cluster  # noqa: F401  (the shared fixture)
from tests.fixtures.istio_golden import assert_matches_chart, assert_validator
from tests.fixtures.sim_fixtures import api_client_for, event_notes

pytestmark = pytest.mark.e2e

OLD, NEW = "1-14-6", "1-15-4"
#: every namespace the default tag reaches in the scenario (the gateway's apart)
REACHED = ("accounts", "billing", "catalog", "delivery", "inventory", "orders")
#: accounts-api rolls 6 replicas one at a time, 60 simulated s each at 10×: ~36 s real
SLOW_ROLLOUTS = {"CANARY_UPGRADE__ROLLOUT_TIMEOUT": "120s"}
RESTARTED_BY = ("ReplicaSet", "StatefulSet", "DaemonSet")


def _revision(pod) -> str | None:
    status = (pod.metadata.annotations or {}).get("sidecar.istio.io/status")
    return None if status is None else json.loads(status).get("revision")


def _owner(pod) -> str | None:
    refs = [r for r in pod.metadata.owner_references or () if r.controller]
    return refs[0].kind if refs else None


def _pods(core: kube.CoreV1Api, namespaces) -> dict[tuple[str, str], object]:
    return {
        (p.metadata.namespace, p.metadata.name): p
        for namespace in namespaces
        for p in core.list_namespaced_pod(namespace).items
        if not p.metadata.deletion_timestamp
    }


def _restarted_pods_on(pods: dict, revision: str) -> None:
    """Every meshed pod a restarted workload owns runs ``revision``."""
    meshed = {key: pod for key, pod in pods.items()
              if _owner(pod) in RESTARTED_BY and not pod.spec.host_network}
    assert meshed
    wrong = {key: _revision(pod) for key, pod in meshed.items() if _revision(pod) != revision}
    assert not wrong, wrong


def test_a_healthy_night_on_a_real_shaped_mesh_is_promoted(cluster):  # noqa: F811
    env = cluster("mixed-workloads")
    env.extra_env = SLOW_ROLLOUTS
    code, document, stderr = env.run()
    assert code == 0, stderr[-3000:]
    assert document["outcome"] == "promoted"
    # the plan was the tag's whole reach, each namespace for the reason it is reached
    assert {n["name"] for n in document["namespaces"]} == set(REACHED)
    assert {n["state"] for n in document["namespaces"]} == {"promoted"}
    assert "namespace label istio-injection=enabled" in stderr  # billing
    assert "pod label sidecar.istio.io/inject=true" in stderr  # inventory
    api = api_client_for(env.mesh)
    try:
        assert_matches_chart(KubernetesCluster(api), "current", "", NEW)
        assert_validator(KubernetesCluster(api), "current", "", NEW)
        core = kube.CoreV1Api(api)
        pods = _pods(core, (*REACHED, "istio-ingress"))
        reported = {namespace: event_notes(core, namespace, "NotRestarted")
                    for namespace in REACHED}
    finally:
        api.close()
    _restarted_pods_on(pods, NEW)
    # the pods a restart cannot move kept the old proxy …
    left = {name: pod for (_, name), pod in pods.items() if _owner(pod) in ("Job", None)}
    assert any(n.startswith("ledger-export") for n in left)  # running Job
    assert any(n.startswith("ledger-compact") for n in left)  # completed Job
    assert any(n.startswith("invoice-run") for n in left)  # the CronJob's Job
    assert "debug-shell" in left  # bare pod
    assert {_revision(p) for p in left.values()} == {OLD}
    # … and were reported once, with their revision, instead of failing the wave
    (accounts,) = reported["accounts"]
    assert "ledger-export" in accounts and "ledger-compact" in accounts
    assert "Succeeded" in accounts and f"revision {OLD}" in accounts
    (billing,) = reported["billing"]
    assert "invoice-run" in billing
    (catalog,) = reported["catalog"]
    assert "debug-shell (bare pod" in catalog
    (delivery,) = reported["delivery"]
    assert "delivery-node-agent" in delivery and "hostNetwork" in delivery


def test_a_bad_revision_on_a_real_shaped_mesh_is_rolled_back(cluster):  # noqa: F811
    env = cluster("mixed-workloads-bad", istio_layout="legacy")
    env.extra_env = SLOW_ROLLOUTS
    code, document, stderr = env.run()
    assert code == 1, stderr[-3000:]
    assert document["outcome"] == "rolled_back"
    canary = document["namespaces"][0]
    assert (canary["name"], canary["verdict"]) == ("accounts", "fail")
    api = api_client_for(env.mesh)
    try:
        # the layout without the tag Service: none is created, the rest equals the chart
        assert_matches_chart(KubernetesCluster(api), "legacy", "", OLD)
        assert_validator(KubernetesCluster(api), "legacy", "", OLD)
        pods = _pods(kube.CoreV1Api(api), (*REACHED, "istio-ingress"))
    finally:
        api.close()
    _restarted_pods_on(pods, OLD)
    assert all(_revision(pod) in (OLD, None) for pod in pods.values())
