"""Real kubectl, an independent client, against the fake API and its written kubeconfig."""

from __future__ import annotations

import shutil
import subprocess

import pytest

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(
    KUBECTL is None,
    reason="kubectl is not installed on this machine; it is an optional independent client",
)


def kubectl(mesh, cache_dir, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(mesh.kubeconfig_path), "--cache-dir", str(cache_dir),
         *args], capture_output=True, text=True, timeout=90, check=False)


def test_kubectl_get_deployments_in_all_namespaces(mesh, tmp_path):
    result = kubectl(mesh, tmp_path, "get", "deploy", "-A")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["NAMESPACE", "NAME"]
    rows = {tuple(line.split()[:2]) for line in lines[1:]}
    assert {("bar", "api"), ("foo", "web"), ("istio-ingress", "istio-ingressgateway"),
            ("istio-system", "istiod-1-15-4")} <= rows


def test_kubectl_rollout_restart_then_status_succeeds(mesh, tmp_path):
    restart = kubectl(mesh, tmp_path, "rollout", "restart", "deployment/api", "-n", "bar")
    assert restart.returncode == 0, restart.stderr
    status = kubectl(mesh, tmp_path, "rollout", "status", "deployment/api", "-n", "bar",
                     "--timeout=60s")
    assert status.returncode == 0, status.stderr
    assert 'deployment "api" successfully rolled out' in status.stdout
    assert mesh.restart_counts() == {("Deployment", "bar", "api"): 1}
    assert mesh.proxy_revisions("bar") == {"1-14-6": 3}


def test_kubectl_restarts_statefulsets_and_daemonsets(mesh, tmp_path):
    for kind, name in (("statefulset", "db"), ("daemonset", "agent")):
        assert kubectl(mesh, tmp_path, "rollout", "restart", f"{kind}/{name}", "-n",
                       "baz").returncode == 0
        status = kubectl(mesh, tmp_path, "rollout", "status", f"{kind}/{name}", "-n", "baz",
                         "--timeout=60s")
        assert status.returncode == 0, status.stderr


def test_kubectl_relabels_a_namespace(mesh, tmp_path):
    result = kubectl(mesh, tmp_path, "label", "namespace", "foo", "istio.io/rev=1-15-4",
                     "--overwrite")
    assert result.returncode == 0, result.stderr
    shown = kubectl(mesh, tmp_path, "get", "namespace", "foo", "-o",
                    "jsonpath={.metadata.labels.istio\\.io/rev}")
    assert shown.stdout == "1-15-4"
