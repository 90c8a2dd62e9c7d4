"""The official ``kubernetes`` client against the fake API: the wire format it expects."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from kubernetes import client as kube
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from analyzer.sim.scenario import ApiErrorFault, NeverReadyFault
from tests.fixtures.polling import wait_until
from tests.fixtures.sim_fixtures import api_client_for, fast_scenario

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def restart_patch() -> dict:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}


def deployment_rollout_complete(deployment: kube.V1Deployment) -> bool:
    """kubectl's rule (rollout_status.go) for a Deployment."""
    status = deployment.status
    if (status.observed_generation or 0) < deployment.metadata.generation:
        return False
    for condition in status.conditions or []:
        if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
            raise AssertionError("rollout failed: ProgressDeadlineExceeded")
    replicas = deployment.spec.replicas
    updated = status.updated_replicas or 0
    return (updated >= replicas and (status.replicas or 0) == updated
            and (status.available_replicas or 0) >= updated)


def pod_revisions(core: kube.CoreV1Api, namespace: str) -> list[str | None]:
    revisions = []
    for pod in core.list_namespaced_pod(namespace).items:
        if pod.metadata.deletion_timestamp:
            continue
        raw = (pod.metadata.annotations or {}).get("sidecar.istio.io/status")
        revisions.append(json.loads(raw)["revision"] if raw else None)
    return revisions


def proxy_images(core: kube.CoreV1Api, namespace: str) -> set[str]:
    images = set()
    for pod in core.list_namespaced_pod(namespace).items:
        if pod.metadata.deletion_timestamp:
            continue
        for container in [*(pod.spec.containers or []), *(pod.spec.init_containers or [])]:
            if container.name == "istio-proxy":
                images.add(container.image)
    return images


def move_tag(admission: kube.AdmissionregistrationV1Api, tag: str, revision: str) -> None:
    """What ``istioctl tag set --overwrite`` changes on the tag's MWC."""
    name = f"istio-revision-tag-{tag}"
    current = admission.read_mutating_webhook_configuration(name)
    for webhook in current.webhooks:
        webhook.client_config.service.name = f"istiod-{revision}"
    current.metadata.labels["istio.io/rev"] = revision
    admission.replace_mutating_webhook_configuration(name, current)


def test_kubeconfig_lists_every_deployment_and_reports_versions(mesh, kube_client):
    apps = kube.AppsV1Api(kube_client)
    names = {(d.metadata.namespace, d.metadata.name)
             for d in apps.list_deployment_for_all_namespaces().items}
    assert {("foo", "web"), ("bar", "api"), ("istio-ingress", "istio-ingressgateway"),
            ("istio-system", "istiod-1-14-6"), ("istio-system", "istiod-1-15-4")} <= names
    assert kube.VersionApi(kube_client).get_code().git_version.startswith("v1.")
    namespace = kube.CoreV1Api(kube_client).read_namespace("bar")
    assert namespace.metadata.labels["istio.io/rev"] == "default"


def test_seeded_istio_objects_have_the_chart_shapes(mesh, kube_client):
    admission = kube.AdmissionregistrationV1Api(kube_client)
    tags = admission.list_mutating_webhook_configuration(label_selector="istio.io/tag=default")
    assert [m.metadata.name for m in tags.items] == ["istio-revision-tag-default"]
    tag = tags.items[0]
    assert tag.metadata.labels["istio.io/rev"] == "1-14-6"
    assert [w.name for w in tag.webhooks] == [
        "rev.namespace.sidecar-injector.istio.io", "rev.object.sidecar-injector.istio.io",
        "namespace.sidecar-injector.istio.io", "object.sidecar-injector.istio.io"]
    assert {w.client_config.service.name for w in tag.webhooks} == {"istiod-1-14-6"}
    injectors = admission.list_mutating_webhook_configuration(
        label_selector="istio.io/rev=1-15-4,!istio.io/tag")
    assert [m.metadata.name for m in injectors.items] == ["istio-sidecar-injector-1-15-4"]
    validator = admission.read_validating_webhook_configuration("istiod-default-validator")
    assert validator.webhooks[0].client_config.service.name == "istiod-1-14-6"
    assert mesh.proxy_revisions("bar") == {"1-14-6": 3}


def test_label_selectors_with_set_and_negation(mesh, kube_client):
    apps = kube.AppsV1Api(kube_client)
    in_set = apps.list_deployment_for_all_namespaces(label_selector="app in (web,api)").items
    assert sorted(d.metadata.name for d in in_set) == ["api", "web"]
    not_istiod = apps.list_namespaced_deployment(
        "istio-system", label_selector="app=istiod,istio.io/rev!=1-14-6").items
    assert [d.metadata.name for d in not_istiod] == ["istiod-1-15-4"]
    by_field = kube.CoreV1Api(kube_client).list_namespaced_pod(
        "bar", field_selector="status.phase=Running").items
    assert len(by_field) == 3


def test_missing_object_answers_404_with_a_status_body(mesh, kube_client):
    with pytest.raises(ApiException) as caught:
        kube.AppsV1Api(kube_client).read_namespaced_deployment("nope", "bar")
    assert caught.value.status == 404
    body = json.loads(caught.value.body)
    assert (body["kind"], body["reason"], body["details"]["name"]) == ("Status", "NotFound",
                                                                      "nope")


def test_stale_resource_version_is_a_409_conflict(mesh, kube_client):
    apps = kube.AppsV1Api(kube_client)
    stale = apps.read_namespaced_deployment("web", "foo")
    apps.patch_namespaced_deployment("web", "foo", {"metadata": {"labels": {"team": "a"}}})
    stale.metadata.labels["team"] = "b"
    with pytest.raises(ApiException) as caught:
        apps.replace_namespaced_deployment("web", "foo", stale)
    assert caught.value.status == 409
    assert json.loads(caught.value.body)["reason"] == "Conflict"
    assert apps.read_namespaced_deployment("web", "foo").metadata.labels["team"] == "a"


def test_watch_replays_changes_after_a_resource_version(mesh, kube_client):
    apps = kube.AppsV1Api(kube_client)
    since = apps.list_namespaced_deployment("foo").metadata.resource_version
    apps.patch_namespaced_deployment("web", "foo", {"metadata": {"labels": {"seen": "yes"}}})
    events = []
    for event in watch.Watch().stream(apps.list_namespaced_deployment, "foo",
                                      resource_version=since, timeout_seconds=5):
        events.append(event)
        if (event["object"].metadata.labels or {}).get("seen") == "yes":
            break
    assert events[-1]["type"] == "MODIFIED"
    assert events[-1]["object"].metadata.name == "web"


def test_restart_rolls_out_per_kubectl_rules_and_is_counted_once(mesh, kube_client):
    apps = kube.AppsV1Api(kube_client)
    core = kube.CoreV1Api(kube_client)
    before = {p.metadata.name for p in core.list_namespaced_pod("bar").items}
    generation = apps.read_namespaced_deployment("api", "bar").metadata.generation
    apps.patch_namespaced_deployment("api", "bar", restart_patch())
    patched = apps.read_namespaced_deployment("api", "bar")
    assert patched.metadata.generation == generation + 1
    wait_until(lambda: deployment_rollout_complete(
        apps.read_namespaced_deployment("api", "bar")), timeout=30, message="rollout of bar/api")
    after = {p.metadata.name for p in core.list_namespaced_pod("bar").items
             if not p.metadata.deletion_timestamp}
    assert len(after) == 3 and not after & before
    assert mesh.restart_counts()[("Deployment", "bar", "api")] == 1
    assert RESTARTED_AT in mesh.template_changes()[0].annotations
    condition = next(c for c in patched.status.conditions or [] if c.type == "Progressing")
    assert condition.status == "True"


def test_moving_the_tag_reinjects_restarted_pods_with_the_new_revision(mesh, kube_client):
    apps = kube.AppsV1Api(kube_client)
    core = kube.CoreV1Api(kube_client)
    move_tag(kube.AdmissionregistrationV1Api(kube_client), "default", "1-15-4")
    assert set(pod_revisions(core, "foo")) == {"1-14-6"}  # running pods keep their proxy
    apps.patch_namespaced_deployment("web", "foo", restart_patch())
    wait_until(lambda: deployment_rollout_complete(apps.read_namespaced_deployment("web", "foo"))
               and set(pod_revisions(core, "foo")) == {"1-15-4"}, timeout=30,
               message="foo on 1-15-4")
    assert proxy_images(core, "foo") == {"docker.io/istio/proxyv2:1.15.4"}
    pod = core.list_namespaced_pod("foo").items[0]
    assert pod.metadata.annotations["istio.io/rev"] == "1-15-4"
    assert set(pod_revisions(core, "bar")) == {"1-14-6"}


def test_relabelled_namespace_uses_the_revision_injector(mesh, kube_client):
    apps = kube.AppsV1Api(kube_client)
    core = kube.CoreV1Api(kube_client)
    core.patch_namespace("foo", {"metadata": {"labels": {"istio.io/rev": "1-15-4"}}})
    apps.patch_namespaced_deployment("web", "foo", restart_patch())
    wait_until(lambda: set(pod_revisions(core, "foo")) == {"1-15-4"}, timeout=30,
               message="foo on 1-15-4 through istio-sidecar-injector-1-15-4")
    admission = kube.AdmissionregistrationV1Api(kube_client)
    tag = admission.read_mutating_webhook_configuration("istio-revision-tag-default")
    assert tag.metadata.labels["istio.io/rev"] == "1-14-6"


def test_pods_that_never_become_ready_end_in_progress_deadline_exceeded(mesh, kube_client):
    apps = kube.AppsV1Api(kube_client)
    mesh.set_fault(NeverReadyFault(namespace="bar", revision="1-15-4"))
    move_tag(kube.AdmissionregistrationV1Api(kube_client), "default", "1-15-4")
    apps.patch_namespaced_deployment("api", "bar", restart_patch())

    def reason() -> str | None:
        deployment = apps.read_namespaced_deployment("api", "bar")
        return next((c.reason for c in deployment.status.conditions or []
                     if c.type == "Progressing"), None)

    wait_until(lambda: reason() == "ProgressDeadlineExceeded", timeout=30,
               message="ProgressDeadlineExceeded on bar/api")
    deployment = apps.read_namespaced_deployment("api", "bar")
    assert (deployment.status.available_replicas or 0) == 3  # maxUnavailable 0 kept old pods
    assert mesh.proxy_revisions("bar") == {"1-14-6": 3, "1-15-4": 1}


def test_statefulset_and_daemonset_restart_per_kubectl_rules(mesh, kube_client):
    apps = kube.AppsV1Api(kube_client)
    apps.patch_namespaced_stateful_set("db", "baz", restart_patch())
    apps.patch_namespaced_daemon_set("agent", "baz", restart_patch())

    def stateful_done() -> bool:
        sts = apps.read_namespaced_stateful_set("db", "baz")
        status = sts.status
        return ((status.observed_generation or 0) >= sts.metadata.generation
                and (status.ready_replicas or 0) >= sts.spec.replicas
                and status.update_revision == status.current_revision
                and (status.updated_replicas or 0) == sts.spec.replicas)

    def daemon_done() -> bool:
        ds = apps.read_namespaced_daemon_set("agent", "baz")
        status = ds.status
        return ((status.observed_generation or 0) >= ds.metadata.generation
                and (status.updated_number_scheduled or 0) >= status.desired_number_scheduled
                and (status.number_available or 0) >= status.desired_number_scheduled)

    wait_until(lambda: stateful_done() and daemon_done(), timeout=30,
               message="statefulset and daemonset rollouts")
    assert mesh.restart_counts() == {("StatefulSet", "baz", "db"): 1,
                                     ("DaemonSet", "baz", "agent"): 1}


def test_pods_opting_out_are_not_injected_and_native_sidecars_use_init_containers(make_mesh):
    scenario = fast_scenario(native_sidecars=True, namespaces=[
        {"name": "foo", "workloads": [{"name": "web", "replicas": 1},
                                      {"name": "batch", "replicas": 1, "inject": False}]}])
    mesh = make_mesh(scenario)
    core = kube.CoreV1Api(api_client_for(mesh))
    pods = {p.metadata.labels["app"]: p for p in core.list_namespaced_pod("foo").items}
    assert "sidecar.istio.io/status" not in (pods["batch"].metadata.annotations or {})
    web = pods["web"]
    proxy = next(c for c in web.spec.init_containers if c.name == "istio-proxy")
    assert proxy.restart_policy == "Always"
    assert all(c.name != "istio-proxy" for c in web.spec.containers)


def test_config_maps_leases_and_events(mesh, kube_client):
    core = kube.CoreV1Api(kube_client)
    coordination = kube.CoordinationV1Api(kube_client)
    created = core.create_namespaced_config_map("default", kube.V1ConfigMap(
        metadata=kube.V1ObjectMeta(name="state"), data={"step": "1"}))
    with pytest.raises(ApiException) as exists:
        core.create_namespaced_config_map("default", kube.V1ConfigMap(
            metadata=kube.V1ObjectMeta(name="state")))
    assert exists.value.status == 409
    assert json.loads(exists.value.body)["reason"] == "AlreadyExists"
    created.data["step"] = "2"
    updated = core.replace_namespaced_config_map("state", "default", created)
    assert int(updated.metadata.resource_version) > int(created.metadata.resource_version)
    with pytest.raises(ApiException) as stale:
        core.replace_namespaced_config_map("state", "default", created)
    assert stale.value.status == 409
    core.delete_namespaced_config_map("state", "default")

    lease = coordination.create_namespaced_lease("default", kube.V1Lease(
        metadata=kube.V1ObjectMeta(name="leader"),
        spec=kube.V1LeaseSpec(holder_identity="a", lease_duration_seconds=15)))
    lease.spec.holder_identity = "b"
    coordination.replace_namespaced_lease("leader", "default", lease)
    lease.spec.holder_identity = "c"
    with pytest.raises(ApiException) as lost:
        coordination.replace_namespaced_lease("leader", "default", lease)
    assert lost.value.status == 409
    assert coordination.read_namespaced_lease("leader", "default").spec.holder_identity == "b"

    # Events about a Namespace (cluster-scoped) live in "default" (events.go)
    core.create_namespaced_event("default", kube.CoreV1Event(
        metadata=kube.V1ObjectMeta(generate_name="bar."),
        involved_object=kube.V1ObjectReference(kind="Namespace", name="bar"),
        reason="CanaryStarted", message="restarting bar", type="Normal"))
    kube.EventsV1Api(kube_client).create_namespaced_event("default", kube.EventsV1Event(
        metadata=kube.V1ObjectMeta(generate_name="bar."),
        event_time=datetime.now(UTC), reporting_controller="canary-analyzer",
        reporting_instance="test", action="Judge", reason="CanaryPassed",
        regarding=kube.V1ObjectReference(kind="Namespace", name="bar"), note="bar passed",
        type="Normal"))
    reasons = {e.reason for e in core.list_namespaced_event("default").items}
    assert {"CanaryStarted", "CanaryPassed"} <= reasons


def test_injected_api_errors_hit_the_nth_write(mesh, kube_client):
    core = kube.CoreV1Api(kube_client)
    mesh.set_fault(ApiErrorFault(status=500, at_request=2, count=2, methods=["PATCH"]))
    outcomes = []
    for attempt in range(4):
        try:
            core.patch_namespace("foo", {"metadata": {"labels": {"try": str(attempt)}}})
            outcomes.append(200)
        except ApiException as error:
            outcomes.append(error.status)
    assert outcomes == [200, 500, 500, 200]
    assert [w.status_code for w in mesh.writes() if w.method == "PATCH"] == outcomes
