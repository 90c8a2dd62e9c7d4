"""Selectors, patches and injection rules of the fake API, checked on their own."""

from __future__ import annotations

import pytest
from kubernetes import client as kube

from analyzer.sim.patches import PatchError, json_merge, json_patch, strategic_merge
from analyzer.sim.selectors import (
    SelectorError,
    parse_field_selector,
    parse_label_selector,
    selector_from_spec,
)
from tests.fixtures.polling import wait_until
from tests.fixtures.sim_fixtures import api_client_for, fast_scenario
from tests.sim.test_kube_api import move_tag, restart_patch


@pytest.mark.parametrize(("selector", "labels", "expected"), [
    ("", {}, True),
    ("app=web", {"app": "web"}, True),
    ("app==web", {"app": "api"}, False),
    ("app!=web", {}, True),
    ("!istio.io/tag", {"istio.io/rev": "1-15-4"}, True),
    ("istio.io/rev=1-15-4,!istio.io/tag", {"istio.io/rev": "1-15-4", "istio.io/tag": "x"}, False),
    ("env in (prod, staging)", {"env": "staging"}, True),
    ("env notin (prod,staging)", {"env": "prod"}, False),
    ("env notin (prod)", {}, True),
    ("team", {"team": ""}, True),
])
def test_label_selector_grammar(selector, labels, expected):
    assert parse_label_selector(selector).matches(labels) is expected


def test_bad_selectors_are_rejected():
    for text in ("env in (a", "=x", "a,,b"):
        with pytest.raises(SelectorError):
            parse_label_selector(text)


def test_structured_selectors_and_field_selectors():
    selector = selector_from_spec({"matchLabels": {"a": "1"}, "matchExpressions": [
        {"key": "istio-injection", "operator": "DoesNotExist"},
        {"key": "istio.io/rev", "operator": "In", "values": ["default"]}]})
    assert selector.matches({"a": "1", "istio.io/rev": "default"})
    assert not selector.matches({"a": "1", "istio.io/rev": "default", "istio-injection": "x"})
    assert selector_from_spec(None).matches({})
    field = parse_field_selector("metadata.name=web,status.phase!=Pending")
    assert field({"metadata": {"name": "web"}, "status": {"phase": "Running"}})
    assert not field({"metadata": {"name": "web"}, "status": {"phase": "Pending"}})


def test_strategic_merge_follows_patch_merge_keys():
    original = {"spec": {"containers": [{"name": "app", "image": "a:1"},
                                        {"name": "istio-proxy", "image": "p:1"}],
                         "tolerations": [{"key": "x"}]},
                "metadata": {"annotations": {"keep": "1", "drop": "2"},
                             "finalizers": ["a"]}}
    patched = strategic_merge(original, {
        "spec": {"containers": [{"name": "app", "image": "a:2"},
                                {"name": "istio-proxy", "$patch": "delete"}],
                 "tolerations": [{"key": "y"}]},
        "metadata": {"annotations": {"drop": None, "new": "3"}, "finalizers": ["b"]}})
    assert patched["spec"]["containers"] == [{"name": "app", "image": "a:2"}]
    assert patched["spec"]["tolerations"] == [{"key": "y"}]  # no merge key: replaced
    assert patched["metadata"]["annotations"] == {"keep": "1", "new": "3"}
    assert patched["metadata"]["finalizers"] == ["a", "b"]
    assert original["spec"]["containers"][0]["image"] == "a:1"  # input untouched
    webhooks = strategic_merge({"webhooks": [{"name": "a", "x": 1}, {"name": "b", "x": 1}]},
                               {"webhooks": [{"name": "b", "x": 2}]})
    assert webhooks["webhooks"] == [{"name": "a", "x": 1}, {"name": "b", "x": 2}]


def test_json_merge_and_json_patch():
    assert json_merge({"a": {"b": 1, "c": 2}, "l": [1]}, {"a": {"b": None}, "l": [2]}) == {
        "a": {"c": 2}, "l": [2]}
    document = {"metadata": {"labels": {"istio.io/rev": "1-14-6"}}, "list": [1, 2]}
    patched = json_patch(document, [
        {"op": "replace", "path": "/metadata/labels/istio.io~1rev", "value": "1-15-4"},
        {"op": "add", "path": "/list/-", "value": 3},
        {"op": "test", "path": "/list/0", "value": 1},
        {"op": "remove", "path": "/list/1"}])
    assert patched == {"metadata": {"labels": {"istio.io/rev": "1-15-4"}}, "list": [1, 3]}
    with pytest.raises(PatchError):
        json_patch(document, [{"op": "test", "path": "/list/0", "value": 9}])
    with pytest.raises(PatchError):
        json_patch(document, [{"op": "replace", "path": "/missing/x", "value": 1}])


def test_json_patch_moves_a_tag_through_the_official_client(mesh, kube_client):
    admission = kube.AdmissionregistrationV1Api(kube_client)
    admission.patch_mutating_webhook_configuration("istio-revision-tag-default", [
        {"op": "replace", "path": "/metadata/labels/istio.io~1rev", "value": "1-15-4"},
        *({"op": "replace", "path": f"/webhooks/{i}/clientConfig/service/name",
           "value": "istiod-1-15-4"} for i in range(4))])
    tag = admission.read_mutating_webhook_configuration("istio-revision-tag-default")
    assert tag.metadata.labels["istio.io/rev"] == "1-15-4"
    assert {w.client_config.service.name for w in tag.webhooks} == {"istiod-1-15-4"}


def test_an_unready_istiod_rejects_pods_and_the_rollout_stalls(make_mesh):
    scenario = fast_scenario(revisions=[{"name": "1-14-6"},
                                        {"name": "1-15-4", "istiod_ready": False}])
    mesh = make_mesh(scenario)
    api = api_client_for(mesh)
    apps = kube.AppsV1Api(api)
    istiod = apps.read_namespaced_deployment("istiod-1-15-4", "istio-system")
    assert not istiod.status.ready_replicas
    move_tag(kube.AdmissionregistrationV1Api(api), "default", "1-15-4")
    apps.patch_namespaced_deployment("web", "foo", restart_patch())
    wait_until(lambda: any(e.reason == "FailedCreate" and "failed calling webhook" in e.message
                           for e in kube.CoreV1Api(api).list_namespaced_event("foo").items),
               timeout=30, message="a FailedCreate event for the webhook call")
    assert mesh.proxy_revisions("foo") == {"1-14-6": 2}
