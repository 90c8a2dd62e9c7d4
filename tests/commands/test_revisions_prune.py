"""``revisions`` and ``prune`` on the simulated mesh, through the command line and the
official client: the old control plane goes, the new one stays, and every use blocks.

The objects a revision installs are what Istio's istio-discovery chart renders
(analyzer/sim/istio_charts/, control-plane/ for the RBAC, HPA, PDB and values ConfigMap),
marked as ``istioctl install`` marks them (operator/pkg/install/install.go
``getOwnerLabels``) or as Helm does; what the prune selects follows
operator/pkg/uninstall/prune.go. The observations here list the cluster on their own paths,
not through the adapter under test.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from kubernetes import client as kube

from analyzer.cli import main
from tests.fixtures.polling import wait_until
from tests.fixtures.sim_fixtures import api_client_for, fast_scenario, make_mesh  # noqa: F401

pytestmark = pytest.mark.timeout(120)

OLD, NEW = "1-14-6", "1-15-4"
#: (path of the collection, namespaced) of every kind a revision installs
KINDS = (
    ("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", False),
    ("/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", False),
    ("/apis/apps/v1/namespaces/istio-system/deployments", True),
    ("/apis/apps/v1/namespaces/istio-system/replicasets", True),
    ("/api/v1/namespaces/istio-system/pods", True),
    ("/apis/autoscaling/v2/namespaces/istio-system/horizontalpodautoscalers", True),
    ("/apis/policy/v1/namespaces/istio-system/poddisruptionbudgets", True),
    ("/api/v1/namespaces/istio-system/services", True),
    ("/api/v1/namespaces/istio-system/configmaps", True),
    ("/api/v1/namespaces/istio-system/serviceaccounts", True),
    ("/apis/rbac.authorization.k8s.io/v1/namespaces/istio-system/roles", True),
    ("/apis/rbac.authorization.k8s.io/v1/namespaces/istio-system/rolebindings", True),
    ("/apis/rbac.authorization.k8s.io/v1/clusterroles", False),
    ("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", False),
)


def _scenario(old_installer: str = "istioctl", extra: list[dict[str, Any]] | None = None):
    """Promoted: the tag is on the new revision, every planned pod runs its proxy."""
    return fast_scenario(
        revisions=[{"name": OLD, "installed_by": old_installer},
                   {"name": NEW, "installed_by": "istioctl"}],
        tags=[{"name": "default", "revision": NEW}],
        namespaces=[{"name": "foo", "workloads": [{"name": "web", "replicas": 2}]},
                    *(extra or [])],
        regressions=[],
    )


def _objects(mesh, selector: str) -> set[tuple[str, str]]:
    """(collection path, name) of every object matching ``selector`` (pods and ReplicaSets
    by their own labels: istiod's pod template carries ``istio.io/rev``)."""
    api = api_client_for(mesh)
    try:
        found = set()
        for path, _namespaced in KINDS:
            url = f"{api.configuration.host}{path}?labelSelector={quote(selector)}"
            response = api.call_api("GET", url, header_params={"Accept": "application/json"})
            response.read()
            body = json.loads(response.data)
            found |= {(path, item["metadata"]["name"]) for item in body["items"]}
        return found
    finally:
        api.close()


def _run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def _report(capsys, mesh, revision: str) -> tuple[int, dict[str, Any]]:
    code, out = _run(capsys, "revisions", "--revision", revision, "--output", "json",
                     "--kubeconfig", str(mesh.kubeconfig_path))
    return code, json.loads(out)


def test_prune_removes_the_old_control_plane_and_leaves_the_new(make_mesh, capsys):  # noqa: F811
    mesh = make_mesh(_scenario())
    old_selector, new_selector = f"istio.io/rev={OLD},!istio.io/tag", f"istio.io/rev={NEW}"
    old_before, new_before = _objects(mesh, old_selector), _objects(mesh, new_selector)
    kinds = {path.rsplit("/", 1)[1] for path, _name in old_before}
    assert {"mutatingwebhookconfigurations", "validatingwebhookconfigurations", "deployments",
            "horizontalpodautoscalers", "poddisruptionbudgets", "services", "configmaps",
            "serviceaccounts", "roles", "rolebindings", "clusterroles",
            "clusterrolebindings", "pods"} <= kinds

    code, report = _report(capsys, mesh, OLD)
    assert code == 0 and report["checked"] == {"revision": OLD, "unused": True}
    old = next(r for r in report["revisions"] if r["revision"] == OLD)
    assert old["installed"] and not old["in_use"] and old["injectors"]

    code, out = _run(capsys, "prune", "--revision", OLD, "--dry-run",
                     "--kubeconfig", str(mesh.kubeconfig_path))
    assert code == 0
    assert "MutatingWebhookConfiguration istio-sidecar-injector-1-14-6" in out
    assert "Deployment istio-system/istiod-1-14-6" in out
    assert not [w for w in mesh.writes() if w.method == "DELETE"]  # a dry run deletes nothing

    code, out = _run(capsys, "prune", "--revision", OLD, "--output", "json",
                     "--kubeconfig", str(mesh.kubeconfig_path))
    assert code == 0, out
    assert json.loads(out)["deleted"]
    deletes = [w for w in mesh.writes() if w.method == "DELETE"]
    assert deletes and all(w.body["propagationPolicy"] == "Foreground"
                           and w.body["preconditions"]["uid"] for w in deletes)
    # webhooks go first: no request is sent to an istiod on its way out
    assert "mutatingwebhookconfigurations" in deletes[0].path

    wait_until(lambda: not _objects(mesh, old_selector), timeout=30,
               message="every object of the old revision gone, istiod's pods too")
    assert _objects(mesh, new_selector) == new_before
    assert _objects(mesh, "istio.io/tag=default")  # the tag's objects stay
    code, report = _report(capsys, mesh, OLD)
    assert code == 0 and OLD not in {r["revision"] for r in report["revisions"]}
    assert next(r for r in report["revisions"] if r["revision"] == NEW)["in_use"]


def test_pods_and_namespaces_on_the_old_revision_block_the_prune_and_are_named(
        make_mesh, capsys):  # noqa: F811
    legacy = {"name": "legacy", "labels": {"istio.io/rev": OLD},
              "workloads": [{"name": "svc", "replicas": 1}]}
    mesh = make_mesh(_scenario(extra=[legacy]))
    before = _objects(mesh, f"istio.io/rev={OLD},!istio.io/tag")
    code, report = _report(capsys, mesh, OLD)
    assert code == 1 and report["checked"]["unused"] is False
    code, out = _run(capsys, "prune", "--revision", OLD,
                     "--kubeconfig", str(mesh.kubeconfig_path))
    assert code == 1
    assert f"namespace legacy is labelled istio.io/rev={OLD}" in out
    assert "pod legacy/svc-" in out and "(Deployment legacy/svc)" in out
    assert not [w for w in mesh.writes() if w.method == "DELETE"]
    assert _objects(mesh, f"istio.io/rev={OLD},!istio.io/tag") == before


def test_a_completed_job_pod_does_not_block_the_prune_a_running_one_does(
        make_mesh, capsys):  # noqa: F811
    pinned = {"istio.io/rev": OLD}  # injected by the old revision's rev.object webhook
    batch = {"name": "batch", "labels": {},
             "jobs": [{"name": "nightly", "state": "completed", "pod_labels": pinned}]}
    mesh = make_mesh(_scenario(extra=[batch]))
    code, report = _report(capsys, mesh, OLD)
    old = next(r for r in report["revisions"] if r["revision"] == OLD)
    assert [p["name"] for p in old["completed_pods"]] and old["pods"] == []
    assert code == 0
    code, out = _run(capsys, "prune", "--revision", OLD, "--dry-run",
                     "--kubeconfig", str(mesh.kubeconfig_path))
    assert code == 0, out

    running = {"name": "batch", "labels": {},
               "jobs": [{"name": "nightly", "state": "running", "pod_labels": pinned}]}
    mesh = make_mesh(_scenario(extra=[running]))
    code, out = _run(capsys, "prune", "--revision", OLD, "--dry-run",
                     "--kubeconfig", str(mesh.kubeconfig_path))
    assert code == 1 and "(Job batch/nightly) runs its proxy" in out


def test_a_helm_owned_revision_is_not_deleted_and_its_release_is_named(
        make_mesh, capsys):  # noqa: F811
    mesh = make_mesh(_scenario(old_installer="helm"))
    before = _objects(mesh, f"istio.io/rev={OLD},!istio.io/tag")
    code, out = _run(capsys, "prune", "--revision", OLD,
                     "--kubeconfig", str(mesh.kubeconfig_path))
    assert code == 3
    assert "helm uninstall istiod-1-14-6 -n istio-system" in out
    assert not [w for w in mesh.writes() if w.method == "DELETE"]
    assert _objects(mesh, f"istio.io/rev={OLD},!istio.io/tag") == before


def test_an_unknown_revision_is_bad_input(make_mesh, capsys):  # noqa: F811
    mesh = make_mesh(_scenario())
    assert main(["prune", "--revision", "9-9-9", "--kubeconfig",
                 str(mesh.kubeconfig_path)]) == 2
    assert "not installed" in capsys.readouterr().err


def test_gateways_pinned_to_the_old_revision_block_the_prune(make_mesh, capsys):  # noqa: F811
    mesh = make_mesh(_scenario())
    apps = kube.AppsV1Api(api_client_for(mesh))
    patch = {"spec": {"template": {"metadata": {"labels": {"istio.io/rev": OLD}}}}}
    apps.patch_namespaced_deployment("istio-ingressgateway", "istio-ingress", patch)
    code, out = _run(capsys, "prune", "--revision", OLD, "--dry-run",
                     "--kubeconfig", str(mesh.kubeconfig_path))
    assert code == 1
    assert f"gateway istio-ingress/istio-ingressgateway is pinned with istio.io/rev={OLD}" in out
