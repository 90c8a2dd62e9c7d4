"""DELETE on the fake API as the real API server and garbage collector answer it.

The official client sends ``DeleteOptions``; the simulated mesh must follow
k8s.io/apiserver pkg/registry/generic/registry/store.go (``Delete``, ``DeleteCollection``,
``deletionFinalizersForGarbageCollection``), pkg/storage/interfaces.go
(``Preconditions.Check``) and kubernetes pkg/controller/garbagecollector (dependents of a
deleted owner), or the prune's tests would prove nothing (analyzer/sim/deletion.py).
"""

from __future__ import annotations

import json

import pytest
from kubernetes import client as kube
from kubernetes.client.exceptions import ApiException

from tests.fixtures.polling import wait_until

pytestmark = pytest.mark.timeout(90)


def _owned(apps: kube.AppsV1Api, core: kube.CoreV1Api, namespace: str, app: str):
    replica_sets = [rs for rs in apps.list_namespaced_replica_set(namespace).items
                    if rs.metadata.name.startswith(f"{app}-")]
    pods = core.list_namespaced_pod(namespace, label_selector=f"app={app}").items
    return replica_sets, pods


def test_foreground_keeps_the_owner_until_its_dependents_are_gone(mesh, kube_client):
    apps, core = kube.AppsV1Api(kube_client), kube.CoreV1Api(kube_client)
    answer = apps.delete_namespaced_deployment(
        "web", "foo", body=kube.V1DeleteOptions(propagation_policy="Foreground"))
    # still there, marked: deletionTimestamp and the GC's foregroundDeletion finalizer
    assert answer["metadata"]["deletionTimestamp"]
    assert "foregroundDeletion" in answer["metadata"]["finalizers"]
    replica_sets, pods = _owned(apps, core, "foo", "web")
    assert replica_sets and pods
    wait_until(lambda: not any(_owned(apps, core, "foo", "web")), timeout=30,
               message="ReplicaSets and pods of web deleted by the garbage collector")
    wait_until(lambda: not [d for d in apps.list_namespaced_deployment("foo").items
                            if d.metadata.name == "web"], timeout=30,
               message="the Deployment removed once its dependents were gone")


def test_background_removes_the_owner_at_once_and_dependents_later(mesh, kube_client):
    apps, core = kube.AppsV1Api(kube_client), kube.CoreV1Api(kube_client)
    answer = apps.delete_namespaced_deployment(
        "web", "foo", body=kube.V1DeleteOptions(propagation_policy="Background"))
    assert answer["kind"] == "Status" and answer["status"] == "Success"
    with pytest.raises(ApiException) as missing:
        apps.read_namespaced_deployment("web", "foo")
    assert missing.value.status == 404
    wait_until(lambda: not any(_owned(apps, core, "foo", "web")), timeout=30,
               message="the orphaned ReplicaSet and its pods collected")


def test_orphan_leaves_dependents_without_the_owner_reference(mesh, kube_client):
    apps, core = kube.AppsV1Api(kube_client), kube.CoreV1Api(kube_client)
    apps.delete_namespaced_deployment(
        "web", "foo", body=kube.V1DeleteOptions(propagation_policy="Orphan"))
    replica_sets, pods = _owned(apps, core, "foo", "web")
    assert replica_sets and all(not rs.metadata.owner_references for rs in replica_sets)
    assert pods and all(not p.metadata.deletion_timestamp for p in pods)


def test_a_uid_precondition_that_does_not_match_is_a_409(mesh, kube_client):
    core = kube.CoreV1Api(kube_client)
    with pytest.raises(ApiException) as conflict:
        core.delete_namespaced_service(
            "web", "foo", body=kube.V1DeleteOptions(
                preconditions=kube.V1Preconditions(uid="not-the-uid")))
    assert conflict.value.status == 409 and "Precondition failed" in conflict.value.body
    assert core.read_namespaced_service("web", "foo").metadata.name == "web"


def test_deletecollection_deletes_what_the_selector_matches(mesh, kube_client):
    core = kube.CoreV1Api(kube_client)
    for name, rev in (("a", "old"), ("b", "old"), ("c", "new")):
        core.create_namespaced_config_map("istio-system", {"metadata": {
            "name": name, "labels": {"sim-test": rev}}})
    response = core.delete_collection_namespaced_config_map(
        "istio-system", label_selector="sim-test=old",
        body=kube.V1DeleteOptions(propagation_policy="Background"), _preload_content=False)
    answer = json.loads(response.data)  # the API answers with the list of what it deleted
    assert answer["kind"] == "ConfigMapList"
    assert sorted(item["metadata"]["name"] for item in answer["items"]) == ["a", "b"]
    left = core.list_namespaced_config_map("istio-system", label_selector="sim-test").items
    assert [item.metadata.name for item in left] == ["c"]


def test_an_unknown_propagation_policy_is_a_400(mesh, kube_client):
    core = kube.CoreV1Api(kube_client)
    with pytest.raises(ApiException) as refused:
        core.delete_namespaced_service(
            "web", "foo", body=kube.V1DeleteOptions(propagation_policy="Sometimes"))
    assert refused.value.status == 400
