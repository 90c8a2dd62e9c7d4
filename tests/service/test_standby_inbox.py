"""A standby accepts an operator's verb and the leader carries it out.

Why: ``serve`` runs as several replicas behind one Service and only the Lease holder acts;
an on-call engineer's ``pause`` lands on any of them. A standby queues the verb in the
state ConfigMap's ``inbox`` key and answers "queued" (HTTP 202, CLI exit 0); the leader
applies it on its next pass through the same methods the HTTP API calls, records what it
did in the timeline and removes exactly that entry. These tests run real ``UpgradeService``
replicas with real Leases through the Kubernetes adapter and the official client against
the simulated mesh's API server, the standby behind its real HTTP API. Passes are driven
by calling ``tick``; nothing waits on the clock.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from kubernetes import client as kube
from kubernetes.client.exceptions import ApiException

from analyzer.adapters.kubernetes import ConfigMapStateStore, KubernetesCluster
from analyzer.adapters.lease import KubernetesLease
from analyzer.cli import main
from analyzer.core.upgrade import Outcome
from analyzer.core.verdicts import Verdict
from analyzer.service.control import Requester, UpgradeRequestBody
from analyzer.service.leadership import LeaderElector, Leadership
from analyzer.sim.scenario import ApiErrorFault
from analyzer.views.http_api import HttpServer, TokenCheck, create_app
from tests.fixtures.service_replicas import (
    CONFIGMAP,
    NAMESPACE,
    state_store,
    upgrade_service,
)
from tests.fixtures.sim_fixtures import api_client_for, fast_scenario

pytestmark = pytest.mark.timeout(180)

TOKEN = "inbox-test-token"
INCONCLUSIVE_FIRST = lambda _n, i: Verdict.INCONCLUSIVE if i == 1 else Verdict.PASS  # noqa: E731


class WriteBetweenReadAndWrite:
    """The inbox's store, with ``meanwhile()`` run once between its first read and its
    first conditional write: another replica's write lands exactly in that gap."""

    def __init__(self, store: ConfigMapStateStore, meanwhile) -> None:
        self.store = store
        self.meanwhile = meanwhile
        self.fired = False

    def read_versioned(self):
        return self.store.read_versioned()

    def write_if_unchanged(self, document, version):
        if not self.fired:
            self.fired = True
            self.meanwhile()
        return self.store.write_if_unchanged(document, version)


class Replica:
    """One ``UpgradeService`` as ``serve`` wires it (Lease, state ConfigMap keys ``state``,
    ``service``, ``timeline``, ``inbox``) on the simulated mesh's API server."""

    def __init__(self, mesh, work: Path, name: str, *, script=lambda _n, _i: Verdict.PASS,
                 inbox_wrapper=None, attempts: int = 6):  # fmt: skip
        self.name = name
        self.api_client = api_client_for(mesh)
        self.cluster = KubernetesCluster(
            self.api_client, request_timeout=10, attempts=attempts, backoff=0.01
        )
        lease = KubernetesLease(self.api_client, NAMESPACE, "canary-analyzer")
        inbox_store = state_store(self.cluster, "inbox")
        self.service_store = state_store(self.cluster, "service")
        self.service = upgrade_service(
            self.cluster, work, name, script=script,
            leadership=Leadership(LeaderElector(lease, name, timedelta(seconds=60))),
            timeline_store=state_store(self.cluster, "timeline"),
            service_store=self.service_store,
            inbox_store=inbox_wrapper(inbox_store) if inbox_wrapper else inbox_store,
        )  # fmt: skip
        self.http: HttpServer | None = None

    def run_tick(self) -> None:
        """One loop pass, then wait for the engine worker it may have started."""
        self.service.tick()
        assert self.service.wait_idle(timeout=120), "engine worker did not stop"

    def serve_http(self, token_file: Path, user_header: str | None = None) -> str:
        app = create_app(self.service, self.service.metrics, TokenCheck(token_file),
                         user_header=user_header)  # fmt: skip
        self.http = HttpServer(app, "127.0.0.1", 0)
        self.http.start()
        return f"http://127.0.0.1:{self.http.bound_port}"

    def status(self) -> dict:
        return self.service.status()

    def stop(self) -> None:
        if self.http is not None:
            self.http.stop()
            self.http = None
        if self.api_client is not None:
            self.service.stop()
            self.api_client.close()
            self.api_client = None


@pytest.fixture
def cluster(make_mesh, tmp_path):
    """``cluster.start(name, **options)`` → a Replica on one shared mesh; all stopped after.
    ``cluster.leader`` and ``cluster.standby`` are the first two, the first one leading."""
    mesh = make_mesh(fast_scenario(regressions=[]))
    started: list[Replica] = []
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")

    class Cluster:
        def __init__(self) -> None:
            self.mesh = mesh
            self.token_file = token_file

        def start(self, name: str, **options) -> Replica:
            replica = Replica(mesh, tmp_path, name, **options)
            started.append(replica)
            replica.run_tick()
            return replica

        def pair(self, **leader_options) -> tuple[Replica, Replica]:
            leader = self.start("replica-a", **leader_options)
            standby = self.start("replica-b")
            assert leader.status()["is_leader"] and not standby.status()["is_leader"]
            assert standby.status()["phase"] == "standby"
            return leader, standby

    yield Cluster()
    for replica in started:
        replica.stop()


def _configmap_data(mesh) -> dict[str, str]:
    """The state ConfigMap's data, read with the official client ({} before its first write)."""
    api_client = api_client_for(mesh)
    try:
        configmap = kube.CoreV1Api(api_client).read_namespaced_config_map(CONFIGMAP, NAMESPACE)
    except ApiException as error:
        if error.status == 404:
            return {}
        raise
    finally:
        api_client.close()
    return dict(configmap.data or {})


def _inbox(mesh) -> list[dict]:
    raw = _configmap_data(mesh).get("inbox")
    return json.loads(raw) if raw else []


def _notes(replica: Replica, reason: str) -> list[str]:
    return [item["message"] for item in replica.status()["timeline"] if item["reason"] == reason]


def _post(url: str, verb: str, body: dict | None = None) -> httpx.Response:
    return httpx.post(
        f"{url}/api/{verb}", headers={"Authorization": f"Bearer {TOKEN}"}, json=body or {}
    )


def test_a_verb_posted_to_a_standby_is_queued_and_the_leader_applies_it_on_its_next_pass(
    cluster,
):
    leader, standby = cluster.pair(script=INCONCLUSIVE_FIRST)
    leader.service.request_upgrade(UpgradeRequestBody(to_revision="1-15-4"))
    leader.run_tick()
    assert leader.status()["phase"] == "held"
    upgrade_id = leader.service.view.state.plan.upgrade_id
    url = standby.serve_http(cluster.token_file)

    answer = _post(url, "approve")
    assert answer.status_code == 202
    queued = answer.json()
    assert queued["queued"] is True
    assert queued["message"] == "queued for the leader replica-a: approve"
    assert [entry["id"] for entry in _inbox(cluster.mesh)] == [queued["id"]]
    entry = _inbox(cluster.mesh)[0]
    assert (entry["verb"], entry["via"]) == ("approve", "replica-b") and entry["at"]
    waiting = standby.status()["queued_requests"]  # on-call sees the verb waiting
    assert [(r["id"], r["verb"]) for r in waiting] == [(queued["id"], "approve")]
    assert leader.status()["phase"] == "held"  # nothing happened yet

    leader.run_tick()  # its next pass: approves, and the upgrade goes on to the end
    assert leader.service.view.state.outcome is Outcome.PROMOTED
    applied = _notes(leader, "QueuedRequestApplied")
    assert applied == [
        f"approve queued via standby replica-b at {entry['at']}: applied: "
        f"approved: upgrade {upgrade_id} goes on in the window"
    ]
    # removed once applied; the other keys of the ConfigMap are intact and current
    data = _configmap_data(cluster.mesh)
    assert json.loads(data["inbox"]) == []
    stored_state = json.loads(data["state"])["state"]
    assert (stored_state["plan"]["upgrade_id"], stored_state["outcome"]) == (upgrade_id, "promoted")
    assert json.loads(data["timeline"])["upgrade_id"] == upgrade_id
    assert applied[0] in [item["message"] for item in json.loads(data["timeline"])["items"]]
    assert json.loads(data["service"])["paused"] is False
    assert leader.status()["queued_requests"] == []
    standby.run_tick()
    assert standby.status()["queued_requests"] == []
    assert applied[0] in _notes(standby, "QueuedRequestApplied")  # the standby tells it too

    leader.run_tick()  # applied exactly once: nothing left to apply
    assert _notes(leader, "QueuedRequestApplied") == applied


def test_pause_and_resume_through_a_standby_reach_the_leader_in_order(cluster):
    leader, standby = cluster.pair()
    assert standby.service.pause().to_json()["queued"] is True
    assert standby.service.resume().to_json()["queued"] is True
    standby.service.pause()
    leader.run_tick()
    assert leader.service.memory.paused is True  # pause, resume, pause: applied in order
    assert [m.split(": ", 1)[1] for m in _notes(leader, "QueuedRequestApplied")] == [
        "applied: paused: no new step starts until resume (a rollback still completes)",
        "applied: resumed",
        "applied: paused: no new step starts until resume (a rollback still completes)",
    ]
    assert json.loads(_configmap_data(cluster.mesh)["service"])["paused"] is True
    assert _inbox(cluster.mesh) == []


def test_an_upgrade_requested_through_a_standby_runs_on_the_leader(cluster):
    leader, standby = cluster.pair()
    answer = standby.service.request_upgrade(UpgradeRequestBody(to_revision="1-15-4"))
    assert answer.message == "queued for the leader replica-a: upgrade"
    assert _inbox(cluster.mesh)[0]["body"] == {"to_revision": "1-15-4"}
    leader.run_tick()  # takes the request and, the window being open, runs it
    assert leader.service.view.state.outcome is Outcome.PROMOTED
    assert leader.service.view.state.plan.to_revision == "1-15-4"
    # the upgrade's own timeline (and so its report) says where the request came from
    assert any("upgrade queued via standby replica-b" in note
               for note in _notes(leader, "QueuedRequestApplied")), leader.status()["timeline"]  # fmt: skip


def test_verbs_two_standbys_queue_at_once_are_all_kept_and_all_applied(cluster):
    leader, first = cluster.pair()
    second = cluster.start("replica-c")
    each = 5
    start = threading.Barrier(2)
    answers: dict[str, list] = {"replica-b": [], "replica-c": []}

    def queue(standby: Replica) -> None:
        start.wait(timeout=30)
        for _ in range(each):
            answers[standby.name].append(standby.service.pause())

    threads = [threading.Thread(target=queue, args=(s,)) for s in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    ids = {answer.request_id for queued in answers.values() for answer in queued}
    assert len(ids) == 2 * each
    assert {entry["id"] for entry in _inbox(cluster.mesh)} == ids  # none lost
    leader.run_tick()
    assert len(_notes(leader, "QueuedRequestApplied")) == 2 * each
    assert _inbox(cluster.mesh) == []


def test_a_write_between_the_standbys_read_and_its_write_loses_nothing(cluster):
    """Between the standby's read of the inbox and its conditional write, the leader writes
    its memory and another standby queues: the write conflicts, is redone on a fresh read,
    and the inbox holds both verbs while the leader's key keeps what the leader wrote."""
    leader, _ = cluster.pair()
    other = cluster.start("replica-c")

    def meanwhile() -> None:
        leader.service_store.save({**leader.service.memory.to_document(), "paused": True})
        other.service.resume()

    standby = cluster.start(
        "replica-d", inbox_wrapper=lambda store: WriteBetweenReadAndWrite(store, meanwhile)
    )
    writes_before = len(cluster.mesh.writes())
    queued = standby.service.pause()
    assert [entry["verb"] for entry in _inbox(cluster.mesh)] == ["resume", "pause"]
    assert _inbox(cluster.mesh)[1]["id"] == queued.request_id
    conflicts = [w for w in cluster.mesh.writes()[writes_before:] if w.status_code == 409]
    assert conflicts, "the interleaved write should have made the first attempt conflict"
    assert json.loads(_configmap_data(cluster.mesh)["service"])["paused"] is True


def test_a_verb_queued_while_the_leader_removes_applied_ones_survives(cluster):
    """The leader applies the inbox; before its removal lands a standby queues another verb.
    Exactly the applied entry goes; the new one is applied on the next pass."""
    late: list = []
    leader = cluster.start(
        "replica-a",
        inbox_wrapper=lambda store: WriteBetweenReadAndWrite(
            store, lambda: late.append(standby.service.resume())
        ),
    )
    standby = cluster.start("replica-b")
    standby.service.pause()
    leader.run_tick()
    assert leader.service.memory.paused is True
    assert [entry["id"] for entry in _inbox(cluster.mesh)] == [late[0].request_id]
    leader.run_tick()
    assert leader.service.memory.paused is False
    assert _inbox(cluster.mesh) == []


@pytest.fixture
def service_log(caplog):
    """Records of the service logger, whatever configured the product's loggers."""
    logger = logging.getLogger("canary_analyzer.service")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="canary_analyzer.service")
    yield caplog
    logger.removeHandler(caplog.handler)


def test_a_verb_the_leader_refuses_is_dropped_with_its_reason(cluster, service_log):
    leader, standby = cluster.pair()
    queued = standby.service.approve()  # nothing is held
    assert queued.to_json()["queued"] is True
    leader.run_tick()
    refused = _notes(leader, "QueuedRequestRefused")
    assert len(refused) == 1
    assert refused[0].startswith("approve queued via standby replica-b at ")
    assert refused[0].endswith(": refused: nothing to approve: no upgrade is held")
    assert any(
        r.levelno == logging.WARNING and r.getMessage() == refused[0] for r in service_log.records
    )
    assert _inbox(cluster.mesh) == []  # dropped, not retried
    leader.run_tick()
    assert _notes(leader, "QueuedRequestRefused") == refused
    standby.run_tick()
    assert _notes(standby, "QueuedRequestRefused") == refused  # visible on every replica
    assert standby.status()["queued_requests"] == []


def test_the_cli_against_a_standby_prints_queued_and_exits_0(cluster, capsys):
    leader, standby = cluster.pair()
    url = standby.serve_http(cluster.token_file)
    assert main(["pause", "--url", url, "--token-file", str(cluster.token_file)]) == 0
    assert capsys.readouterr().out.strip() == "queued for the leader replica-a: pause"
    assert main(["resume", "--url", url, "--token-file", str(cluster.token_file),
                 "--output", "json"]) == 0  # fmt: skip
    answer = json.loads(capsys.readouterr().out)
    assert answer["queued"] is True and answer["message"].endswith(": resume")
    assert main(["status", "--url", url]) == 0
    assert "queued for the leader: pause (via replica-b" in capsys.readouterr().out
    leader.run_tick()
    assert leader.service.memory.paused is False  # paused, then resumed
    assert len(_notes(leader, "QueuedRequestApplied")) == 2


def test_a_standby_that_cannot_queue_refuses_and_names_the_leader(cluster, capsys):
    leader, _ = cluster.pair()
    standby = cluster.start("replica-c", attempts=2)
    cluster.mesh.set_fault(
        ApiErrorFault(status=503, count=100_000, methods=["GET", "PATCH", "POST"],
                      path_contains=f"/configmaps/{CONFIGMAP}")
    )  # fmt: skip
    url = standby.serve_http(cluster.token_file)
    answer = _post(url, "pause")
    assert answer.status_code == 409
    detail = answer.json()["detail"]
    assert "standby" in detail and "send the request to the leader (replica-a)" in detail
    assert main(["pause", "--url", url, "--token-file", str(cluster.token_file)]) == 2
    assert "replica-a" in capsys.readouterr().err
    cluster.mesh.clear_faults()
    assert _inbox(cluster.mesh) == []
    leader.run_tick()
    assert leader.service.memory.paused is False


def test_a_verb_queued_by_a_standby_keeps_who_sent_it_and_why(cluster):
    leader, standby = cluster.pair(script=lambda _n, _i: Verdict.INCONCLUSIVE)
    leader.service.request_upgrade(UpgradeRequestBody(to_revision="1-15-4"))
    leader.run_tick()
    assert leader.status()["phase"] == "held"
    url = standby.serve_http(cluster.token_file)
    answer = httpx.post(
        f"{url}/api/abort",
        headers={"Authorization": f"Bearer {TOKEN}", "X-Canary-Actor": "erin",
                 "X-Canary-Reason": "db migration"},
    )  # fmt: skip
    assert answer.status_code == 202 and answer.json()["requested_by"] == "erin"
    entry = _inbox(cluster.mesh)[0]
    assert (entry["requested_by"], entry["reason"]) == ("erin", "db migration")
    leader.run_tick()  # applies the abort in erin's name, and rolls back
    assert leader.service.wait_idle(timeout=120)
    state = leader.service.view.state
    assert state.outcome is Outcome.ROLLED_BACK
    assert state.rollback_reason == "aborted by erin: db migration"
    assert _notes(leader, "QueuedRequestApplied")[0].startswith(
        "abort by erin (db migration) queued via standby replica-b at "
    )


def test_a_rollback_sent_to_a_standby_during_the_soak_is_applied_by_the_leader(cluster):
    leader, standby = cluster.pair()
    leader.service.request_upgrade(UpgradeRequestBody(to_revision="1-15-4"))
    leader.run_tick()
    assert leader.service.view.state.outcome is Outcome.PROMOTED
    answer = standby.service.rollback(Requester(actor="bob", reason="p99 up since noon"))
    assert answer.message == "queued for the leader replica-a: rollback"
    leader.run_tick()  # applies it: the engine's rollback runs to the end
    leader.run_tick()
    state = leader.service.view.state
    assert state.outcome is Outcome.ROLLED_BACK
    assert "rolled back after promotion by bob: p99 up since noon" in state.rollback_reason
    for namespace in (*state.plan.gateway_namespaces, *state.moved):
        revisions = cluster.mesh.proxy_revisions(namespace)
        assert set(revisions) == {"1-14-6"}, (namespace, revisions)
    assert any(note.startswith("rollback by bob") and "queued via standby replica-b" in note
               for note in _notes(leader, "QueuedRequestApplied")), _notes(
        leader, "QueuedRequestApplied")


def _item(replica: Replica, reason: str) -> dict:
    (item,) = [i for i in replica.status()["timeline"] if i["reason"] == reason]
    return item


def test_a_verb_through_the_proxy_keeps_its_authenticated_sender_through_the_queue(
    cluster, service_log
):
    """Through an authenticating proxy (``service.user_header``) the sender is the proxy's
    user, the header that named it is ``authenticated_by`` and a different name the caller
    claimed is ``claimed_by``. Sent to a standby, the verb keeps all of it through the inbox
    and the leader records it exactly as the same verb sent to the leader itself."""
    leader, standby = cluster.pair()
    headers = {"Authorization": f"Bearer {TOKEN}", "X-Remote-User": "alice@example.com",
               "X-Canary-Actor": "mallory", "X-Canary-Reason": "db migration"}  # fmt: skip
    sender = {"requested_by": "alice@example.com", "reason": "db migration",
              "authenticated_by": "X-Remote-User", "claimed_by": "mallory"}  # fmt: skip
    to_leader = leader.serve_http(cluster.token_file, user_header="X-Remote-User")
    to_standby = standby.serve_http(cluster.token_file, user_header="X-Remote-User")

    direct = httpx.post(f"{to_leader}/api/pause", headers=headers)
    assert direct.status_code == 200
    queued = httpx.post(f"{to_standby}/api/resume", headers=headers)
    assert queued.status_code == 202
    assert {k: queued.json()[k] for k in sender} == sender
    entry = _inbox(cluster.mesh)[0]
    assert {k: entry.get(k) for k in sender} == sender  # kept in the ConfigMap's inbox
    leader.run_tick()

    paused, resumed = _item(leader, "Paused"), _item(leader, "Resumed")
    assert paused["message"] == "paused by alice@example.com: db migration"
    assert resumed["message"] == "resumed by alice@example.com: db migration"
    assert paused["requester"] == resumed["requester"] == sender
    assert _item(leader, "QueuedRequestApplied")["requester"] == sender
    # the leader's log line for each verb names the same sender, header and claim
    logged = {r.getMessage(): r.fields for r in service_log.records if hasattr(r, "fields")}
    assert logged[paused["message"]] == logged[resumed["message"]] == sender
    # the kept timeline (every replica shows it) holds the same
    standby.run_tick()
    assert _item(standby, "Resumed")["requester"] == sender
