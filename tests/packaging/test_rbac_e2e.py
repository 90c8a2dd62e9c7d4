"""The chart's RBAC is exactly what the product calls: nothing denied, nothing unused.

Why: least privilege is only true if it is measured. Full upgrades run through the real
Kubernetes adapter, engine, state store and kept timeline (the service's, written to the
state ConfigMap as it grows and read back) against the simulated mesh, behind a recording
proxy (the sim records writes only; RBAC needs reads too). Judging is scripted (this is
about API calls, not metrics), the clock is real with second-long windows. The calls of
the tag style (a promotion with explicit namespaces, a rollback with discovered ones) and
of the namespace-label style, plus a leader-election round on the Lease, are then checked
against the rules the chart renders for that style. The prune block is measured the same
way: without it no rule has a delete verb; with it, an upgrade followed by ``prune`` of the
old revision (installed by istioctl: every object the istio-discovery chart renders) uses
exactly what the chart grants.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from kubernetes import client as kube

from analyzer.adapters.istio_revisions import IstioRevisions
from analyzer.adapters.kubernetes import ConfigMapStateStore, KubernetesCluster
from analyzer.adapters.lease import KubernetesLease
from analyzer.core.revisions import inventory, unused
from analyzer.core.upgrade import Outcome, UpgradeStyle
from analyzer.service.clock import RealClock
from analyzer.service.engine import LogNotifier, UpgradeEngine
from analyzer.service.leadership import LeaderElector
from analyzer.service.preflight import UpgradeRequest, build_plan, parse_gateway, preflight
from analyzer.service.soak import run_prune
from analyzer.service.timeline import KeptTimeline
from analyzer.settings import Settings
from analyzer.sim import istio_objects
from tests.fixtures.fakes import ScriptedJudging, fail_in
from tests.fixtures.polling import wait_until
from tests.fixtures.sim_fixtures import api_client_for, fast_scenario, make_mesh  # noqa: F401
from tests.packaging.chart import NAMESPACE, one, render
from tests.packaging.rbac_check import ApiCall, bound_rules, call_from_request, check
from tests.packaging.recording_proxy import RecordingProxy

pytest.importorskip("helm_python", reason="helm-python-sdk (dev extra) renders the chart")

pytestmark = pytest.mark.timeout(120)

SETTINGS = {
    "windows": {"before": "1s", "settle": "0s", "after": "1s", "step": "1s"},
    "upgrade": {"waves": [1, 2], "evaluation_delay": "0s", "poll_interval": "200ms",
                "rollout_timeout": "30s", "max_extensions": 0, "state_namespace": NAMESPACE},
}  # fmt: skip
APPS = ("foo", "bar", "baz")  # the fast scenario's namespaces on the default tag


def _own_namespace(mesh) -> None:
    """The release namespace exists before the service starts (``helm install -n``)."""
    api = api_client_for(mesh)
    try:
        kube.CoreV1Api(api).create_namespace({"metadata": {"name": NAMESPACE}})
    finally:
        api.close()


def _non_revisioned_injector(mesh) -> None:
    """A cluster still carrying the injector of a pre-revision install (istio-sidecar-injector,
    as Istio's chart renders it): moving default deactivates it."""
    rendered = istio_objects.rendered("current", "istiod-default.yaml")
    injector = next(o for o in rendered if o["kind"] == "MutatingWebhookConfiguration")
    api = api_client_for(mesh)
    try:
        kube.AdmissionregistrationV1Api(api).create_mutating_webhook_configuration(injector)
    finally:
        api.close()


def _upgrade(mesh, style: UpgradeStyle, script, namespaces=None) -> tuple[Outcome, list[ApiCall]]:
    """One whole upgrade through a recording proxy; the outcome and the calls it made."""
    settings = Settings.model_validate(SETTINGS)
    with RecordingProxy(mesh.api_url) as proxy:
        configuration = kube.Configuration(host=proxy.url)
        cluster = KubernetesCluster(kube.ApiClient(configuration), request_timeout=10)
        try:
            store = ConfigMapStateStore(
                cluster, settings.upgrade.state_configmap, settings.upgrade.state_namespace
            )
            request = UpgradeRequest(
                to_revision="1-15-4",
                tag="default",
                style=style,
                gateways=tuple(parse_gateway(g) for g in settings.upgrade.gateways),
                namespaces=namespaces,
            )
            checked = preflight(cluster, request)
            plan = build_plan(request, checked, settings, datetime.now(UTC))
            timeline = KeptTimeline(
                ConfigMapStateStore(
                    cluster,
                    settings.upgrade.state_configmap,
                    settings.upgrade.state_namespace,
                    key="timeline",
                )
            )
            engine = UpgradeEngine(
                cluster,
                store,
                ScriptedJudging(script=script),
                RealClock(),
                LogNotifier(),
                observer=timeline.record,
            )
            state = engine.run(plan)
            assert not timeline.unsaved and KeptTimeline(timeline.store).load(plan.upgrade_id)
        finally:
            cluster.close()
    calls = [call_from_request(*r) for r in proxy.requests]
    return state.outcome, [c for c in calls if c is not None]


def _leader_round(mesh) -> list[ApiCall]:
    """Two replicas: one creates and renews the Lease, the other reads it; then release."""
    settings = Settings.model_validate(SETTINGS).service
    with RecordingProxy(mesh.api_url) as proxy:
        api = kube.ApiClient(kube.Configuration(host=proxy.url))
        try:
            lease = KubernetesLease(api, NAMESPACE, settings.lease_name)
            first = LeaderElector(lease, "replica-a", timedelta(seconds=15))
            second = LeaderElector(lease, "replica-b", timedelta(seconds=15))
            now = datetime.now(UTC)
            assert first.tick(now) and first.tick(now + timedelta(seconds=5))
            assert not second.tick(now + timedelta(seconds=6))
            first.release()
        finally:
            api.close()
    return [c for c in (call_from_request(*r) for r in proxy.requests) if c is not None]


def _chart_rules(style: str, prune: dict | None = None):
    values: dict = {"config": {"upgrade": {"style": style}}}
    if prune is not None:
        values["prune"] = prune
    objects = render(values)
    account = one(objects, "ServiceAccount")["metadata"]["name"]
    return bound_rules(objects, account, NAMESPACE)


def _explain(report) -> str:
    return "\n".join(
        ["denied:", *(f"  {c.describe()}" for c in report.denied),
         "unused:", *(f"  {p.describe()}" for p in report.unused), *report.wildcards]
    )  # fmt: skip


def test_tag_style_calls_match_the_charts_rbac_exactly(make_mesh):  # noqa: F811
    promoted_mesh = make_mesh(fast_scenario(regressions=[]))
    _own_namespace(promoted_mesh)
    _non_revisioned_injector(promoted_mesh)
    outcome, promoted = _upgrade(promoted_mesh, UpgradeStyle.TAG, fail_in(set()), namespaces=APPS)
    assert outcome is Outcome.PROMOTED
    rolled_mesh = make_mesh(fast_scenario(regressions=[]))
    _own_namespace(rolled_mesh)
    outcome, rolled_back = _upgrade(rolled_mesh, UpgradeStyle.TAG, fail_in(set(APPS)))
    assert outcome is Outcome.ROLLED_BACK
    calls = promoted + rolled_back + _leader_round(promoted_mesh)
    # the upgrade really went over this proxy: tag moved, workloads restarted, state saved
    verbs = {(c.verb, c.resource) for c in calls}
    assert {("update", "mutatingwebhookconfigurations"), ("patch", "deployments"),
            ("patch", "configmaps"), ("create", "events"),
            ("update", "services")} <= verbs  # fmt: skip
    report = check(calls, _chart_rules("tag"))
    assert report.exact, _explain(report)


def test_namespace_label_style_calls_match_the_charts_rbac_exactly(make_mesh):  # noqa: F811
    mesh = make_mesh(fast_scenario(regressions=[]))
    _own_namespace(mesh)
    _non_revisioned_injector(mesh)
    outcome, calls = _upgrade(mesh, UpgradeStyle.NAMESPACE_LABEL, fail_in(set()))
    assert outcome is Outcome.PROMOTED
    assert ("patch", "namespaces") in {(c.verb, c.resource) for c in calls}
    calls += _leader_round(mesh)
    report = check(calls, _chart_rules("namespace-label"))
    assert report.exact, _explain(report)


def _prune(mesh, revision: str) -> list[ApiCall]:
    """``prune --revision`` through a recording proxy, once nothing uses the revision."""
    direct = IstioRevisions(KubernetesCluster(api_client_for(mesh), request_timeout=10),
                            "istio-system")
    try:
        wait_until(lambda: unused(inventory(direct.inputs()), revision), timeout=30,
                   message=f"the last pods on {revision} gone after the promotion")
    finally:
        direct.cluster.close()
    with RecordingProxy(mesh.api_url) as proxy:
        cluster = KubernetesCluster(kube.ApiClient(kube.Configuration(host=proxy.url)),
                                    request_timeout=10)
        try:
            plan, deleted = run_prune(IstioRevisions(cluster, "istio-system"), revision,
                                      dry_run=False, say=lambda _line: None)
        finally:
            cluster.close()
    assert deleted, plan.refusal()
    return [c for c in (call_from_request(*r) for r in proxy.requests) if c is not None]


@pytest.mark.parametrize("style", ["tag", "namespace-label"])
def test_without_the_prune_block_no_rule_deletes(style):
    objects = render({"config": {"upgrade": {"style": style}}})
    deleting = [(o["kind"], o["metadata"]["name"], r) for o in objects
                for r in o.get("rules") or [] if {"delete", "deletecollection"} & set(r["verbs"])]
    assert deleting == []


def test_the_prune_block_grants_exactly_what_prune_calls(make_mesh):  # noqa: F811
    installed = [{"name": "1-14-6", "installed_by": "istioctl"},
                 {"name": "1-15-4", "installed_by": "istioctl"}]
    mesh = make_mesh(fast_scenario(regressions=[], revisions=installed))
    _own_namespace(mesh)
    _non_revisioned_injector(mesh)
    outcome, promoted = _upgrade(mesh, UpgradeStyle.TAG, fail_in(set()), namespaces=APPS)
    assert outcome is Outcome.PROMOTED
    pruned = _prune(mesh, "1-14-6")
    rolled_mesh = make_mesh(fast_scenario(regressions=[]))
    _own_namespace(rolled_mesh)
    outcome, rolled_back = _upgrade(rolled_mesh, UpgradeStyle.TAG, fail_in(set(APPS)))
    assert outcome is Outcome.ROLLED_BACK
    deleted = {c.resource for c in pruned if c.verb == "delete"}
    assert deleted == {"mutatingwebhookconfigurations", "validatingwebhookconfigurations",
                       "deployments", "horizontalpodautoscalers", "poddisruptionbudgets",
                       "services", "configmaps", "serviceaccounts", "roles", "rolebindings",
                       "clusterroles", "clusterrolebindings"}
    calls = promoted + pruned + rolled_back + _leader_round(mesh)
    report = check(calls, _chart_rules("tag", {"enabled": True, "revisions": ["1-14-6"]}))
    assert report.exact, _explain(report)


def test_shadow_mode_calls_match_the_charts_read_only_rbac_exactly(make_mesh, tmp_path):  # noqa: F811
    """A shadow-mode service (``config.service.mode: shadow``) sees a ``kubectl rollout
    restart`` made by someone else (kubectl ``pkg/polymorphichelpers/objectrestarter.go``
    stamps the pod template's ``restartedAt``), judges it with the health of the restarted
    namespace's pods, and makes only the reads the chart's shadow rules grant: no write."""
    import threading
    from pathlib import Path

    from analyzer.service.alerting import AlertDispatcher
    from analyzer.service.clock import VirtualClock
    from analyzer.service.context import JudgingSetup, ReportShelf, ServiceStores
    from analyzer.service.engine import MemoryStateStore
    from analyzer.service.judging import quiet_context
    from analyzer.service.maintenance import MaintenanceHours
    from analyzer.service.rules_reload import RulesWatcher
    from analyzer.service.self_metrics import SelfMetrics
    from analyzer.service.service import UpgradeService

    mesh = make_mesh(fast_scenario(regressions=[]))
    settings = Settings.model_validate({**SETTINGS, "service": {"mode": "shadow"}})
    clock = VirtualClock(datetime.now(UTC))
    with RecordingProxy(mesh.api_url) as proxy:
        cluster = KubernetesCluster(kube.ApiClient(kube.Configuration(host=proxy.url)),
                                    request_timeout=10)  # fmt: skip
        scripted = ScriptedJudging(script=fail_in(set()))

        class WithHealth:  # the service's judging asks the restarted pods' health
            def judge(self, action):
                quiet_context(action, lambda a: cluster.pod_health(a.judged, a.restarted_at))
                return scripted.judge(action)

        try:
            service = UpgradeService(
                settings=settings, cluster=cluster,
                stores=ServiceStores(engine=MemoryStateStore(), service=MemoryStateStore()),
                judging=JudgingSetup(lambda _r, _o: WithHealth(), RulesWatcher(Path("rules"))),
                pager=AlertDispatcher([], clock), metrics=SelfMetrics(),
                hours=MaintenanceHours(None, timedelta(hours=4), "UTC"), clock=clock,
                interrupt=threading.Event(), reports=ReportShelf(tmp_path),
                workload_templates=cluster,
            )  # fmt: skip
            service.tick()
            direct = api_client_for(mesh)  # someone else restarts, not through the proxy
            try:
                stamp = clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
                kube.AppsV1Api(direct).patch_namespaced_deployment("web", "foo", {"spec": {
                    "template": {"metadata": {"annotations": {
                        "kubectl.kubernetes.io/restartedAt": stamp}}}}})  # fmt: skip
            finally:
                direct.close()
            service.tick()
            clock.advance(timedelta(seconds=5))
            service.tick()
        finally:
            cluster.close()
    assert [a.judged for a in scripted.actions] == [("foo",)]
    calls = [c for c in (call_from_request(*r) for r in proxy.requests) if c is not None]
    assert {c.verb for c in calls} == {"list"}
    objects = render({"config": {"service": {"mode": "shadow"}}})
    report = check(calls, bound_rules(objects, one(objects, "ServiceAccount")["metadata"]["name"],
                                      NAMESPACE))  # fmt: skip
    assert report.exact, _explain(report)
