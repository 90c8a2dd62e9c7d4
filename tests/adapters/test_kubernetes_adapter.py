"""The Kubernetes adapter and preflight against the simulated mesh's fake API over HTTP.

Why: the tag move, restarts with step ids, rollout rules, proxy checks, retries on 409/500
and "preflight failures change nothing" must hold on the wire format the official client
speaks — never on mocked client objects.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from analyzer.adapters.kubernetes import ConfigMapStateStore
from analyzer.core.upgrade import Outcome, Target
from analyzer.service.clock import VirtualClock
from analyzer.service.engine import DryRunCluster, DryRunJudging, MemoryStateStore, UpgradeEngine
from analyzer.service.preflight import PreflightError, build_plan, preflight
from analyzer.settings import Settings
from analyzer.sim.scenario import ApiErrorFault
from tests.fixtures.polling import wait_until
from tests.fixtures.sim_fixtures import GATEWAY, api_client_for, make_mesh, mesh, upgrade_request  # noqa: F401


def test_discovers_revisions_tags_and_namespaces(cluster):
    assert set(cluster.revisions()) == {"1-14-6", "1-15-4"}
    assert cluster.tags()["default"].revision == "1-14-6"
    checked = preflight(cluster, upgrade_request())
    assert checked.from_revision == "1-14-6"
    assert checked.namespaces == ("bar", "baz", "foo")


def test_move_tag_rewrites_mwc_and_validator(cluster, mesh):  # noqa: F811
    cluster.move_tag("default", "1-15-4")
    admission = cluster.admission
    mwc = cluster._json(admission.read_mutating_webhook_configuration, "istio-revision-tag-default")
    assert mwc["metadata"]["labels"]["istio.io/rev"] == "1-15-4"
    assert len(mwc["webhooks"]) == 4
    assert {w["clientConfig"]["service"]["name"] for w in mwc["webhooks"]} == {"istiod-1-15-4"}
    vwc = cluster._json(admission.read_validating_webhook_configuration, "istiod-default-validator")
    assert vwc["metadata"]["labels"]["istio.io/rev"] == "1-15-4"
    assert vwc["webhooks"][0]["clientConfig"]["service"]["path"] == "/validate"


def test_restart_is_idempotent_per_step_and_rollout_reaches_new_proxies(cluster, mesh):  # noqa: F811
    cluster.move_tag("default", "1-15-4")
    targets = [Target(namespace="foo"), Target(namespace="baz"), GATEWAY]
    first = cluster.restart(targets, "u.wave-1", datetime.now(UTC))
    again = cluster.restart(targets, "u.wave-1", datetime.now(UTC))
    assert again == first
    assert set(mesh.restart_counts().values()) == {1}
    wait_until(lambda: cluster.rollout_status(targets).complete, timeout=30, message="rollout")
    status = wait_until(
        lambda: (s := cluster.proxy_status(targets, "1-15-4")).checked and not s.mismatched and s,
        timeout=30,
        message="new proxies",
    )
    assert status.checked >= 5
    assert cluster.proxy_status([Target(namespace="bar")], "1-15-4").mismatched


def test_conflicts_and_server_errors_are_retried(cluster, mesh):  # noqa: F811
    mesh.set_fault(ApiErrorFault(status=409, count=2, methods=["PATCH"]))
    mesh.set_fault(ApiErrorFault(status=500, count=2, methods=["PUT"]))
    cluster.move_tag("default", "1-15-4")
    cluster.restart([Target(namespace="foo")], "s", datetime.now(UTC))
    assert cluster.tags()["default"].revision == "1-15-4"
    assert sum(mesh.restart_counts().values()) == 1


def test_state_configmap_round_trip(cluster):
    store = ConfigMapStateStore(cluster, "canary-analyzer-state", "istio-system")
    assert store.load() is None
    store.save({"format": 1, "state": {"a": 1}})
    store.save({"format": 1, "state": {"a": 2}})
    assert store.load() == {"format": 1, "state": {"a": 2}}


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"to_revision": "1-99-0"}, "unknown revision 1-99-0"),
        ({"tag": "canary"}, "tag canary not found"),
        ({"namespaces": ("foo", "nope")}, "unknown namespace nope"),
        ({"from_revision": "1-15-4"}, "not at --from-revision 1-15-4"),
        ({"gateways": (Target(namespace="x", kind="Deployment", name="gw"),)}, "gateway"),
    ],
)
def test_preflight_failures_patch_nothing(cluster, mesh, changes, expected):  # noqa: F811
    before = len(mesh.writes())
    with pytest.raises(PreflightError, match=expected):
        preflight(cluster, upgrade_request(**changes))
    assert len(mesh.writes()) == before


def test_dry_run_patches_nothing(cluster, mesh):  # noqa: F811
    before = len(mesh.writes())
    clock = VirtualClock(datetime.now(UTC))
    checked = preflight(cluster, upgrade_request())
    plan = build_plan(upgrade_request(), checked, Settings(), clock.now())
    dry = DryRunCluster(cluster, clock)
    state = UpgradeEngine(dry, MemoryStateStore(), DryRunJudging(), clock).run(plan)
    assert state.outcome is Outcome.PROMOTED
    assert len(mesh.writes()) == before
    assert dry.writes[0] == "would point tag default at revision 1-15-4"
