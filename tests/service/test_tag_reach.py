"""What the tag reaches, read through the official client from the simulated API server, and
what preflight and a rollback make of it.

Why: the tag injects every pod its webhooks select (revision-tags-mwc.yaml in Istio's
istio-discovery chart; the API server matches namespaceSelector against the namespace's
labels and objectSelector against the pod's, k8s.io/apiserver
pkg/admission/plugin/webhook/predicates/{namespace,object}/matcher.go), not only the
namespaces labelled istio.io/rev=<tag>. The simulated mesh injects by its own matcher
(analyzer/sim/injection.py), so the pods' real proxies are an independent check of the
product's reach. Namespaces, Deployments and a bare pod the scenarios lack are created
through the client, as a user would.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from kubernetes import client as kube

from analyzer.core.reach import compute_reach
from analyzer.core.upgrade import Outcome, Target, UpgradeStyle
from analyzer.core.verdicts import Verdict
from analyzer.service.clock import RealClock
from analyzer.service.engine import LogNotifier, MemoryStateStore, UpgradeEngine
from analyzer.service.preflight import PreflightError, build_plan, preflight
from analyzer.settings import Settings
from tests.fixtures.fakes import ScriptedJudging
from tests.fixtures.polling import wait_until
from tests.fixtures.sim_fixtures import (  # noqa: F401
    GATEWAY,
    api_client_for,
    fast_scenario,
    make_mesh,
    upgrade_request,
)

pytestmark = pytest.mark.timeout(120)

INJECT = "sidecar.istio.io/inject"


def scenario():
    return fast_scenario(
        namespaces=[
            {"name": "foo", "workloads": [{"name": "web", "replicas": 2}]},
            {
                "name": "legacy",
                "labels": {"istio-injection": "enabled"},
                "workloads": [{"name": "api", "replicas": 2}],
            },
            {"name": "plain", "labels": {}, "workloads": [{"name": "batch", "replicas": 1}]},
            {
                "name": "amb",
                "labels": {"istio.io/dataplane-mode": "ambient"},
                "workloads": [{"name": "web", "replicas": 1}],
            },
        ],
        # the gateway's namespace carries no injection label: its pods' own label reaches it
        gateway={
            "name": "istio-ingressgateway",
            "namespace": "istio-ingress",
            "replicas": 1,
            "labels": {},
        },
        regressions=[],
    )


def _deployment(name: str, labels: dict[str, str]) -> dict:
    selector = {"app": name}
    return {
        "metadata": {"name": name, "labels": selector},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": {**selector, **labels}},
                "spec": {"containers": [{"name": "app", "image": "example/app:1"}]},
            },
        },
    }


@pytest.fixture
def mesh(make_mesh):  # noqa: F811
    """The scenario plus, in the unlabelled namespace ``plain``, a Deployment that opts in
    with ``sidecar.istio.io/inject=true``, one pinned to revision 1-14-6, and a bare pod."""
    mesh = make_mesh(scenario())
    api = api_client_for(mesh)
    try:
        apps, core = kube.AppsV1Api(api), kube.CoreV1Api(api)
        apps.create_namespaced_deployment("plain", _deployment("meshed", {INJECT: "true"}))
        apps.create_namespaced_deployment(
            "plain", _deployment("pinned", {INJECT: "true", "istio.io/rev": "1-14-6"})
        )
        core.create_namespaced_pod("plain", {
            "metadata": {"name": "lonely", "labels": {INJECT: "true"}},
            "spec": {"containers": [{"name": "app", "image": "example/app:1"}]},
        })  # fmt: skip
        wait_until(
            lambda: mesh.proxy_revisions("plain").get("1-14-6", 0) >= 3,
            timeout=30,
            message="meshed, pinned and the bare pod injected in plain",
        )
    finally:
        api.close()
    return mesh




def test_reach_read_from_the_api_server_names_every_way_in(cluster, mesh):
    reach = compute_reach(cluster.reach_inputs("default"))
    assert reach.webhook_config == "istio-revision-tag-default"
    assert reach.names == ("foo", "istio-ingress", "legacy", "plain")
    foo, gateway, legacy, plain = reach.namespaces
    assert foo.whole and "istio.io/rev=default" in foo.why
    assert legacy.whole and "istio-injection=enabled" in legacy.why
    assert legacy.revisions == {"1-14-6": 2} and legacy.pods == 2
    assert not gateway.whole and reach.workload(GATEWAY) is not None
    assert f"{INJECT}=true" in gateway.why
    assert not plain.whole
    assert plain.targets() == (Target(namespace="plain", kind="Deployment", name="meshed"),)
    assert plain.unowned == ("lonely (bare pod)",)
    # the sim's own injector agrees: what the product says is reached carries a proxy
    assert mesh.proxy_revisions("legacy") == {"1-14-6": 2}
    assert reach.ambient == ("amb",) and mesh.proxy_revisions("amb") == {None: 1}
    assert [(p.namespace, p.what, p.value) for p in reach.pinned] == [
        ("plain", "Deployment pinned", "1-14-6")
    ]


def test_preflight_plans_all_the_reach_and_says_why(cluster):
    checked = preflight(cluster, upgrade_request())
    assert checked.namespaces == ("foo", "legacy", "plain")
    assert checked.targets == (Target(namespace="plain", kind="Deployment", name="meshed"),)
    lines = "\n".join(checked.reach.lines())
    assert "legacy: namespace label istio-injection=enabled" in lines
    assert "2 pod(s) on 1-14-6×2" in lines
    assert "amb: ambient" in lines and "Deployment pinned in plain: pinned" in lines
    plan = build_plan(upgrade_request(), checked, Settings(), datetime.now(UTC))
    assert plan.workloads == checked.targets


def test_namespaces_subset_names_what_it_leaves_out(cluster):
    checked = preflight(cluster, upgrade_request(namespaces=("foo",)))
    assert checked.namespaces == ("foo",)
    (warning,) = [w for w in checked.warnings if "leaves out" in w]
    assert "legacy, plain" in warning and "as soon as the tag moves" in warning


def test_a_namespace_the_tag_does_not_reach_is_refused(cluster):
    with pytest.raises(PreflightError, match="namespace amb is not reached by tag default"):
        preflight(cluster, upgrade_request(namespaces=("amb",)))


def test_label_style_refuses_istio_injection_with_the_command(cluster, mesh):
    before = len(mesh.writes())
    with pytest.raises(PreflightError) as refused:
        preflight(cluster, upgrade_request(style=UpgradeStyle.NAMESPACE_LABEL, namespaces=("legacy",)))
    (problem,) = refused.value.problems
    assert problem.endswith("kubectl label namespace legacy istio-injection- istio.io/rev=default")
    with pytest.raises(PreflightError, match="namespace plain is reached only through pod labels"):
        preflight(cluster, upgrade_request(style=UpgradeStyle.NAMESPACE_LABEL, namespaces=("plain",)))
    assert len(mesh.writes()) == before


def test_a_gateway_pinned_to_a_revision_is_left_out_with_a_warning(cluster, mesh):
    pinned = Target(namespace="plain", kind="Deployment", name="pinned")
    checked = preflight(cluster, upgrade_request(gateways=(GATEWAY, pinned)))
    assert checked.gateways == (GATEWAY,)
    assert any("pinned to istio.io/rev=1-14-6" in w for w in checked.warnings)


def test_rollback_restarts_a_namespace_left_out_whose_pod_was_rescheduled(cluster, mesh):
    """Only foo is planned; while it is judged a legacy pod is deleted and comes back on the
    new proxy (the tag already moved); foo fails, and the rollback restarts legacy too."""
    settings = Settings.model_validate({
        "windows": {"before": "1s", "settle": "0s", "after": "1s", "step": "1s"},
        "upgrade": {"waves": [1], "evaluation_delay": "0s", "poll_interval": "200ms",
                    "rollout_timeout": "30s", "max_extensions": 0},
    })  # fmt: skip
    api = api_client_for(mesh)
    core = kube.CoreV1Api(api)
    notes = []

    def reschedule_then_fail(_namespace: str, _call: int) -> Verdict:
        victim = core.list_namespaced_pod("legacy").items[0].metadata.name
        core.delete_namespaced_pod(victim, "legacy")
        wait_until(
            lambda: mesh.proxy_revisions("legacy").get("1-15-4") == 1,
            timeout=30,
            message="the rescheduled legacy pod on the new proxy",
        )
        return Verdict.FAIL

    try:
        checked = preflight(cluster, upgrade_request(namespaces=("foo",)))
        plan = build_plan(upgrade_request(namespaces=("foo",)), checked, settings, datetime.now(UTC))
        engine = UpgradeEngine(
            cluster, MemoryStateStore(), ScriptedJudging(script=reschedule_then_fail),
            RealClock(), LogNotifier(), observer=lambda _s, n, _a: notes.extend(n),
        )  # fmt: skip
        state = engine.run(plan)
    finally:
        api.close()
    assert state.outcome is Outcome.ROLLED_BACK
    assert state.rescheduled == (Target(namespace="legacy"),)
    (moved,) = [n for n in notes if n.reason == "MovedOutsidePlan"]
    assert moved.namespace == "legacy" and "runs 1-15-4" in moved.message
    restarts = {(ns, name): n for (_k, ns, name), n in mesh.restart_counts().items()}
    assert restarts[("legacy", "api")] == 1  # restarted by the rollback only
    assert restarts[("foo", "web")] == 2  # the wave, then the rollback
    # the rollback verified the old proxies before it ended: nothing left on the new one
    assert mesh.proxy_revisions("legacy") == {"1-14-6": 2}
    assert mesh.proxy_revisions("foo") == {"1-14-6": 2}
