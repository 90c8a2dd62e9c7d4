"""End to end: a promoted upgrade soaks, a regression injected during the soak pages on-call,
and ``canary-analyzer rollback`` puts every moved workload back on the old proxy.

``canary-analyzer serve`` runs as a process on the simulated mesh, with a real Prometheus and
a real Alertmanager; time is compressed (windows of seconds, a soak look every 5 s, the
baseline "the same time one offset earlier" with a 40 s offset instead of 24 h). Tests wait
on conditions (status, received alerts, pods), never on the clock.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from analyzer.sim.mesh import SimulatedMesh
from analyzer.sim.scenario import RegressionSpec, load_scenario
from tests.e2e.test_service_e2e import REPO, Replica, observed
from tests.e2e.test_upgrade_flows import APPS, TRAFFIC_FACTOR, _with_rates
from tests.fixtures.polling import wait_until
from tests.fixtures.webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

SOAK_ENV = {
    "CANARY_UPGRADE__SOAK": "10m",
    "CANARY_UPGRADE__SOAK_EVERY": "5s",
    "CANARY_UPGRADE__SOAK_WINDOW": "20s",
    "CANARY_UPGRADE__SOAK_BASELINES": '["40s"]',
    # as in the upgrade flows: a healthy night promotes on every run (tests/e2e/
    # test_upgrade_flows.py explains the budget); the soak spends it over its looks
    "CANARY_RULES__NIGHT_BUDGET": "0.01",
    "CANARY_UPGRADE__ORDER": "given",
}
GATEWAY_NAMESPACE = "istio-ingress"


@pytest.fixture
def soak_world(tmp_path, monkeypatch):
    for key, value in SOAK_ENV.items():
        monkeypatch.setenv(key, value)
    stack = []
    scenario = load_scenario(REPO / "scenarios" / "healthy.yaml")
    mesh = SimulatedMesh(_with_rates(scenario, lambda _ns, rate: rate * TRAFFIC_FACTOR),
                         kubeconfig_path=tmp_path / "kubeconfig")
    receiver, alertmanager, prometheus, rules_dir = observed(mesh, tmp_path, stack)
    replicas: list[Replica] = []
    stack.append(lambda: [r.stop() for r in replicas])
    try:
        service = Replica("solo", tmp_path, mesh, prometheus.url, alertmanager.url, rules_dir)
        replicas.append(service)
        yield {"mesh": mesh, "receiver": receiver, "prometheus": prometheus,
               "service": service, "work": tmp_path}
    finally:
        for stop in reversed(stack):
            stop()


def _paged(receiver: WebhookReceiver, name: str, status: str = "firing") -> dict | None:
    return next((alert for post in receiver.posts("/alertmanager")
                 for alert in post.body.get("alerts", [])
                 if alert["labels"].get("alertname") == name and alert["status"] == status), None)


def _revisions(mesh: SimulatedMesh) -> set:
    return {rev for ns in (*APPS, GATEWAY_NAMESPACE) for rev in mesh.proxy_revisions(ns)}


def test_a_soak_regression_pages_and_rollback_puts_every_moved_workload_back(soak_world):
    mesh, receiver = soak_world["mesh"], soak_world["receiver"]
    prometheus, service = soak_world["prometheus"], soak_world["service"]
    wait_until(lambda: service.status()["is_leader"], timeout=30, message="the lease")
    wait_until(  # the baseline (up to a 40 s offset and a 20 s window back) must be scraped
        lambda: float(prometheus.query("count_over_time(up[70s])")[0]["value"][1]) >= 65,
        timeout=120, message="70 s of mesh metrics before the upgrade",
    )
    assert service.post("upgrade", {"to_revision": "1-15-4"}).status_code == 200
    for _ in range(4):  # the night itself is tests/e2e/test_upgrade_flows.py's subject
        ended = wait_until(
            lambda: (lambda s: s if (s.get("upgrade") or {}).get("outcome") else None)(
                service.status()),
            timeout=240, message="the upgrade to finish or hold",
        )
        if ended["upgrade"]["outcome"] != "held":
            break
        # a compressed window on a busy machine may stay too thin to judge: on-call accepts
        # it, as docs/oncall.md says, and the night goes on
        assert service.post("approve").status_code in (200, 202)
        wait_until(lambda: (service.status().get("upgrade") or {}).get("outcome") != "held",
                   timeout=60, message="the approval to be applied")
    assert ended["upgrade"]["outcome"] == "promoted", service.log()
    assert _revisions(mesh) == {"1-15-4"}
    wait_until(lambda: service.status()["phase"] == "done", timeout=240,
               message="the run to end (its report written)")
    soaking = wait_until(  # the soak judges on its own, at its cadence, before anything breaks
        lambda: (lambda s: s if (s.get("soak") or {}).get("looks", 0) >= 2 else None)(
            service.status()),
        timeout=180, message="two soak looks",
    )
    assert soaking["soak"]["state"] == "soaking" and soaking["soak"]["regression"] is None, (
        soaking["soak"], service.log())
    assert _paged(receiver, "CanaryAnalyzerSoakRegression") is None

    mesh.set_regressions([RegressionSpec(revision="1-15-4", namespace="billing",
                                         error_rate_add_pp=25)])
    page = wait_until(lambda: _paged(receiver, "CanaryAnalyzerSoakRegression"), timeout=120,
                      message="the soak regression page")
    assert page["labels"]["severity"] == "critical"
    assert "billing" in page["labels"]["namespace"].split(",")
    assert "error-rate" in page["labels"]["rule"]
    assert "canary-analyzer rollback" in page["annotations"]["description"]
    assert "runbook_url" not in page["annotations"] or page["annotations"]["runbook_url"].endswith(
        "#canaryanalyzersoakregression")
    status = service.status()
    assert status["soak"]["state"] == "regressed"
    assert "billing" in status["soak"]["regression"]["namespaces"]
    assert status["upgrade"]["outcome"] == "promoted"  # offered, not started: a person decides
    assert any(item["reason"] == "SoakRegression" and item["namespace"] == "billing"
               for item in status["timeline"])

    token_file = soak_world["work"] / "token"
    done = subprocess.run(
        [sys.executable, "-m", "analyzer", "rollback", "--url", service.url, "--token-file",
         str(token_file), "--as", "oncall-alice", "--reason", "billing 5xx during the soak"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "PYTHONPATH": str(REPO)}, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rolling back upgrade" in done.stdout
    final = wait_until(
        lambda: (lambda s: s if (s.get("upgrade") or {}).get("outcome") == "rolled_back"
                 else None)(service.status()),
        timeout=240, message="the rollback to finish",
    )
    assert "oncall-alice" in final["upgrade"]["reason"], final["upgrade"]
    wait_until(lambda: _revisions(mesh) == {"1-14-6"}, timeout=60,
               message="every moved workload (gateway and namespaces) on the old proxy")
    assert any(item["reason"] == "RollbackRequested" and "oncall-alice" in item["message"]
               for item in final["timeline"])
    assert final["soak"]["state"] == "rolled-back"
    wait_until(lambda: _paged(receiver, "CanaryAnalyzerRollbackFinished"), timeout=30,
               message="the rollback-finished page")
    wait_until(lambda: _paged(receiver, "CanaryAnalyzerSoakRegression", "resolved"), timeout=30,
               message="the soak regression page resolved by the rollback")
