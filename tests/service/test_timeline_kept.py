"""The upgrade timeline survives a restart of the service and a change of leader.

Why: on-call reads the night's story (tag move, restarts, verdicts, rollback notes) in
``/api/status`` and the upgrade report; a new pod must still tell all of it. These tests run
real ``UpgradeService`` instances through the Kubernetes adapter and the official client
against the simulated mesh's API server, sharing one state ConfigMap, as replicas or
successive pods do. Judging is scripted (this is about what is kept, not about metrics);
the clock is real with second-long windows; tests wait on conditions, never on the clock.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kubernetes import client as kube
from kubernetes.client.exceptions import ApiException
from markupsafe import escape

from analyzer.adapters.kubernetes import KubernetesCluster
from analyzer.adapters.lease import KubernetesLease
from analyzer.core.upgrade import Outcome
from analyzer.core.verdicts import Verdict
from analyzer.service.control import UpgradeRequestBody
from analyzer.service.leadership import LeaderElector, Leadership
from analyzer.service.night_plan import NightOutlook
from analyzer.sim.scenario import ApiErrorFault
from tests.fixtures.polling import wait_until
from tests.fixtures.service_replicas import (
    CONFIGMAP,
    NAMESPACE,
    state_store,
    upgrade_service,
)
from tests.fixtures.sim_fixtures import api_client_for, fast_scenario

pytestmark = pytest.mark.timeout(180)

class Replica:
    """One ``UpgradeService`` as ``serve`` wires it, on the simulated mesh's API server."""

    def __init__(self, mesh, work: Path, name: str, *, script=lambda _n, _i: Verdict.PASS,
                 lease: bool = False, timeline_configmap: str = CONFIGMAP,
                 timeline_attempts: int = 6, outlook=None):  # fmt: skip
        self.clients = [api_client_for(mesh), api_client_for(mesh)]
        self.cluster = KubernetesCluster(self.clients[0], request_timeout=10)
        # the timeline's own connection: in the failure test its retries are short
        timeline_cluster = KubernetesCluster(
            self.clients[1], request_timeout=10, attempts=timeline_attempts, backoff=0.01
        )
        leadership = None
        if lease:
            kube_lease = KubernetesLease(self.clients[0], NAMESPACE, "canary-analyzer")
            leadership = Leadership(LeaderElector(kube_lease, name, timedelta(minutes=10)))
        self.service = upgrade_service(
            self.cluster, work, name, script=script, leadership=leadership,
            timeline_store=state_store(timeline_cluster, "timeline", timeline_configmap),
            outlook=outlook,
        )  # fmt: skip

    def run_tick(self) -> None:
        """One loop pass, then wait for the engine worker it may have started."""
        self.service.tick()
        assert self.service.wait_idle(timeout=120), "engine worker did not stop"

    def timeline(self) -> list[dict]:
        return self.service.status()["timeline"]

    def stop(self) -> None:
        if self.clients:
            self.service.stop()
            for api_client in self.clients:
                api_client.close()
            self.clients = []


@pytest.fixture
def replicas(make_mesh, tmp_path):
    """``start(name, **options)`` → a Replica on one shared mesh; all stopped after."""
    mesh = make_mesh(fast_scenario(regressions=[]))
    started: list[Replica] = []

    def start(name: str, **options) -> Replica:
        replica = Replica(mesh, tmp_path, name, **options)
        started.append(replica)
        return replica

    start.mesh = mesh  # type: ignore[attr-defined]
    yield start
    for replica in started:
        replica.stop()


def _stored_timeline(mesh, name: str = CONFIGMAP) -> dict | None:
    api_client = api_client_for(mesh)
    try:
        configmap = kube.CoreV1Api(api_client).read_namespaced_config_map(name, NAMESPACE)
    finally:
        api_client.close()
    raw = (configmap.data or {}).get("timeline")
    return json.loads(raw) if raw else None


def _timeline_writes(mesh, name: str = CONFIGMAP) -> list[dict]:
    """The timeline documents clients wrote to the ConfigMap, in order."""
    return [
        json.loads(write.body["data"]["timeline"])
        for write in mesh.writes()
        if write.path.endswith(f"/configmaps/{name}")
        and isinstance(write.body, dict)
        and "timeline" in (write.body.get("data") or {})
    ]


def _report_row(item: dict) -> str:
    """A timeline row of the upgrade report, as ``/api/status`` gave the item."""
    at = datetime.fromisoformat(item["at"]).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    cells = (at, item["reason"], item["namespace"] or "", item["message"])
    return '<td class="num">' + "</td><td>".join(str(escape(cell)) for cell in cells) + "</td>"


def _messages(timeline: list[dict]) -> list[str]:
    return [item["message"] for item in timeline]


def test_a_restarted_service_shows_the_timeline_so_far_and_its_report_tells_all(replicas):
    inconclusive_first = lambda _n, i: Verdict.INCONCLUSIVE if i == 1 else Verdict.PASS  # noqa: E731
    first = replicas("pod-1", script=inconclusive_first)
    first.service.request_upgrade(UpgradeRequestBody(to_revision="1-15-4"))
    first.run_tick()
    assert first.service.status()["phase"] == "held"
    before = first.timeline()
    assert any("tag" in m for m in _messages(before)) and len(before) >= 4
    first.stop()  # the pod goes away; a new one starts on the same ConfigMap

    second = replicas("pod-2")  # its judging passes
    assert second.timeline() == before  # before its first pass: loaded at start
    second.run_tick()
    assert second.timeline() == before  # as leader it goes on with the same timeline
    second.service.approve()
    second.run_tick()
    state = second.service.view.state
    assert state.outcome is Outcome.PROMOTED
    after = second.timeline()
    assert after[: len(before)] == before and len(after) > len(before)
    # the report the second pod wrote tells the night from the first note on, times included
    report = (second.service.reports_dir / f"upgrade-{state.plan.upgrade_id}.html").read_text()
    missing = [item["message"] for item in before if _report_row(item) not in report]
    assert not missing, f"rows of the first pod's timeline missing from the report: {missing}"


def test_a_quiet_namespace_is_named_in_the_new_upgrades_timeline_and_report(replicas):
    asked = []

    def too_quiet(rules, namespaces, now):  # what serve wires to Prometheus (one query)
        asked.append((rules.names(), tuple(namespaces)))
        return NightOutlook(thin=(f"namespace {namespaces[-1]} served ~4 requests in the last 1s",))

    pod = replicas("pod-1", outlook=too_quiet)
    pod.service.request_upgrade(UpgradeRequestBody(to_revision="1-15-4"))
    pod.run_tick()
    state = pod.service.view.state
    assert state.outcome is Outcome.PROMOTED  # a warning, not a gate
    (rules, planned), = asked
    assert "request-volume" in rules and planned == state.plan.namespaces
    notes = [item for item in pod.timeline() if item["reason"] == "ThinEvidence"]
    assert [item["message"] for item in notes] == [
        f"namespace {planned[-1]} served ~4 requests in the last 1s"
    ]
    assert notes[0]["warning"] is True
    report = (pod.service.reports_dir / f"upgrade-{state.plan.upgrade_id}.html").read_text()
    assert _report_row(notes[0]) in report


def test_a_new_leader_goes_on_with_the_timeline_of_the_one_before(replicas):
    leader = replicas("replica-a", lease=True)
    standby = replicas("replica-b", lease=True)
    leader.run_tick()
    standby.run_tick()
    assert leader.service.status()["is_leader"] and not standby.service.status()["is_leader"]
    leader.service.request_upgrade(UpgradeRequestBody(to_revision="1-15-4"))
    leader.run_tick()
    assert leader.service.view.state.outcome is Outcome.PROMOTED
    told = leader.timeline()
    assert told
    standby.run_tick()
    assert standby.timeline() == told  # a standby shows the leader's timeline
    leader.stop()  # releases the Lease
    wait_until(
        lambda: (standby.run_tick(), standby.service.status()["is_leader"])[1],
        timeout=30,
        message="replica-b to take the released Lease",
    )
    assert standby.service.status()["phase"] == "done"
    assert standby.timeline() == told


def test_the_timeline_is_written_when_items_are_added_and_only_then(replicas):
    mesh = replicas.mesh
    service = replicas("solo")
    service.service.request_upgrade(UpgradeRequestBody(to_revision="1-15-4"))
    service.run_tick()
    assert service.service.view.state.outcome is Outcome.PROMOTED
    writes = _timeline_writes(mesh)
    assert writes, "the timeline was never written"
    counts = [len(document["items"]) for document in writes]
    assert counts == sorted(set(counts)), f"a write without new items: {counts}"
    stored = _stored_timeline(mesh)
    assert stored["upgrade_id"] == service.service.view.state.plan.upgrade_id
    assert [item["message"] for item in stored["items"]] == _messages(service.timeline())
    for _ in range(5):
        service.run_tick()
    assert len(_timeline_writes(mesh)) == len(writes)  # nothing new: no write per pass


@pytest.fixture
def timeline_log(caplog):
    """Warnings of the timeline logger, whatever configured the product's loggers."""
    logger = logging.getLogger("canary_analyzer.timeline")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.WARNING, logger="canary_analyzer.timeline")
    yield caplog
    logger.removeHandler(caplog.handler)


def test_a_failing_timeline_write_is_logged_the_upgrade_goes_on_and_it_is_written_later(
    replicas, timeline_log
):
    mesh = replicas.mesh
    name = "canary-analyzer-timeline"
    mesh.set_fault(
        ApiErrorFault(status=503, count=100_000, methods=["PATCH", "POST"],
                      path_contains=f"/configmaps/{name}")
    )  # fmt: skip
    service = replicas("solo", timeline_configmap=name, timeline_attempts=2)
    service.service.request_upgrade(UpgradeRequestBody(to_revision="1-15-4"))
    service.run_tick()
    assert service.service.view.state.outcome is Outcome.PROMOTED
    told = service.timeline()
    assert told, "the timeline is kept in memory"
    assert any(
        "could not write the upgrade timeline" in record.getMessage()
        for record in timeline_log.records
    )
    with pytest.raises(ApiException) as missing:
        _stored_timeline(mesh, name)
    assert missing.value.status == 404  # every write failed
    mesh.clear_faults()
    service.run_tick()  # the next pass writes what is still unwritten
    stored = _stored_timeline(mesh, name)
    assert [item["message"] for item in stored["items"]] == _messages(told)
    written = len(_timeline_writes(mesh, name))
    service.run_tick()
    assert len(_timeline_writes(mesh, name)) == written
