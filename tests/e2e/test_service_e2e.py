"""End to end: ``canary-analyzer serve`` processes on the simulated mesh, with a real
Prometheus and a real Alertmanager.

Why: the service's promises hold only with real processes — one of two replicas acts (the
Lease), a verb sent to the other is queued for it and applied, a ``kill -9`` of the leader
hands over to the other, which resumes from the state ConfigMap; the rollback pages
on-call through Alertmanager with the explained verdict and is resolved; invalid rules
pushed while running are refused with an alert. Windows are compressed; tests wait on
conditions (data, status, received alerts), never on the clock.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest

from analyzer.sim.mesh import SimulatedMesh
from analyzer.sim.scenario import load_scenario
from tests.fixtures.alertmanager_server import start_alertmanager
from tests.fixtures.polling import wait_until
from tests.fixtures.prometheus_server import free_port, start_prometheus
from tests.fixtures.webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
TOKEN = "e2e-control-token"
ENV = {
    "CANARY_UPGRADE__WAVES": "[1, 5]",
    "CANARY_UPGRADE__CANARY": "accounts",  # the scenario's bad canary goes first, pinned
    "CANARY_UPGRADE__EVALUATION_DELAY": "3s",
    "CANARY_UPGRADE__POLL_INTERVAL": "500ms",
    "CANARY_UPGRADE__ROLLOUT_TIMEOUT": "60s",
    "CANARY_UPGRADE__ROLLOUT_ESTIMATE": "10s",
    "CANARY_UPGRADE__MAX_EXTENSIONS": "1",
    "CANARY_UPGRADE__STATE_NAMESPACE": "istio-system",
    "CANARY_SERVICE__TICK_INTERVAL": "500ms",
    "CANARY_SERVICE__LEASE_DURATION": "4s",
    "CANARY_SERVICE__RULES_RELOAD_INTERVAL": "500ms",
    "CANARY_SERVICE__HEARTBEAT_INTERVAL": "5s",
    "CANARY_KUBERNETES__REQUEST_TIMEOUT": "10s",
    "CANARY_PROMETHEUS__TIMEOUT": "10s",
}
WINDOWS = ["--before", "20s", "--settle", "5s", "--after", "20s", "--step", "5s"]


class Replica:
    """One ``serve`` process."""

    def __init__(self, name: str, work: Path, mesh: SimulatedMesh, prometheus_url: str,
                 alertmanager_url: str | None, rules_dir: Path,
                 extra_env: dict[str, str] | None = None):  # fmt: skip
        self.name = name
        self.url = ""
        token_file = work / "token"
        token_file.write_text(TOKEN)
        self.log_path = work / f"serve-{name}.log"
        port = free_port()
        command = [
            sys.executable, "-m", "analyzer", "serve", "--listen", f"127.0.0.1:{port}",
            "--token-file", str(token_file), "--kubeconfig", str(mesh.kubeconfig_path),
            "--prometheus-url", prometheus_url, "--rules", str(rules_dir), *WINDOWS,
        ]  # fmt: skip
        if alertmanager_url:
            command += ["--alertmanager-url", alertmanager_url]
        env = {**os.environ, **ENV, "PYTHONPATH": str(REPO), "CANARY_SERVICE__IDENTITY": name,
               "CANARY_SERVICE__REPORTS_DIR": str(work / f"reports-{name}"),
               **(extra_env or {})}  # fmt: skip
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=log, env=env, cwd=work
            )
        line = self.process.stdout.readline().decode().strip() if self.process.stdout else ""
        assert line.startswith("serving http://"), f"{name} did not start: {line} {self.log()}"
        self.url = line.removeprefix("serving ")

    def status(self) -> dict:
        return httpx.get(f"{self.url}/api/status", timeout=5).json()

    def post(self, verb: str, body: dict | None = None) -> httpx.Response:
        return httpx.post(f"{self.url}/api/{verb}", json=body or {}, timeout=10,
                          headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)



def observed(mesh: SimulatedMesh, tmp_path: Path, stack: list) -> tuple:
    """Start ``mesh``, a webhook receiver, Alertmanager routing to it, Prometheus scraping
    the mesh every second, and a copy of the shipped rules; each stop goes on ``stack``
    (the caller stops them in reverse). ``(receiver, alertmanager, prometheus, rules_dir)``."""
    mesh.start()
    stack.append(mesh.stop)
    receiver = WebhookReceiver()
    stack.append(receiver.stop)
    alertmanager = start_alertmanager(tmp_path / "alertmanager", f"{receiver.url}/alertmanager")
    stack.append(alertmanager.stop)
    target = mesh.metrics_url.removeprefix("http://").removesuffix("/metrics")
    prometheus = start_prometheus(tmp_path / "prometheus", [target], "1s")
    stack.append(prometheus.stop)
    rules_dir = tmp_path / "rules"
    shutil.copytree(REPO / "rules", rules_dir)
    return receiver, alertmanager, prometheus, rules_dir


@pytest.fixture
def world(tmp_path):
    """Sim (bad canary) + Prometheus scraping it + Alertmanager → receiver; stopped after."""
    stack = []
    mesh = SimulatedMesh(load_scenario("bad-canary"), kubeconfig_path=tmp_path / "kubeconfig")
    receiver, alertmanager, prometheus, rules_dir = observed(mesh, tmp_path, stack)
    replicas: list[Replica] = []
    stack.append(lambda: [r.stop() for r in replicas])

    def replica(name: str) -> Replica:
        r = Replica(name, tmp_path, mesh, prometheus.url, alertmanager.url, rules_dir)
        replicas.append(r)
        return r

    try:
        yield {"mesh": mesh, "receiver": receiver, "prometheus": prometheus, "replica": replica,
               "rules_dir": rules_dir, "alertmanager": alertmanager}  # fmt: skip
    finally:
        for stop in reversed(stack):
            stop()


def _alerts(receiver: WebhookReceiver) -> list[dict]:
    return [
        alert for post in receiver.posts("/alertmanager") for alert in post.body.get("alerts", [])
    ]


def _restarts(mesh: SimulatedMesh) -> Counter:
    return Counter({(ns, name): n for (_k, ns, name), n in mesh.restart_counts().items()})


def test_one_replica_acts_and_the_other_takes_over_after_kill_9_then_rolls_back_and_pages(world):
    mesh, receiver, prometheus = world["mesh"], world["receiver"], world["prometheus"]
    first, second = world["replica"]("replica-a"), world["replica"]("replica-b")
    leader = wait_until(
        lambda: next((r for r in (first, second) if r.status()["is_leader"]), None),
        timeout=30, message="one replica to take the lease",
    )  # fmt: skip
    standby = second if leader is first else first
    wait_until(  # the other replica has made its first pass and seen the Lease taken
        lambda: (lambda s: not s["is_leader"] and s["phase"] == "standby")(standby.status()),
        timeout=30, message="the other replica to stand by",
    )  # fmt: skip
    queued = standby.post("pause")  # the standby takes the verb; the leader carries it out
    assert queued.status_code == 202 and queued.json()["queued"] is True
    assert queued.json()["message"] == f"queued for the leader {leader.name}: pause"
    wait_until(lambda: leader.status()["paused"], timeout=30,
               message="the leader to apply the pause queued through the standby")  # fmt: skip
    assert standby.post("resume").status_code == 202
    wait_until(lambda: (lambda s: not s["paused"] and not s["queued_requests"])(leader.status()),
               timeout=30, message="the leader to apply the queued resume")  # fmt: skip

    wait_until(  # a before-window's worth of traffic in Prometheus before anything moves
        lambda: prometheus.query('count_over_time(istio_requests_total{reporter="destination"}[25s]) > 20'),
        timeout=90, message="25 s of mesh metrics",
    )  # fmt: skip
    assert leader.post("upgrade", {"to_revision": "1-15-4"}).status_code == 200
    wait_until(
        lambda: (leader.status().get("upgrade") or {}).get("stage") == "wave"
        and leader.status()["upgrade"]["step"] in ("wait", "judge"),
        timeout=90, message="the leader to restart the canary and wait for its window",
    )  # fmt: skip
    leader.process.kill()  # kill -9: no lease release, no goodbye
    leader.process.wait(timeout=10)

    final = wait_until(
        lambda: (lambda s: s if s["is_leader"] and (s.get("upgrade") or {}).get("outcome") else None)(
            standby.status()
        ),
        timeout=150, message="the standby to take over, judge the canary and finish",
    )  # fmt: skip
    assert final["upgrade"]["outcome"] == "rolled_back", standby.log()
    canary = next(n for n in final["upgrade"]["namespaces"] if n["name"] == "accounts")
    assert canary["verdict"] == "fail"
    restarts = _restarts(mesh)
    assert restarts[("accounts", "accounts-api")] == 2  # the wave once, the rollback once
    assert all(restarts[(ns, name)] == 0 for (ns, name) in restarts if ns in ("catalog", "orders"))

    def paged(name: str, status: str) -> dict | None:
        return next((a for a in _alerts(receiver)
                     if a["labels"].get("alertname") == name and a["status"] == status), None)  # fmt: skip

    started = wait_until(lambda: paged("CanaryAnalyzerRollbackStarted", "firing"), timeout=30,
                         message="the critical rollback page")  # fmt: skip
    assert started["labels"]["severity"] == "critical"
    assert started["labels"]["namespace"] == "accounts"
    assert "error-rate" in started["labels"]["rule"]
    assert started["labels"]["revision"] == "1-15-4"
    assert (
        "→" in started["annotations"]["description"]
        and "%" in started["annotations"]["description"]
    )
    wait_until(lambda: paged("CanaryAnalyzerRollbackFinished", "firing"), timeout=30,
               message="the rollback-finished page")  # fmt: skip
    wait_until(lambda: paged("CanaryAnalyzerRollbackStarted", "resolved"), timeout=30,
               message="the rollback-started alert resolved")  # fmt: skip


def test_invalid_rules_pushed_while_running_are_refused_with_an_alert(world):
    receiver, rules_dir = world["receiver"], world["rules_dir"]
    service = world["replica"]("solo")
    wait_until(lambda: service.status()["is_leader"], timeout=30, message="the lease")
    before = service.status()["rules"]["names"]
    (rules_dir / "broken.yaml").write_text(
        "apiVersion: canary-analyzer/v1\nkind: Rule\nmetadata: {name: broken}\nspec: {type: ratio}\n"
    )
    try:
        invalid = wait_until(
            lambda: next((a for a in _alerts(receiver)
                          if a["labels"].get("alertname") == "CanaryAnalyzerRulesInvalid"), None),
            timeout=30, message="the rules-invalid alert",
        )  # fmt: skip
    except AssertionError as error:
        am = world["alertmanager"].alerts()
        raise AssertionError(f"{error}; alertmanager holds {am}; receiver got {_alerts(receiver)}") from None
    assert invalid["labels"]["severity"] == "warning"
    assert "broken.yaml:4" in invalid["annotations"]["description"]
    status = service.status()
    assert status["rules"]["invalid"] is True and status["rules"]["names"] == before
    (rules_dir / "broken.yaml").unlink()
    wait_until(
        lambda: any(a["labels"].get("alertname") == "CanaryAnalyzerRulesInvalid" and a["status"] == "resolved"
                    for a in _alerts(receiver)),
        timeout=30, message="the rules-invalid alert resolved",
    )  # fmt: skip
    assert service.status()["rules"]["invalid"] is False


def test_sigterm_stops_gracefully_and_releases_the_lease(world):
    service = world["replica"]("graceful")
    wait_until(lambda: service.status()["is_leader"], timeout=30, message="the lease")
    service.process.send_signal(signal.SIGTERM)
    assert service.process.wait(timeout=30) == 0
    from kubernetes import client as kube

    from tests.fixtures.sim_fixtures import api_client_for

    api = kube.CoordinationV1Api(api_client_for(world["mesh"]))
    lease = api.read_namespaced_lease("canary-analyzer", "istio-system")
    assert lease.spec.holder_identity in (None, "")
