"""The simulated API server refuses the Events the real one refuses, with its message.

Why: Events about a Namespace created in that namespace were refused by real API servers
and swallowed, so none ever appeared; the simulated API server accepted them. Modelled on
kubernetes/kubernetes pkg/apis/core/validation/events.go (ValidateEventCreate,
legacyValidateEvent); the official client sends each Event over HTTP.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest
from kubernetes import client as kube
from kubernetes.client.exceptions import ApiException

from analyzer.adapters.kubernetes import KubernetesCluster
from tests.fixtures.sim_fixtures import api_client_for, kube_client, mesh  # noqa: F401

MISMATCH = 'involvedObject.namespace: Invalid value: "": does not match event.namespace'


def core_event(namespace_object: str) -> kube.CoreV1Event:
    return kube.CoreV1Event(
        metadata=kube.V1ObjectMeta(generate_name=f"{namespace_object}."),
        involved_object=kube.V1ObjectReference(kind="Namespace", name=namespace_object,
                                               api_version="v1"),
        reason="CanaryStarted", message="restarting", type="Normal")


def refusal(call) -> dict:
    with pytest.raises(ApiException) as refused:
        call()
    assert refused.value.status == 422
    return json.loads(refused.value.body)


def test_core_event_about_a_namespace_must_be_in_default(kube_client):  # noqa: F811
    core = kube.CoreV1Api(kube_client)
    body = refusal(lambda: core.create_namespaced_event("bar", core_event("bar")))
    assert body["reason"] == "Invalid"
    assert body["message"].startswith('Event "bar.')
    assert body["message"].endswith(f"is invalid: {MISMATCH}")
    assert body["details"]["causes"] == [{
        "reason": "FieldValueInvalid", "field": "involvedObject.namespace",
        "message": 'Invalid value: "": does not match event.namespace'}]
    created = core.create_namespaced_event("default", core_event("bar"))
    assert created.metadata.namespace == "default"


def test_event_with_event_time_about_a_namespace_default_or_kube_system(kube_client):  # noqa: F811
    events = kube.EventsV1Api(kube_client)

    def event(**changes) -> kube.EventsV1Event:
        fields = dict(metadata=kube.V1ObjectMeta(generate_name="bar."),
                      event_time=datetime.now(UTC), reporting_controller="canary-analyzer.io/x",
                      reporting_instance="replica-1", action="Judge", reason="CanaryPassed",
                      regarding=kube.V1ObjectReference(kind="Namespace", name="bar"),
                      note="bar passed", type="Normal")
        fields.update(changes)
        return kube.EventsV1Event(**fields)

    assert MISMATCH in refusal(
        lambda: events.create_namespaced_event("bar", event()))["message"]
    for namespace in ("default", "kube-system"):
        events.create_namespaced_event(namespace, event())
    body = refusal(lambda: events.create_namespaced_event(
        "default", event(action=None, reporting_instance=None)))
    assert body["message"].endswith(
        "is invalid: [reportingInstance: Required value, action: Required value]")
    without_time = kube_client.sanitize_for_serialization(event())
    del without_time["eventTime"]
    # the typed client insists on eventTime; its generic call sends what it is given
    request = kube_client.param_serialize(
        method="POST", resource_path="/apis/events.k8s.io/v1/namespaces/default/events",
        header_params={"Content-Type": "application/json"}, body=without_time,
        auth_settings=["BearerToken"])
    response = kube_client.call_api(*request)
    response.read()
    assert response.status == 422
    assert "eventTime: Required value" in json.loads(response.data)["message"]


def test_the_adapter_records_events_kubectl_finds_in_default(mesh, kube_client):  # noqa: F811
    cluster = KubernetesCluster(api_client_for(mesh), request_timeout=10, backoff=0.01)
    try:
        cluster.record_event("bar", "CanaryStarted", "restarting bar", warning=False)
        cluster.record_event("bar", "CanaryFailed", "bar regressed", warning=True)
    finally:
        cluster.close()
    listed = kube.CoreV1Api(kube_client).list_namespaced_event("default").items
    ours = {(e.reason, e.type, e.involved_object.kind, e.involved_object.name)
            for e in listed if e.reporting_component == "canary-analyzer.io/upgrade"}
    assert ours == {("CanaryStarted", "Normal", "Namespace", "bar"),
                    ("CanaryFailed", "Warning", "Namespace", "bar")}
    times = [e.event_time for e in listed if e.reporting_component]
    assert all(t is not None for t in times)


def test_a_refused_event_is_logged_once_with_the_api_message(mesh, caplog):  # noqa: F811
    cluster = KubernetesCluster(api_client_for(mesh), request_timeout=10, backoff=0.01)
    cluster.reporting_instance = ""  # what the API server requires, missing
    try:
        with caplog.at_level(logging.WARNING, logger="canary_analyzer.kubernetes"):
            cluster.record_event("bar", "CanaryStarted", "restarting bar", warning=False)
            cluster.record_event("baz", "CanaryStarted", "restarting baz", warning=False)
    finally:
        cluster.close()
    refused = [r for r in caplog.records if "refuses our Events" in r.getMessage()]
    assert len(refused) == 1
    assert "reportingInstance: Required value" in refused[0].fields["message"]
    assert refused[0].fields["status"] == 422
