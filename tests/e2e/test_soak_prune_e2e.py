"""End to end: after a promotion the running service soaks, offers the prune, and removes
the old control plane once a person approves — on the simulated mesh, with a real
Prometheus and a real Alertmanager, two ``serve`` replicas, and the CLI.

Why: the prune is the one step of the procedure that deletes a control plane; its promises
hold only through the running service. A pod still on the old revision keeps the offer
back and is named (a completed Job pod is not use: a terminal phase is final, kubernetes
pkg/kubelet/status/status_manager.go); once it is gone the service fires
``CanaryAnalyzerPruneReady`` (delivered by Alertmanager); an ``approve-prune`` sent to the
standby is queued for the leader, which deletes the old revision's istiod, webhooks and
config and leaves the new revision's untouched; ``revisions`` then reports the old revision
not installed; the timeline and the report say who approved, why, and what was deleted.
The soak is compressed (``upgrade.soak`` 3 s); tests wait on conditions, never the clock.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from kubernetes import client as kube

from analyzer.sim.mesh import SimulatedMesh
from analyzer.sim.scenario import parse_scenario
from tests.e2e.test_service_e2e import REPO, Replica, observed
from tests.fixtures.polling import wait_until
from tests.fixtures.sim_fixtures import api_client_for
from tests.fixtures.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

OLD, NEW = "1-14-6", "1-15-4"
SCENARIO = f"""
name: soak-and-prune
description: one namespace, both revisions installed by istioctl; a completed Job and a
  bare pod keep the old proxy after the upgrade
time_scale: 20
seed: 5
pod_ready_delay: 10s
pod_termination_delay: 4s
native_sidecars: false
nodes: 2
revisions:
  - {{name: {OLD}, version: 1.14.6, installed_by: istioctl}}
  - {{name: {NEW}, version: 1.15.4, installed_by: istioctl}}
tags:
  - {{name: default, revision: {OLD}}}
gateway: {{name: istio-ingressgateway, namespace: istio-ingress, replicas: 1}}
namespaces:
  - name: accounts
    traffic: {{rps: 60, error_rate: 0.003, p50_ms: 18, p99_ms: 180}}
    workloads:
      - {{name: accounts-api, replicas: 2, progress_deadline: 300s}}
    jobs:
      - {{name: ledger-compact, state: completed}}
    bare_pods:
      - {{name: debug-shell}}
regressions: []
"""
PRUNE_ENV = {"CANARY_UPGRADE__PRUNE": "true", "CANARY_UPGRADE__SOAK": "3s",
             "CANARY_UPGRADE__WAVES": "[1]"}  # fmt: skip
BLOCKER = "pod accounts/debug-shell (bare pod) runs its proxy"


@pytest.fixture
def world(tmp_path):
    stack = []
    scenario = parse_scenario(SCENARIO, "soak-and-prune")
    mesh = SimulatedMesh(scenario, kubeconfig_path=tmp_path / "kubeconfig")
    receiver, alertmanager, prometheus, rules_dir = observed(mesh, tmp_path, stack)
    replicas: list[Replica] = []
    stack.append(lambda: [r.stop() for r in replicas])

    def replica(name: str) -> Replica:
        r = Replica(name, tmp_path, mesh, prometheus.url, alertmanager.url, rules_dir,
                    extra_env=PRUNE_ENV)  # fmt: skip
        replicas.append(r)
        return r

    try:
        yield {"mesh": mesh, "receiver": receiver, "prometheus": prometheus,
               "replica": replica, "work": tmp_path}  # fmt: skip
    finally:
        for stop in reversed(stack):
            stop()


def _control_plane(mesh: SimulatedMesh, revision: str) -> dict[str, str]:
    """``"Kind name" → uid`` of the revision's own objects (tags excluded) that a prune
    concerns: istiod, its webhooks, Services and ConfigMaps."""
    api = api_client_for(mesh)
    selector = f"istio.io/rev={revision},!istio.io/tag"
    try:
        apps, core = kube.AppsV1Api(api), kube.CoreV1Api(api)
        admission = kube.AdmissionregistrationV1Api(api)
        listed = [
            ("Deployment", apps.list_namespaced_deployment("istio-system", label_selector=selector)),
            ("Service", core.list_namespaced_service("istio-system", label_selector=selector)),
            ("ConfigMap", core.list_namespaced_config_map("istio-system", label_selector=selector)),
            ("MutatingWebhookConfiguration",
             admission.list_mutating_webhook_configuration(label_selector=selector)),
            ("ValidatingWebhookConfiguration",
             admission.list_validating_webhook_configuration(label_selector=selector)),
        ]  # fmt: skip
        return {f"{kind} {o.metadata.name}": o.metadata.uid for kind, found in listed
                for o in found.items}  # fmt: skip
    finally:
        api.close()


def _cli(*args: str, work) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "analyzer", *args], capture_output=True,
                          text=True, env=env, cwd=work, timeout=60)  # fmt: skip


def _alerts(receiver: WebhookReceiver, name: str) -> list[dict]:
    return [alert for post in receiver.posts("/alertmanager")
            for alert in post.body.get("alerts", [])
            if alert["labels"].get("alertname") == name]  # fmt: skip


def _reasons(status: dict) -> list[str]:
    return [item.get("reason") for item in status.get("timeline", [])]


def test_a_promoted_upgrade_soaks_is_offered_and_pruned_on_approval_through_a_standby(world):
    mesh, receiver, prometheus, work = (world["mesh"], world["receiver"], world["prometheus"],
                                        world["work"])  # fmt: skip
    first = world["replica"]("replica-a")
    wait_until(lambda: first.status()["is_leader"], timeout=30, message="replica-a leading")
    second = world["replica"]("replica-b")
    wait_until(lambda: second.status()["phase"] == "standby", timeout=30,
               message="replica-b standing by")  # fmt: skip
    replicas = (first, second)

    def leading() -> dict:
        """The leader's status (whichever replica holds the Lease now)."""
        return next(s for s in (r.status() for r in replicas) if s["is_leader"])

    def standby() -> Replica:
        return next(r for r in replicas if not r.status()["is_leader"])
    wait_until(  # a before-window's worth of traffic in Prometheus before anything moves
        lambda: prometheus.query(
            'count_over_time(istio_requests_total{reporter="destination"}[25s]) > 20'),
        timeout=90, message="25 s of mesh metrics",
    )  # fmt: skip
    assert first.post("upgrade", {"to_revision": NEW}).status_code == 200

    # promoted, soaked (3 s), then held back by the bare pod still on the old proxy
    blocked = wait_until(  # the state, the same pass's note in the timeline, and the
        # revisions the leader read (a leader that took the lease a moment ago reads them on
        # its first pass: seen on a loaded machine, where the short test lease can move)
        lambda: (lambda s: s if (s.get("prune") or {}).get("state") == "in-use"
                 and "PruneBlocked" in _reasons(s) and s.get("revisions") else None)(leading()),
        timeout=180, message="the soak to end with the prune blocked",
    )  # fmt: skip
    assert blocked["upgrade"]["outcome"] == "promoted", blocked["timeline"]
    # as the upgrade left them (the tag move relabelled the default validator to NEW)
    old_objects, new_objects = _control_plane(mesh, OLD), _control_plane(mesh, NEW)
    assert f"Deployment istiod-{OLD}" in old_objects, old_objects
    assert f"MutatingWebhookConfiguration istio-sidecar-injector-{OLD}" in old_objects
    assert f"Deployment istiod-{NEW}" in new_objects, new_objects
    assert blocked["prune"]["revision"] == OLD
    assert blocked["prune"]["blockers"] == [BLOCKER]  # the completed Job pod is not use
    old_use = next(r for r in blocked["revisions"]["revisions"] if r["revision"] == OLD)
    assert [p["name"].split("-")[:2] for p in old_use["completed_pods"]] == [["ledger", "compact"]]
    assert old_use["blockers"] == [BLOCKER]
    assert {"SoakStarted", "SoakEnded", "PruneBlocked"} <= set(_reasons(blocked))
    assert not _alerts(receiver, "CanaryAnalyzerPruneReady")
    assert standby().post("approve-prune").status_code == 202  # queued; the leader refuses it
    wait_until(lambda: "PruneRefused" in _reasons(leading()), timeout=30,
               message="the early approval refused in the timeline")  # fmt: skip
    assert _control_plane(mesh, OLD) == old_objects

    # the last use goes: the prune is offered, and Alertmanager delivers the alert
    api = api_client_for(mesh)
    try:
        kube.CoreV1Api(api).delete_namespaced_pod("debug-shell", "accounts")
    finally:
        api.close()
    wait_until(lambda: (leading().get("prune") or {}).get("state") == "ready",
               timeout=60, message="the prune offered")  # fmt: skip
    ready = wait_until(lambda: _alerts(receiver, "CanaryAnalyzerPruneReady"), timeout=60,
                       message="CanaryAnalyzerPruneReady delivered")[0]  # fmt: skip
    assert ready["labels"]["revision"] == OLD
    assert f"Deployment istio-system/istiod-{OLD}" in ready["annotations"]["description"]

    # approved through the standby with the CLI: queued, applied by the leader in alice's name
    token = work / "token"
    answer = _cli("approve-prune", "--url", standby().url, "--token-file", str(token), "--as",
                  "alice", "--reason", "change 4711", work=work)  # fmt: skip
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.startswith("queued for the leader "), answer.stdout
    assert answer.stdout.strip().endswith(": approve-prune"), answer.stdout
    done = wait_until(  # pruned, and the end told in the timeline
        lambda: (lambda s: s if (s.get("prune") or {}).get("state") == "pruned"
                 and "Pruned" in _reasons(s) else None)(leading()),
        timeout=60, message="the leader to prune",
    )  # fmt: skip
    notes = {item["reason"]: item["message"] for item in done["timeline"]}
    assert notes["PruneApproved"] == f"prune of {OLD} approved by alice: change 4711"
    # "deleted X", or "deleted X (already gone)" when a DELETE was retried after a lost answer
    deleted = {i["message"].removesuffix(" (already gone)") for i in done["timeline"]
               if i["reason"] == "PruneDeleted"}  # fmt: skip
    assert f"deleted Deployment istio-system/istiod-{OLD}" in deleted, done["timeline"]
    assert f"deleted MutatingWebhookConfiguration istio-sidecar-injector-{OLD}" in deleted

    wait_until(lambda: not _control_plane(mesh, OLD), timeout=60,
               message="the old control plane gone")  # fmt: skip
    assert _control_plane(mesh, NEW) == new_objects  # the same objects, never re-created
    wait_until(lambda: _alerts(receiver, "CanaryAnalyzerPruneReady")[-1]["status"] == "resolved",
               timeout=60, message="the prune alert resolved")  # fmt: skip

    listed = _cli("revisions", "-o", "json", "--kubeconfig", str(mesh.kubeconfig_path),
                  work=work)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    old = [r for r in json.loads(listed.stdout)["revisions"] if r["revision"] == OLD]
    assert all(not r["installed"] and not r["in_use"] for r in old), old  # a completed pod at most
    checked = _cli("revisions", "--revision", OLD, "--kubeconfig", str(mesh.kubeconfig_path),
                   work=work)  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # the replica that pruned rewrites its report; the lease may have moved on since (on a
    # loaded machine a prune outlasted the test's short lease), so either replica's may tell
    reports = [work / f"reports-{r.name}" / done["upgrade"]["report"] for r in replicas]
    told = wait_until(lambda: [text for p in reports if p.exists()
                               if "approved by alice: change 4711" in (text := p.read_text())],
                      timeout=60, message="the report telling the prune")  # fmt: skip
    assert f"istiod-{OLD}" in told[0]
