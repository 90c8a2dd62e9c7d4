"""What uses a revision, and what a prune deletes (analyzer/core/revisions.py), on plain data.

The selection follows istio/istio operator/pkg/uninstall/prune.go (``istio.io/rev`` plus an
``operator.istio.io/component`` istioctl prunes); Helm ownership is Helm's release annotation.
"""

from __future__ import annotations

from analyzer.core.reach import NamespaceInfo, PodInfo
from analyzer.core.revisions import (
    ControlPlaneObject,
    Istiod,
    PinnedWorkload,
    RevisionInputs,
    inventory,
    plan_prune,
    unused,
)

OLD, NEW = "1-14-6", "1-15-4"


def _pod(name, revision, owner=("Deployment", "api"), phase="Running", namespace="bar"):
    return PodInfo(namespace=namespace, name=name, owner_kind=owner[0] if owner else None,
                   owner_name=owner[1] if owner else None, revision=revision, phase=phase)


def _inputs(**changes) -> RevisionInputs:
    fields = dict(
        istiods=(Istiod("istio-system", f"istiod-{OLD}", OLD, 1, 1),
                 Istiod("istio-system", f"istiod-{NEW}", NEW, 1, 1)),
        injectors=((f"istio-sidecar-injector-{OLD}", OLD), (f"istio-sidecar-injector-{NEW}", NEW)),
        tags=(("default", NEW),),
        namespaces=(NamespaceInfo("bar", {"istio.io/rev": "default"}),
                    NamespaceInfo("legacy", {"istio-injection": "enabled"})),
        pods=(_pod("api-1", NEW),),
    )
    fields.update(changes)
    return RevisionInputs(**fields)


def test_finished_pods_are_counted_apart_and_are_not_use():
    report = inventory(_inputs(pods=(
        _pod("api-1", NEW), _pod("report-x", OLD, ("Job", "report"), "Succeeded"),
        _pod("crash-y", OLD, ("Job", "crash"), "Failed"))))
    old = report[OLD]
    assert [p.name for p in old.completed] == ["report-x"]
    assert [p.name for p in old.failed] == ["crash-y"]
    assert old.pods == () and not old.in_use and unused(report, OLD)


def test_running_job_and_bare_pods_are_use_and_told_apart_from_workload_pods():
    report = inventory(_inputs(pods=(
        _pod("api-1", OLD), _pod("report-x", OLD, ("Job", "report")),
        _pod("debug", OLD, None))))
    owners = {p.name: (p.owner, p.controlled) for p in report[OLD].pods}
    assert owners == {"api-1": ("Deployment bar/api", True),
                      "report-x": ("Job bar/report", False), "debug": ("bare pod", False)}
    assert "pod bar/debug (bare pod) runs its proxy" in report[OLD].blockers()


def test_namespaces_tags_and_pinned_workloads():
    report = inventory(_inputs(
        tags=(("default", NEW), ("canary", OLD)),
        namespaces=(NamespaceInfo("bar", {"istio.io/rev": "default"}),
                    NamespaceInfo("inj", {"istio-injection": "enabled"}),
                    NamespaceInfo("pinned", {"istio.io/rev": OLD}),
                    NamespaceInfo("via-canary", {"istio.io/rev": "canary"})),
        workloads=(PinnedWorkload("istio-ingress", "Deployment", "gw", OLD, gateway=True),
                   PinnedWorkload("x", "Deployment", "tagged", "canary"))))
    assert report[NEW].namespaces_via_tags == ("bar", "inj")
    old = report[OLD]
    assert old.namespaces == ("pinned",) and old.namespaces_via_tags == ("via-canary",)
    assert old.tags == ("canary",) and [w.name for w in old.workloads] == ["gw"]
    assert set(old.blockers()) == {
        "tag canary points at it", "namespace pinned is labelled istio.io/rev=1-14-6",
        "gateway istio-ingress/gw is pinned with istio.io/rev=1-14-6"}


def test_a_tag_pointing_at_a_revision_not_installed_is_reported():
    report = inventory(_inputs(tags=(("default", NEW), ("stale", "1-10-0"))))
    assert not report["1-10-0"].installed and report["1-10-0"].tags == ("stale",)


def _obj(kind, name, namespace=None, component="Pilot", helm=None, tag=None, rev=OLD):
    labels = {"istio.io/rev": rev}
    if component:
        labels["operator.istio.io/component"] = component
    if tag:
        labels["istio.io/tag"] = tag
    annotations = {}
    if helm:
        annotations = {"meta.helm.sh/release-name": helm,
                       "meta.helm.sh/release-namespace": "istio-system"}
    return ControlPlaneObject(kind, name, namespace, "uid-" + name, labels, annotations)


def test_prune_deletes_webhooks_first_and_never_a_tag_or_an_unmarked_object():
    use = inventory(_inputs())[OLD]
    plan = plan_prune(OLD, use, [
        _obj("ClusterRole", "istiod-clusterrole"), _obj("Deployment", "istiod", "istio-system"),
        _obj("ConfigMap", "istio", "istio-system"),
        _obj("ValidatingWebhookConfiguration", "istio-validator"),
        _obj("MutatingWebhookConfiguration", "istio-sidecar-injector"),
        _obj("MutatingWebhookConfiguration", "istio-revision-tag-old", tag="old"),
        _obj("ConfigMap", "hand-made", "istio-system", component=None),
        _obj("Service", "istiod", "istio-system", rev=NEW)])
    assert [o.name for o in plan.delete] == [
        "istio-sidecar-injector", "istio-validator", "istiod", "istio", "istiod-clusterrole"]
    assert [o.name for o, _why in plan.left_alone] == ["hand-made"]
    assert plan.may_proceed and plan.refusal() is None


def test_a_helm_release_stops_the_whole_prune_and_is_named():
    use = inventory(_inputs())[OLD]
    plan = plan_prune(OLD, use, [_obj("Deployment", "istiod", "istio-system",
                                      helm="istiod-1-14-6"),
                                 _obj("ConfigMap", "istio", "istio-system")])
    assert not plan.may_proceed
    assert "helm uninstall istiod-1-14-6 -n istio-system" in plan.refusal()


def test_use_wins_over_everything_else():
    use = inventory(_inputs(pods=(_pod("api-1", OLD),)))[OLD]
    plan = plan_prune(OLD, use, [_obj("Deployment", "istiod", "istio-system")])
    assert not plan.may_proceed and "pod bar/api-1" in plan.refusal()
