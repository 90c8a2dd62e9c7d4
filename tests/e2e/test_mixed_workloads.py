"""End to end: a healthy night on a mesh with pods no upgrade restarts is promoted.

Why: issue 13, point 3 — every pod of a namespace used to be verified, so a running Job,
a completed Job pod, a bare pod or a hostNetwork DaemonSet (never injected: istio
``pkg/kube/inject/inject.go``) kept the old proxy, the wave missed ``rollout_timeout`` and a
healthy night rolled back. Now only pods owned by the restarted Deployments, StatefulSets
and DaemonSets are verified; the others are reported as not restarted, with their revision,
as Events any ``kubectl get events`` lists. ``canary-analyzer upgrade`` runs as a subprocess
on the ``mixed-workloads`` scenario with a real Prometheus (the fixture of
test_upgrade_flows.py); it waits on conditions, never on the clock.
"""

from __future__ import annotations

import json

import pytest
from kubernetes import client as kube

from tests.e2e.test_upgrade_flows import cluster  # noqa: F401  (the shared fixture)
from tests.fixtures.sim_fixtures import api_client_for

pytestmark = pytest.mark.e2e

OLD, NEW = "1-14-6", "1-15-4"
PLANNED = ("accounts", "catalog", "delivery")


def test_jobs_bare_and_host_network_pods_are_reported_not_failed(cluster):  # noqa: F811
    env = cluster("mixed-workloads")
    # accounts-api rolls 6 replicas one at a time, 60 simulated s each at 10×: ~36 s real
    env.extra_env = {"CANARY_UPGRADE__ROLLOUT_TIMEOUT": "120s"}
    code, document, stderr = env.run("--namespaces", ",".join(PLANNED))
    assert code == 0, stderr[-3000:]
    assert document["outcome"] == "promoted"
    api = api_client_for(env.mesh)
    try:
        core = kube.CoreV1Api(api)
        pods = {
            (p.metadata.namespace, p.metadata.name): p
            for namespace in PLANNED
            for p in core.list_namespaced_pod(namespace).items
            if not p.metadata.deletion_timestamp
        }
        reported = {
            namespace: [e.message for e in core.list_namespaced_event(namespace).items
                        if e.reason == "NotRestarted"]
            for namespace in PLANNED
        }  # fmt: skip
    finally:
        api.close()

    def revision(pod) -> str | None:
        status = (pod.metadata.annotations or {}).get("sidecar.istio.io/status")
        return None if status is None else json.loads(status).get("revision")

    def owner(pod) -> str | None:
        refs = [r for r in pod.metadata.owner_references or () if r.controller]
        return refs[0].kind if refs else None

    # every pod a restarted workload owns runs the new proxy (hostNetwork ones have none)
    for (namespace, name), pod in pods.items():
        if owner(pod) in ("ReplicaSet", "StatefulSet", "DaemonSet") and not pod.spec.host_network:
            assert revision(pod) == NEW, (namespace, name)
    # the Job pods (running and completed) and the bare pod kept the old proxy …
    left = {name: pod for (ns, name), pod in pods.items() if owner(pod) in ("Job", None)}
    assert any(n.startswith("ledger-export") for n in left)
    assert any(n.startswith("ledger-compact") for n in left)
    assert "debug-shell" in left
    assert {revision(p) for p in left.values()} == {OLD}
    # … and are reported, once per wave, with their revision, as Events on their namespace
    (accounts,) = reported["accounts"]
    assert "ledger-export" in accounts and "ledger-compact" in accounts
    assert "Succeeded" in accounts and f"revision {OLD}" in accounts
    (catalog,) = reported["catalog"]
    assert "debug-shell (bare pod" in catalog
    (delivery,) = reported["delivery"]
    assert "delivery-node-agent" in delivery and "hostNetwork" in delivery
