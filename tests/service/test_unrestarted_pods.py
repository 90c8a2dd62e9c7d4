"""Which pods the upgrade verifies, and which workloads it refuses, on the simulated API server.

Why: only Deployments, StatefulSets and DaemonSets are restarted, so only the pods they own
(Pod → ReplicaSet → Deployment, Pod → StatefulSet, Pod → DaemonSet, by controller
ownerReferences) can be on the new proxy afterwards. Job and CronJob pods (running or
completed), bare pods and host-network pods keep their proxy (istio
``pkg/kube/inject/inject.go`` ``injectRequired`` never injects ``hostNetwork``): they are
reported, never failed. OnDelete and partitioned StatefulSets count as rolled out by
kubectl (``pkg/polymorphichelpers/rollout_status.go``) while their pods never change
(kubernetes ``pkg/controller/statefulset/stateful_set_utils.go``): preflight names them.
Pods and workloads are created through the official client over HTTP.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubernetes import client as kube

from analyzer.adapters.kubernetes import KubernetesCluster
from analyzer.core.upgrade import Target
from analyzer.service.preflight import PreflightError, preflight
from tests.fixtures.polling import wait_until
from tests.fixtures.sim_fixtures import (  # noqa: F401
    GATEWAY,
    api_client_for,
    make_mesh,
    make_prometheus,
    mesh,
    upgrade_request,
)

REPO = Path(__file__).resolve().parents[2]



def _pod(name: str, owner: tuple[str, str, str] | None = None, host_network: bool = False):
    metadata: dict = {"name": name, "labels": {"app": name}}
    if owner is not None:
        api_version, kind, owner_name = owner
        metadata["ownerReferences"] = [{
            "apiVersion": api_version, "kind": kind, "name": owner_name,
            "uid": f"uid-{owner_name}", "controller": True, "blockOwnerDeletion": True,
        }]  # fmt: skip
    spec: dict = {
        "containers": [{"name": "main", "image": "busybox"}],
        "restartPolicy": "Never" if owner and owner[1] == "Job" else "Always",
    }
    if host_network:
        spec["hostNetwork"] = True
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def _phase(core: kube.CoreV1Api, namespace: str, name: str) -> str | None:
    pod = core.read_namespaced_pod(name, namespace)
    return pod.status.phase if pod.status else None


def test_only_pods_of_restarted_workloads_are_verified_the_others_are_listed(cluster, mesh):  # noqa: F811
    core = cluster.core
    # pods beside the Deployment, all admitted while the tag points at the old revision
    core.create_namespaced_pod("foo", _pod("report-29112345-x1", ("batch/v1", "Job",
                                                                 "report-29112345")))  # fmt: skip
    core.create_namespaced_pod("foo", _pod("migrate-7bq2k", ("batch/v1", "Job", "migrate")))
    core.create_namespaced_pod("foo", _pod("debug-shell"))
    core.create_namespaced_pod("foo", _pod("node-probe", host_network=True))
    wait_until(
        lambda: _phase(core, "foo", "migrate-7bq2k") == "Running",
        timeout=30, message="the Job pod running",
    )  # fmt: skip
    core.patch_namespaced_pod_status("migrate-7bq2k", "foo", {"status": {"phase": "Succeeded"}})
    cluster.move_tag("default", "1-15-4")
    targets = [Target(namespace="foo")]
    cluster.restart(targets, "u.wave-1", datetime.now(UTC))
    wait_until(lambda: cluster.rollout_status(targets).complete, timeout=30, message="rollout")
    status = wait_until(
        lambda: (s := cluster.proxy_status(targets, "1-15-4")).checked == 2
        and not s.mismatched and s,
        timeout=30, message="the Deployment's pods on the new proxy",
    )  # fmt: skip
    left = {line.split(" ", 1)[0]: line for line in status.not_restarted}
    assert set(left) == {
        "foo/report-29112345-x1", "foo/migrate-7bq2k", "foo/debug-shell", "foo/node-probe"
    }  # fmt: skip
    assert "Job report-29112345" in left["foo/report-29112345-x1"]
    assert left["foo/report-29112345-x1"].endswith("revision 1-14-6")
    assert "Job migrate, Succeeded" in left["foo/migrate-7bq2k"]
    assert left["foo/migrate-7bq2k"].endswith("revision 1-14-6")
    assert "bare pod" in left["foo/debug-shell"]
    assert left["foo/debug-shell"].endswith("revision 1-14-6")
    assert "bare pod" in left["foo/node-probe"]
    # the old code checked every pod of the namespace: these would have failed the wave
    assert _phase(core, "foo", "migrate-7bq2k") == "Succeeded"  # a terminal phase stays


def _statefulset(name: str, strategy: dict, replicas: int = 2) -> dict:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas, "serviceName": name, "selector": {"matchLabels": labels},
            "updateStrategy": strategy,
            "template": {"metadata": {"labels": labels},
                         "spec": {"containers": [{"name": "main", "image": "busybox"}]}},
        },
    }  # fmt: skip



def test_preflight_names_ondelete_partitioned_and_operator_owned_workloads(cluster, mesh):  # noqa: F811
    apps = cluster.apps
    apps.create_namespaced_stateful_set("bar", _statefulset("legacy-db", {"type": "OnDelete"}))
    apps.create_namespaced_stateful_set("baz", _statefulset(
        "ledger", {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}))  # fmt: skip
    owned = _statefulset("cache", {"type": "RollingUpdate"})
    owned["metadata"]["ownerReferences"] = [{
        "apiVersion": "cache.example.com/v1", "kind": "RedisCluster", "name": "cache",
        "uid": "uid-cache", "controller": True,
    }]  # fmt: skip
    apps.create_namespaced_stateful_set("foo", owned)
    writes = len(mesh.writes())
    with pytest.raises(PreflightError) as refused:
        preflight(cluster, upgrade_request())
    text = str(refused.value)
    assert "StatefulSet bar/legacy-db: updateStrategy OnDelete" in text
    assert (
        "kubectl -n bar patch statefulset legacy-db -p "
        '\'{"spec":{"updateStrategy":{"type":"RollingUpdate"}}}\'' in text
    )
    assert "StatefulSet baz/ledger: partition 1" in text
    assert '{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}' in text
    assert "StatefulSet foo/cache: managed by RedisCluster cache" in text
    assert "--exclude-unrollable" in text
    assert len(mesh.writes()) == writes  # a refusal changes nothing
    checked = preflight(cluster, upgrade_request(exclude_unrollable=True))
    assert any("legacy-db" in w and "excluded" in w for w in checked.warnings)


def test_an_ondelete_statefulset_is_left_alone_and_its_pods_reported(cluster, mesh):  # noqa: F811
    cluster.apps.create_namespaced_stateful_set(
        "bar", _statefulset("legacy-db", {"type": "OnDelete"})
    )
    target = [Target(namespace="bar")]
    wait_until(
        lambda: len(mesh.proxy_revisions("bar")) and cluster.rollout_status(target).complete,
        timeout=30, message="bar running",
    )  # fmt: skip
    cluster.move_tag("default", "1-15-4")
    cluster.restart(target, "u.wave-1", datetime.now(UTC))
    sts = cluster.apps.read_namespaced_stateful_set("legacy-db", "bar")
    assert "kubectl.kubernetes.io/restartedAt" not in (sts.spec.template.metadata.annotations or {})
    wait_until(lambda: cluster.rollout_status(target).complete, timeout=30, message="rollout")
    status = wait_until(
        lambda: (s := cluster.proxy_status(target, "1-15-4")).checked and not s.mismatched and s,
        timeout=30, message="the Deployment's pods on the new proxy",
    )  # fmt: skip
    legacy = [line for line in status.not_restarted if line.startswith("bar/legacy-db-")]
    assert len(legacy) == 2 and all("OnDelete" in line for line in legacy), legacy


def test_an_argo_rollout_s_replicaset_is_named_by_preflight(cluster, mesh):  # noqa: F811
    labels = {"app": "checkout", "rollouts-pod-template-hash": "6f9c"}
    replica_set = {
        "apiVersion": "apps/v1", "kind": "ReplicaSet",
        "metadata": {"name": "checkout-6f9c", "labels": labels, "ownerReferences": [{
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": "checkout",
            "uid": "uid-checkout", "controller": True}]},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "main", "image": "busybox"}]}}},
    }  # fmt: skip
    cluster.apps.create_namespaced_replica_set("foo", replica_set)
    wait_until(
        lambda: any(p.metadata.name.startswith("checkout-6f9c")
                    for p in cluster.core.list_namespaced_pod("foo").items),
        timeout=30, message="the Rollout's pod",
    )  # fmt: skip
    with pytest.raises(PreflightError) as refused:
        preflight(cluster, upgrade_request())
    assert "Rollout foo/checkout" in str(refused.value)


def test_the_upgrade_command_refuses_with_exit_2_and_the_fix(mesh, make_prometheus, tmp_path):  # noqa: F811
    cluster_client = KubernetesCluster(api_client_for(mesh), request_timeout=10, backoff=0.01)
    try:
        cluster_client.apps.create_namespaced_stateful_set(
            "bar", _statefulset("legacy-db", {"type": "OnDelete"})
        )
    finally:
        cluster_client.close()
    server = make_prometheus(mesh)
    command = [
        sys.executable, "-m", "analyzer", "upgrade", "--to-revision", "1-15-4",
        "--kubeconfig", str(mesh.kubeconfig_path), "--prometheus-url", server.url,
        "--output", "json",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO), "CANARY_UPGRADE__GATEWAYS": "[]"}
    writes = len(mesh.writes())
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert "StatefulSet bar/legacy-db: updateStrategy OnDelete" in done.stderr
    assert "kubectl -n bar patch statefulset legacy-db" in done.stderr
    assert len(mesh.writes()) == writes
    done = subprocess.run([*command, "--exclude-unrollable", "--dry-run"], env=env,
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "legacy-db" in done.stderr and "excluded" in done.stderr
