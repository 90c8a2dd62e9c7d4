"""The prune offer is kept in the state ConfigMap: a standby shows it, a new leader takes it
over without paging again, and resolves the alert the previous leader fired.

Why: ``PruneGate`` used to know the offer in memory only. A standby's ``/api/status`` said
``prune: null`` while the leader offered it, and a new leader (a leader change, a restarted
pod) made the offer afresh and fired ``CanaryAnalyzerPruneReady`` a second time. These
tests run two real ``UpgradeService`` replicas with real Leases through the Kubernetes
adapter and the official client against the simulated mesh's API server (as
tests/service/test_timeline_kept.py does), the prune gate wired as ``serve`` wires it
(tests/fixtures/service_replicas.py) over the Istio revisions adapter, with a soak of one
second. Passes are driven by calling ``tick``; waits poll with a deadline.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from kubernetes import client as kube

from analyzer.adapters.kubernetes import KubernetesCluster
from analyzer.adapters.lease import KubernetesLease
from analyzer.core.alerts import AlertName
from analyzer.core.upgrade import Outcome
from analyzer.core.verdicts import Verdict
from analyzer.service.control import Requester, UpgradeRequestBody
from analyzer.service.leadership import LeaderElector, Leadership
from tests.fixtures.polling import wait_until
from tests.fixtures.service_replicas import CONFIGMAP, NAMESPACE, state_store, upgrade_service
from tests.fixtures.sim_fixtures import api_client_for, fast_scenario

pytestmark = pytest.mark.timeout(180)

PRUNE = {"prune": True, "soak": "1s", "soak_every": "0s"}
OLD = "1-14-6"


class Sink:
    """An alert sink that records what it is sent; ``repeats``: it deduplicates
    (Alertmanager) and is sent firing alerts again, else a chat sink told each change once."""

    def __init__(self, repeats: bool) -> None:
        self.repeats = repeats
        self.sent: list = []

    def send(self, alerts) -> None:
        self.sent.extend(alerts)

    def prune_ready(self) -> list:
        return [a for a in self.sent if a.name is AlertName.PRUNE_READY]


class Replica:
    """One ``UpgradeService`` with the prune on, its own Lease identity and two sinks."""

    def __init__(self, mesh, work: Path, name: str) -> None:
        self.api_client = api_client_for(mesh)
        self.cluster = KubernetesCluster(self.api_client, request_timeout=10, backoff=0.01)
        lease = KubernetesLease(self.api_client, NAMESPACE, "canary-analyzer")
        self.alertmanager, self.chat = Sink(repeats=True), Sink(repeats=False)
        self.service = upgrade_service(
            self.cluster, work, name, script=lambda _n, _i: Verdict.PASS,
            leadership=Leadership(LeaderElector(lease, name, timedelta(seconds=60))),
            timeline_store=state_store(self.cluster, "timeline"),
            upgrade=PRUNE, notifiers=[self.alertmanager, self.chat],
        )  # fmt: skip

    def run_tick(self) -> None:
        self.service.tick()
        assert self.service.wait_idle(timeout=120), "engine worker did not stop"

    def status(self) -> dict:
        return self.service.status()

    def notes(self, reason: str) -> list[str]:
        return [i["message"] for i in self.status()["timeline"] if i["reason"] == reason]

    def stop(self) -> None:
        if self.api_client is not None:
            self.service.stop()  # releases the Lease
            self.api_client.close()
            self.api_client = None


@pytest.fixture
def pair(make_mesh, tmp_path):
    """A leader that promoted 1-15-4 and offers the prune of 1-14-6, and a standby."""
    mesh = make_mesh(fast_scenario(
        regressions=[],
        revisions=[{"name": OLD, "installed_by": "istioctl"},
                   {"name": "1-15-4", "installed_by": "istioctl"}]))  # fmt: skip
    leader, standby = Replica(mesh, tmp_path, "replica-a"), Replica(mesh, tmp_path, "replica-b")
    try:
        leader.run_tick()
        standby.run_tick()
        assert leader.status()["is_leader"] and not standby.status()["is_leader"]
        leader.service.request_upgrade(UpgradeRequestBody(to_revision="1-15-4"))
        leader.run_tick()
        assert leader.service.view.state.outcome is Outcome.PROMOTED
        wait_until(
            lambda: (leader.run_tick(), (leader.status()["prune"] or {}).get("state"))[1]
            == "ready",
            timeout=90, message="the soak to end and the prune to be offered",
        )  # fmt: skip
        yield mesh, leader, standby
    finally:
        leader.stop()
        standby.stop()


def _stored_memory(mesh) -> dict:
    api_client = api_client_for(mesh)
    try:
        configmap = kube.CoreV1Api(api_client).read_namespaced_config_map(CONFIGMAP, NAMESPACE)
    finally:
        api_client.close()
    return json.loads((configmap.data or {})["service"])


def test_a_standby_shows_the_leaders_prune_offer(pair):
    mesh, leader, standby = pair
    offer = leader.status()["prune"]
    assert offer["revision"] == OLD and offer["state"] == "ready"
    stored = _stored_memory(mesh)["prune"]  # kept beside the soak, in the service memory
    assert {k: stored[k] for k in offer} == offer
    assert stored["alert"]["name"] == AlertName.PRUNE_READY.value
    standby.run_tick()
    assert standby.status()["phase"] == "standby"
    assert standby.status()["prune"] == offer


def test_a_new_leader_takes_the_offer_over_without_paging_or_telling_it_again(pair):
    _mesh, leader, standby = pair
    assert len(leader.alertmanager.prune_ready()) == len(leader.chat.prune_ready()) == 1
    fired = leader.alertmanager.prune_ready()[0]
    told = {reason: leader.notes(reason) for reason in ("SoakStarted", "SoakEnded",
                                                        "PruneOffered")}  # fmt: skip
    assert all(len(notes) == 1 for notes in told.values()), told
    leader.stop()
    wait_until(lambda: (standby.run_tick(), standby.status()["is_leader"])[1], timeout=30,
               message="replica-b to take the released Lease")  # fmt: skip
    standby.run_tick()
    standby.service.tick_alerts()  # a delivery round: nothing is due to any sink yet
    assert standby.status()["prune"]["state"] == "ready"
    assert OLD in {r["revision"] for r in standby.status()["revisions"]["revisions"]}
    assert standby.alertmanager.prune_ready() == standby.chat.prune_ready() == []
    assert {reason: standby.notes(reason) for reason in told} == told

    answer = standby.service.approve_prune(Requester(actor="alice", reason="change 4711"))
    assert answer["message"].startswith(f"revision {OLD} pruned: ")
    for sink in (standby.alertmanager, standby.chat):  # the previous leader's alert ends
        (resolution,) = sink.prune_ready()
        assert resolution.identity() == fired.identity()
        assert resolution.starts_at == fired.starts_at and resolution.ends_at is not None
    standby.run_tick()
    assert standby.status()["prune"]["state"] == "pruned"
    assert len(standby.notes("Pruned")) == 1  # the approval told it; the pass does not again
