"""The simulated mesh behaves like a real cluster where the upgrade must not be fooled.

Each test names the real source it models: istiod's injection decision
(istio/istio pkg/kube/inject/inject.go ``injectRequired``), the Job controller and kubelet
(kubernetes/kubernetes pkg/controller/job, pkg/kubelet), per-pod scraping as Istio's
Prometheus addon does it (samples/addons/prometheus.yaml) and Istio's two reporters.
Clients are the official Python client and real kubectl over HTTP.
"""

from __future__ import annotations

import shutil
import subprocess

import httpx
import pytest
from kubernetes import client as kube
from prometheus_client.parser import text_string_to_metric_families

from analyzer.sim.injection import InjectorConfig, inject_required, proxy_revision
from tests.fixtures.polling import wait_until
from tests.fixtures.sim_fixtures import api_client_for, fast_scenario
from tests.sim.test_kube_api import move_tag, restart_patch

ENABLED = InjectorConfig()


def pod(labels=None, annotations=None, host_network=False):
    spec = {"containers": [{"name": "app"}]}
    if host_network:
        spec["hostNetwork"] = True
    return {"metadata": {"labels": labels or {}, "annotations": annotations or {}},
            "spec": spec}


# -- injection: inject.go injectRequired -----------------------------------------------------


def test_host_network_pods_are_never_injected_even_when_asked():
    # inject.go: "Skip injection when host networking is enabled" comes before every label
    assert not inject_required(pod({"sidecar.istio.io/inject": "true"}, host_network=True),
                               "bar", ENABLED)


def test_pods_in_kube_system_and_kube_public_are_skipped():
    # initializer.go IgnoredNamespaces
    for namespace in ("kube-system", "kube-public", "kube-node-lease"):
        assert not inject_required(pod({"sidecar.istio.io/inject": "true"}), namespace, ENABLED)
    assert inject_required(pod(), "bar", ENABLED)


def test_the_label_beats_the_annotation():
    # inject.go: "The label is the new API; if both are present we prefer the label"
    both = pod({"sidecar.istio.io/inject": "true"}, {"sidecar.istio.io/inject": "false"})
    assert inject_required(both, "bar", ENABLED)
    reverse = pod({"sidecar.istio.io/inject": "false"}, {"sidecar.istio.io/inject": "true"})
    assert not inject_required(reverse, "bar", ENABLED)
    assert not inject_required(pod(annotations={"sidecar.istio.io/inject": "false"}), "bar",
                               ENABLED)


def test_never_then_always_inject_selectors_then_the_policy():
    config = InjectorConfig.parse(
        "policy: disabled\n"
        "neverInjectSelector:\n- matchExpressions:\n  - {key: batch, operator: Exists}\n"
        "alwaysInjectSelector:\n- matchLabels: {mesh: always}\n- matchLabels: {batch: x}\n")
    # never wins over always when both match; an explicit label wins over both
    assert not inject_required(pod({"batch": "x", "mesh": "always"}), "bar", config)
    assert inject_required(pod({"batch": "x", "sidecar.istio.io/inject": "true"}), "bar",
                           config)
    assert inject_required(pod({"mesh": "always"}), "bar", config)
    assert not inject_required(pod({"app": "web"}), "bar", config)  # policy: disabled
    # an invalid value falls back to the default policy
    assert inject_required(pod({"sidecar.istio.io/inject": "yes"}), "bar", ENABLED)


def _injected_pod_names(api, namespace):
    pods = kube.CoreV1Api(api).list_namespaced_pod(namespace).items
    return {p.metadata.name: (p.metadata.annotations or {}).get("istio.io/rev") for p in pods}


def test_the_injector_config_map_decides_and_injected_pods_carry_rev_and_status(make_mesh):
    scenario = fast_scenario(namespaces=[
        {"name": "foo", "workloads": [{"name": "web", "replicas": 1}],
         "bare_pods": [{"name": "shell", "labels": {"tier": "debug"}},
                       {"name": "node-probe", "host_network": True}]},
        {"name": "legacy", "labels": {"istio-injection": "enabled"},
         "workloads": [{"name": "old", "replicas": 1}]},
        {"name": "plain", "labels": {},
         "workloads": [{"name": "opted-in", "replicas": 1,
                        "pod_labels": {"sidecar.istio.io/inject": "true"}},
                       {"name": "left-out", "replicas": 1}]},
    ], regressions=[])
    mesh = make_mesh(scenario)
    api = api_client_for(mesh)
    try:
        foo = _injected_pod_names(api, "foo")
        assert foo["shell"] == "1-14-6" and foo["node-probe"] is None
        web = next(name for name in foo if name.startswith("web-"))
        assert foo[web] == "1-14-6"
        # istio-injection=enabled and the pod label reach the default tag's webhooks
        assert set(_injected_pod_names(api, "legacy").values()) == {"1-14-6"}
        plain = _injected_pod_names(api, "plain")
        assert {n.rsplit("-", 2)[0]: r for n, r in plain.items()} == {
            "opted-in": "1-14-6", "left-out": None}
        shell = kube.CoreV1Api(api).read_namespaced_pod("shell", "foo")
        assert proxy_revision(shell.to_dict() | {"metadata": {
            "annotations": shell.metadata.annotations}}) == "1-14-6"
        # neverInjectSelector in 1-14-6's injector ConfigMap: a new debug pod stays bare
        core = kube.CoreV1Api(api)
        config_map = core.read_namespaced_config_map("istio-sidecar-injector-1-14-6",
                                                     "istio-system")
        config_map.data["config"] = ("policy: enabled\nneverInjectSelector:\n"
                                     "- matchLabels: {tier: debug}\n")
        core.replace_namespaced_config_map("istio-sidecar-injector-1-14-6", "istio-system",
                                           config_map)
        core.create_namespaced_pod("foo", {
            "metadata": {"name": "shell-2", "labels": {"tier": "debug"}},
            "spec": {"containers": [{"name": "sh", "image": "busybox"}]}})
        assert _injected_pod_names(api, "foo")["shell-2"] is None
    finally:
        api.close()


# -- workloads the upgrade never restarts ------------------------------------------------------


def _unmanaged_scenario():
    return fast_scenario(namespaces=[
        {"name": "bar", "workloads": [{"name": "api", "replicas": 2}],
         "jobs": [{"name": "export", "state": "running"},
                  {"name": "compact", "state": "completed"},
                  {"name": "nightly-29415480", "cron_job": "nightly"}],
         "bare_pods": [{"name": "debug"},
                       {"name": "operator-pod", "owner": {"kind": "Widget",
                                                          "api_version": "example.com/v1",
                                                          "name": "w1"}}],
         "rollouts": [{"name": "checkout", "replicas": 2}]},
    ], regressions=[])


def test_jobs_cronjobs_and_bare_pods_as_the_official_client_lists_them(make_mesh):
    mesh = make_mesh(_unmanaged_scenario())
    api = api_client_for(mesh)
    try:
        batch = kube.BatchV1Api(api)
        jobs = {j.metadata.name: j for j in batch.list_namespaced_job("bar").items}
        assert set(jobs) == {"export", "compact", "nightly-29415480"}
        assert jobs["compact"].status.succeeded == 1
        assert [c.type for c in jobs["compact"].status.conditions] == [
            "SuccessCriteriaMet", "Complete"]
        assert jobs["export"].status.active == 1
        [owner] = jobs["nightly-29415480"].metadata.owner_references
        [cron] = batch.list_namespaced_cron_job("bar").items
        assert (owner.kind, owner.name, owner.uid) == ("CronJob", "nightly", cron.metadata.uid)
        pods = {p.metadata.name: p for p in kube.CoreV1Api(api).list_namespaced_pod("bar").items}
        by_owner = {}
        for name, item in pods.items():
            refs = item.metadata.owner_references or []
            by_owner[name] = (refs[0].kind if refs else None, item.status.phase)
        compact = [k for k in by_owner if k.startswith("compact-")]
        assert [by_owner[k] for k in compact] == [("Job", "Succeeded")]
        assert by_owner["debug"] == (None, "Running")
        assert by_owner["operator-pod"] == ("Widget", "Running")
        checkout = [k for k in by_owner if k.startswith("checkout-")]
        assert len(checkout) == 2 and {by_owner[k] for k in checkout} == {
            ("ReplicaSet", "Running")}
        rs_name = pods[checkout[0]].metadata.owner_references[0].name
        rs = kube.AppsV1Api(api).read_namespaced_replica_set(rs_name, "bar")
        assert rs.metadata.owner_references[0].kind == "Rollout"
        assert rs.metadata.owner_references[0].api_version == "argoproj.io/v1alpha1"
        # the job-name labels the Job controller sets
        export = next(p for k, p in pods.items() if k.startswith("export-"))
        assert export.metadata.labels["batch.kubernetes.io/job-name"] == "export"
        assert export.spec.restart_policy == "Never"
    finally:
        api.close()


def test_a_job_pod_finishes_and_its_job_completes(make_mesh):
    scenario = fast_scenario(namespaces=[
        {"name": "bar", "jobs": [{"name": "short", "runs_for": "30s"}]}], regressions=[])
    mesh = make_mesh(scenario)
    api = api_client_for(mesh)
    try:
        batch = kube.BatchV1Api(api)
        wait_until(lambda: batch.read_namespaced_job("short", "bar").status.succeeded == 1,
                   timeout=30, message="the Job to complete once its pod exited")
        [finished] = kube.CoreV1Api(api).list_namespaced_pod("bar").items
        assert finished.status.phase == "Succeeded"
        ready = next(c for c in finished.status.conditions if c.type == "Ready")
        assert (ready.status, ready.reason) == ("False", "PodCompleted")
    finally:
        api.close()


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine")
def test_real_kubectl_lists_jobs_cronjobs_and_completed_pods(make_mesh, tmp_path):
    mesh = make_mesh(_unmanaged_scenario())

    def kubectl(*args):
        done = subprocess.run([KUBECTL, "--kubeconfig", str(mesh.kubeconfig_path),
                               "--cache-dir", str(tmp_path), *args],
                              capture_output=True, text=True, timeout=90, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    jobs = kubectl("get", "jobs", "-n", "bar", "-o", "name")
    assert set(jobs.split()) == {"job.batch/export", "job.batch/compact",
                                 "job.batch/nightly-29415480"}
    assert kubectl("get", "cronjobs", "-n", "bar", "-o", "name").split() == [
        "cronjob.batch/nightly"]
    rows = [line.split() for line in kubectl("get", "pods", "-n", "bar").splitlines()[1:]]
    status = {row[0]: row[2] for row in rows}
    assert status["debug"] == "Running"
    assert [s for n, s in status.items() if n.startswith("compact-")] == ["Completed"]


# -- metrics: one series set per pod, two reporters ------------------------------------------


def _series(mesh):
    text = httpx.get(mesh.metrics_url, timeout=5).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return [s for s in families["istio_requests"].samples if s.name == "istio_requests_total"]


def test_each_pod_has_its_own_series_and_they_end_when_the_pod_goes(make_mesh):
    mesh = make_mesh()
    api = api_client_for(mesh)
    try:
        core = kube.CoreV1Api(api)
        old_pods = {p.metadata.name for p in core.list_namespaced_pod("bar").items}

        def destination_pods():
            return {s.labels["pod"] for s in _series(mesh)
                    if s.labels["reporter"] == "destination"
                    and s.labels["destination_workload_namespace"] == "bar"}

        wait_until(lambda: destination_pods() == old_pods, timeout=20,
                   message="one destination series set per bar pod")
        for sample in _series(mesh):
            if sample.labels["pod"] in old_pods:
                assert sample.labels["namespace"] == "bar"
                assert sample.labels["istio_io_rev"] == "1-14-6"
        move_tag(kube.AdmissionregistrationV1Api(api), "default", "1-15-4")
        kube.AppsV1Api(api).patch_namespaced_deployment("api", "bar", restart_patch())
        wait_until(lambda: destination_pods() and not destination_pods() & old_pods,
                   timeout=60, message="the old pods' series to leave with the old pods")
        new_series = [s for s in _series(mesh) if s.labels["pod"] in destination_pods()]
        assert {s.labels["istio_io_rev"] for s in new_series} == {"1-15-4"}
    finally:
        api.close()


def test_new_pods_counters_start_from_zero_in_prometheus(make_mesh, make_prometheus):
    mesh = make_mesh()
    prometheus = make_prometheus(mesh)
    api = api_client_for(mesh)
    try:
        old = {p.metadata.name for p in kube.CoreV1Api(api).list_namespaced_pod("bar").items}
        kube.AppsV1Api(api).patch_namespaced_deployment("api", "bar", restart_patch())
        query = ('min_over_time(sum by (pod) (istio_requests_total{reporter="destination",'
                 'namespace="bar"})[1h:1s])')

        def new_pods_seen():
            return {r["metric"]["pod"]: float(r["value"][1]) for r in prometheus.query(query)
                    if r["metric"]["pod"] not in old}

        wait_until(lambda: len(new_pods_seen()) >= 3, timeout=60,
                   message="Prometheus scraping the restarted pods' own series")
        old_total = prometheus.query(
            'max(sum by (pod) (istio_requests_total{reporter="destination",namespace="bar"}))')
        # a new pod's counter starts low, far below the old pods' accumulated counts
        assert max(new_pods_seen().values()) < float(old_total[0]["value"][1])
    finally:
        api.close()


def test_source_and_destination_series_are_distinct_and_a_source_regression_shows_only_there(
        make_mesh):
    scenario = fast_scenario(
        source_reporter=True,
        regressions=[{"revision": "1-15-4", "namespace": "bar", "side": "source",
                      "error_rate_pp": 50}])
    mesh = make_mesh(scenario)
    api = api_client_for(mesh)
    try:
        def reported_by(namespace):
            return [s for s in _series(mesh) if s.labels["reporter"] == "source"
                    and s.labels["source_workload_namespace"] == namespace]

        # the first traffic tick may not have run yet when the mesh reports ready
        wait_until(lambda: reported_by("istio-ingress") and reported_by("bar"), timeout=30,
                   message="source-reported series from the gateway and from bar's own calls")
        gateway = reported_by("istio-ingress")
        assert {s.labels["namespace"] for s in gateway} == {"istio-ingress"}
        outbound = reported_by("bar")
        assert {s.labels["source_workload"] for s in outbound} == {"api"}
        assert {s.labels["destination_workload"] for s in outbound} == {"unknown"}
        move_tag(kube.AdmissionregistrationV1Api(api), "default", "1-15-4")
        kube.AppsV1Api(api).patch_namespaced_deployment("api", "bar", restart_patch())

        def share(reporter, namespace_label):
            counts = {"all": 0.0, "bad": 0.0}
            for s in _series(mesh):
                if (s.labels["reporter"] == reporter and s.labels["istio_io_rev"] == "1-15-4"
                        and s.labels[namespace_label] == "bar"
                        and s.labels["namespace"] == "bar"):
                    counts["all"] += s.value
                    if s.labels["response_code"].startswith("5"):
                        counts["bad"] += s.value
            return counts["bad"] / counts["all"] if counts["all"] > 500 else None

        wait_until(lambda: share("source", "source_workload_namespace") is not None
                   and share("destination", "destination_workload_namespace") is not None,
                   timeout=60, message="traffic from the new pods in both reporters")
        assert share("source", "source_workload_namespace") > 0.3  # the new proxy's own calls
        assert share("destination", "destination_workload_namespace") < 0.05  # served: fine
    finally:
        api.close()
