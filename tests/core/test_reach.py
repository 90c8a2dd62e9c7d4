"""The tag's reach, computed from its webhooks' selectors the way the API server matches them.

The webhooks are the ones Istio's chart renders for a tag
(manifests/charts/istio-control/istio-discovery/templates/revision-tags-mwc.yaml); the
selector semantics are k8s.io/apimachinery's LabelSelectorAsSelector and
labels.Requirement.Matches, applied by k8s.io/apiserver's webhook predicates
(predicates/namespace/matcher.go: namespace labels; predicates/object/matcher.go: pod labels).
"""

from __future__ import annotations

import pytest

from analyzer.core.reach import (
    LabelSelector,
    NamespaceInfo,
    PodInfo,
    ReachInputs,
    Requirement,
    SelectorError,
    Webhook,
    WorkloadInfo,
    compute_reach,
)
from analyzer.core.upgrade import Target

POD_CREATE = [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
               "resources": ["pods"]}]  # fmt: skip
NOT_DISABLED = {"key": "sidecar.istio.io/inject", "operator": "NotIn", "values": ["false"]}


def chart_webhooks(tag: str) -> tuple[Webhook, ...]:
    """The webhooks revision-tags-mwc.yaml renders for ``tag`` (``default`` adds two)."""
    specs = [
        {"name": "rev.namespace.sidecar-injector.istio.io", "rules": POD_CREATE,
         "namespaceSelector": {"matchExpressions": [
             {"key": "istio.io/rev", "operator": "In", "values": [tag]},
             {"key": "istio-injection", "operator": "DoesNotExist"}]},
         "objectSelector": {"matchExpressions": [NOT_DISABLED]}},
        {"name": "rev.object.sidecar-injector.istio.io", "rules": POD_CREATE,
         "namespaceSelector": {"matchExpressions": [
             {"key": "istio.io/rev", "operator": "DoesNotExist"},
             {"key": "istio-injection", "operator": "DoesNotExist"}]},
         "objectSelector": {"matchExpressions": [
             NOT_DISABLED, {"key": "istio.io/rev", "operator": "In", "values": [tag]}]}},
    ]  # fmt: skip
    if tag == "default":
        specs += [
            {"name": "namespace.sidecar-injector.istio.io", "rules": POD_CREATE,
             "namespaceSelector": {"matchExpressions": [
                 {"key": "istio-injection", "operator": "In", "values": ["enabled"]}]},
             "objectSelector": {"matchExpressions": [NOT_DISABLED]}},
            {"name": "object.sidecar-injector.istio.io", "rules": POD_CREATE,
             "namespaceSelector": {"matchExpressions": [
                 {"key": "istio-injection", "operator": "DoesNotExist"},
                 {"key": "istio.io/rev", "operator": "DoesNotExist"}]},
             "objectSelector": {"matchExpressions": [
                 {"key": "sidecar.istio.io/inject", "operator": "In", "values": ["true"]},
                 {"key": "istio.io/rev", "operator": "DoesNotExist"}]}},
        ]  # fmt: skip
    return tuple(Webhook.from_spec(spec) for spec in specs)


def reach_of(namespaces, workloads=(), pods=(), tag="default"):
    return compute_reach(
        ReachInputs(
            tag=tag,
            webhook_config=f"istio-revision-tag-{tag}",
            webhooks=chart_webhooks(tag),
            namespaces=tuple(NamespaceInfo(n, dict(labels)) for n, labels in namespaces.items()),
            workloads=tuple(workloads),
            pods=tuple(pods),
        )
    )


def deployment(namespace, name, **labels):
    return WorkloadInfo(namespace, "Deployment", name, {"app": name, **labels})


def pod(namespace, name, owner=("Deployment", "web"), revision="1-14-6", **labels):
    kind, owner_name = owner if owner else (None, None)
    return PodInfo(namespace, name, {"app": name, **labels}, kind, owner_name, revision)


# -- the label selector ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operator", "values", "labels", "expected"),
    [
        ("In", ("a", "b"), {"k": "a"}, True),
        ("In", ("a", "b"), {"k": "c"}, False),
        ("In", ("a",), {}, False),
        ("NotIn", ("false",), {}, True),  # absent satisfies NotIn
        ("NotIn", ("false",), {"k": "false"}, False),
        ("NotIn", ("false",), {"k": "true"}, True),
        ("Exists", (), {"k": ""}, True),
        ("Exists", (), {"other": "x"}, False),
        ("DoesNotExist", (), {}, True),
        ("DoesNotExist", (), {"k": "x"}, False),
    ],
)
def test_requirement_operators(operator, values, labels, expected):
    assert Requirement("k", operator, values).matches(labels) is expected


def test_selector_ands_match_labels_and_expressions_and_empty_matches_all():
    selector = LabelSelector.from_spec(
        {"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]}
    )
    assert selector.matches({"a": "1", "b": "x"})
    assert not selector.matches({"a": "1"})
    assert not selector.matches({"a": "2", "b": "x"})
    assert LabelSelector.from_spec(None).matches({"anything": "x"})  # webhook default {}
    assert LabelSelector.from_spec({}).matches({})


@pytest.mark.parametrize(
    "expression",
    [
        {"key": "k", "operator": "In", "values": []},
        {"key": "k", "operator": "Exists", "values": ["x"]},
        {"key": "k", "operator": "Equals", "values": ["x"]},
    ],
)
def test_selectors_the_api_server_refuses_are_refused(expression):
    with pytest.raises(SelectorError):
        LabelSelector.from_spec({"matchExpressions": [expression]})


def test_a_webhook_that_does_not_intercept_pod_creation_reaches_nothing():
    webhook = Webhook.from_spec(
        {
            "name": "x",
            "rules": [{"operations": ["UPDATE"], "apiGroups": [""], "resources": ["pods"]}],
        }
    )
    assert not webhook.selects({}, {})


# -- each webhook of the tag -----------------------------------------------------------------


def test_rev_namespace_reaches_the_labelled_namespace_whole():
    reach = reach_of(
        {"shop": {"istio.io/rev": "default"}},
        [
            deployment("shop", "web"),
            deployment("shop", "off", **{"sidecar.istio.io/inject": "false"}),
        ],
        [pod("shop", "web-1"), pod("shop", "web-2", revision="1-15-4")],
    )
    (shop,) = reach.namespaces
    assert shop.whole and shop.targets() == (Target(namespace="shop"),)
    assert (
        shop.why == "namespace label istio.io/rev=default (rev.namespace.sidecar-injector.istio.io)"
    )
    assert shop.pods == 2 and shop.revisions == {"1-14-6": 1, "1-15-4": 1}
    assert [w.name for w in shop.workloads] == ["web"]  # inject=false is not reached


def test_istio_injection_namespace_is_reached_by_the_default_tag_only():
    namespaces = {"legacy": {"istio-injection": "enabled"}}
    reach = reach_of(namespaces, [deployment("legacy", "web")], [pod("legacy", "web-1")])
    assert reach.names == ("legacy",)
    assert (
        "istio-injection=enabled (namespace.sidecar-injector.istio.io)" in reach.get("legacy").why
    )
    assert reach_of(namespaces, tag="canary").names == ()


def test_istio_injection_beats_a_revision_label_on_the_same_namespace():
    # rev.namespace needs istio-injection absent; namespace.* takes it (default tag only)
    both = {"x": {"istio-injection": "enabled", "istio.io/rev": "canary"}}
    assert reach_of(both, tag="canary").names == ()
    assert reach_of(both).get("x").whole


def test_object_selector_reaches_only_the_labelled_workloads():
    reach = reach_of(
        {"plain": {}},
        [
            deployment("plain", "meshed", **{"sidecar.istio.io/inject": "true"}),
            deployment("plain", "unmeshed"),
            WorkloadInfo("plain", "StatefulSet", "pinned-rev", {"istio.io/rev": "default"}),
        ],
        [
            pod(
                "plain", "meshed-1", ("Deployment", "meshed"), **{"sidecar.istio.io/inject": "true"}
            ),
            pod("plain", "unmeshed-1", ("Deployment", "unmeshed"), revision=None),
            pod("plain", "job-1", ("Job", "nightly"), **{"sidecar.istio.io/inject": "true"}),
            pod("plain", "lonely", None, **{"sidecar.istio.io/inject": "true"}),
        ],
    )
    (plain,) = reach.namespaces
    assert not plain.whole
    assert plain.targets() == (
        Target(namespace="plain", kind="Deployment", name="meshed"),
        Target(namespace="plain", kind="StatefulSet", name="pinned-rev"),
    )
    meshed = plain.workloads[0]
    assert meshed.why == "pod label sidecar.istio.io/inject=true (object.sidecar-injector.istio.io)"
    assert (
        plain.workloads[1].why
        == "pod label istio.io/rev=default (rev.object.sidecar-injector.istio.io)"
    )
    assert plain.pods == 3  # meshed-1, job-1, lonely: not the unlabelled pod
    assert plain.unowned == ("job-1 (Job nightly)", "lonely (bare pod)")


def test_object_selectors_do_not_apply_in_labelled_namespaces():
    reach = reach_of(
        {"other": {"istio.io/rev": "1-14-6"}},
        [deployment("other", "gw", **{"sidecar.istio.io/inject": "true"})],
    )
    assert reach.names == ()
    assert [(p.namespace, p.what, p.value) for p in reach.pinned] == [
        ("other", "namespace", "1-14-6")
    ]


def test_gateway_pinned_to_a_revision_is_reported_not_reached():
    reach = reach_of(
        {"istio-ingress": {}},
        [
            deployment(
                "istio-ingress",
                "pinned-gw",
                **{"sidecar.istio.io/inject": "true", "istio.io/rev": "1-14-6"},
            ),
            deployment("istio-ingress", "gw", **{"sidecar.istio.io/inject": "true"}),
        ],
    )
    target = Target(namespace="istio-ingress", kind="Deployment", name="pinned-gw")
    assert reach.workload(target) is None
    assert reach.pinned_workload(target).value == "1-14-6"
    assert reach.workload(Target(namespace="istio-ingress", kind="Deployment", name="gw"))


def test_ambient_namespaces_are_reported_not_reached():
    reach = reach_of(
        {"amb": {"istio.io/dataplane-mode": "ambient"}, "shop": {"istio.io/rev": "default"}},
        [deployment("amb", "web")],
        [pod("amb", "web-1", revision=None)],
    )
    assert reach.names == ("shop",)
    assert reach.ambient == ("amb",)
    assert any("amb: ambient" in line for line in reach.lines())


def test_an_ambient_namespace_the_webhooks_select_is_still_reached_with_a_note():
    reach = reach_of({"amb": {"istio.io/dataplane-mode": "ambient", "istio.io/rev": "default"}})
    assert reach.names == ("amb",) and "ambient" in reach.get("amb").note


def test_finished_and_terminating_pods_are_not_counted():
    finished = PodInfo("shop", "done", {}, "Job", "j", "1-14-6", phase="Succeeded")
    leaving = PodInfo("shop", "old", {}, "Deployment", "web", "1-14-6", terminating=True)
    reach = reach_of({"shop": {"istio.io/rev": "default"}}, [deployment("shop", "web")],
                     [finished, leaving, pod("shop", "web-1", revision="1-15-4")])  # fmt: skip
    assert reach.get("shop").pods == 1 and reach.get("shop").revisions == {"1-15-4": 1}


def test_what_moved_to_a_revision_is_found_for_a_rollback():
    reach = reach_of(
        {"a": {"istio.io/rev": "default"}, "b": {"istio.io/rev": "default"}, "c": {}},
        [deployment("a", "web"), deployment("b", "web"),
         deployment("c", "meshed", **{"sidecar.istio.io/inject": "true"})],
        [pod("a", "web-1", revision="1-15-4"), pod("b", "web-1"),
         pod("c", "meshed-1", ("Deployment", "meshed"), revision="1-15-4",
             **{"sidecar.istio.io/inject": "true"})],
    )  # fmt: skip
    assert reach.on_revision("1-15-4") == (
        Target(namespace="a"),
        Target(namespace="c", kind="Deployment", name="meshed"),
    )
    assert reach.on_revision("1-15-4", skip=(Target(namespace="a"),)) == (
        Target(namespace="c", kind="Deployment", name="meshed"),
    )


def test_reach_to_dict_is_plain_json():
    import json

    reach = reach_of({"shop": {"istio.io/rev": "default"}}, [deployment("shop", "web")],
                     [pod("shop", "web-1")])  # fmt: skip
    document = json.loads(json.dumps(reach.to_dict()))
    assert document["namespaces"][0]["namespace"] == "shop"
    assert document["namespaces"][0]["revisions"] == {"1-14-6": 1}


# -- the state machine: planned workloads and what moved outside the plan ---------------------


def test_rollback_restarts_what_moved_outside_the_plan_and_partial_namespaces_by_workload():
    from datetime import UTC, datetime, timedelta

    from analyzer.core.upgrade import (
        Done,
        FindMoved,
        FoundMoved,
        Judged,
        MoveTag,
        NamespaceJudgement,
        ProxyStatus,
        Restart,
        Restarted,
        RolloutStatus,
        UpgradePlan,
        WaitUntil,
        advance,
        start,
    )
    from analyzer.core.verdicts import Verdict

    meshed = Target(namespace="tools", kind="Deployment", name="meshed")
    plan = UpgradePlan(
        upgrade_id="u", tag="default", from_revision="1-14-6", to_revision="1-15-4",
        waves=(("a", "tools"), ("b",)), workloads=(meshed,), before=timedelta(minutes=1),
        settle=timedelta(0), after=timedelta(minutes=1), step=timedelta(seconds=10),
        rollout_timeout=timedelta(minutes=5), poll_interval=timedelta(seconds=5),
        max_extensions=0,
    )  # fmt: skip
    now = datetime(2026, 1, 1, tzinfo=UTC)
    state = start(plan, now).state
    state = advance(state, Done(), now).state
    # planned without a time: the engine stamps the restart when it applies it
    assert state.pending == Restart(targets=(Target(namespace="a"), meshed), step_id="u.wave-1")
    state = advance(state, Restarted(at=now), now).state
    state = advance(state, RolloutStatus(complete=True), now).state
    state = advance(state, ProxyStatus(checked=3), now).state
    assert isinstance(state.pending, WaitUntil)
    later = state.pending.until
    state = advance(state, Done(), later).state
    failed = NamespaceJudgement(verdict=Verdict.FAIL, reason="worse")
    state = advance(state, Judged(verdicts={"a": failed, "tools": failed}), later).state
    assert state.pending == MoveTag(tag="default", revision="1-14-6")
    state = advance(state, Done(), later).state
    assert state.pending == FindMoved(revision="1-15-4", skip=(Target(namespace="a"), meshed))
    # b was not moved, but a pod of it was rescheduled onto 1-15-4; a is already covered
    transition = advance(
        state, FoundMoved(targets=(Target(namespace="b"), Target(namespace="a"))), later
    )
    state = transition.state
    assert state.rescheduled == (Target(namespace="b"),)
    assert state.pending.targets == (Target(namespace="a"), meshed, Target(namespace="b"))
    assert [n.namespace for n in transition.notes if n.reason == "MovedOutsidePlan"] == ["b"]
    state = advance(state, Restarted(at=later), later).state
    state = advance(state, RolloutStatus(complete=True), later).state
    assert state.pending.targets[-1] == Target(namespace="b")
    state = advance(state, ProxyStatus(checked=4), later).state
    assert "also restarted (on the new revision outside the plan): namespace b" in (
        state.pending.summary
    )
