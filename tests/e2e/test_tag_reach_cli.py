"""``canary-analyzer upgrade`` prints what the tag reaches, plans it, and refuses the
namespace-label style on an ``istio-injection`` namespace with the command that fixes it.

Why: the operator must see, before anything moves, every namespace the tag's webhooks
inject (istio-discovery templates/revision-tags-mwc.yaml), why, its pods and their
revisions — on stderr and in the JSON (``reach``, an additive field) — and a refusal must be
exit 2 with nothing changed. Runs the CLI as a subprocess on the simulated mesh with a real
Prometheus.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.sim_fixtures import (  # noqa: F401
    fast_scenario,
    make_mesh,
    make_prometheus,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def setup(make_mesh, make_prometheus):  # noqa: F811
    mesh = make_mesh(
        fast_scenario(
            namespaces=[
                {"name": "foo", "workloads": [{"name": "web", "replicas": 2}]},
                {
                    "name": "legacy",
                    "labels": {"istio-injection": "enabled"},
                    "workloads": [{"name": "api", "replicas": 2}],
                },
                {
                    "name": "edge",
                    "labels": {"istio.io/dataplane-mode": "ambient"},
                    "workloads": [{"name": "web", "replicas": 1}],
                },
            ],
            regressions=[],
        )
    )
    return mesh, make_prometheus(mesh)


def run(mesh, prometheus, *extra: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "analyzer", "upgrade", "--to-revision", "1-15-4",
        "--kubeconfig", str(mesh.kubeconfig_path), "--prometheus-url", prometheus.url,
        "--rules", str(REPO / "rules"), *extra,
    ]  # fmt: skip
    # the plan in the order the tag reaches the namespaces (alphabetical), not ordered by
    # their traffic: this test is about what the tag reaches, not about the plan's order
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "250", "CANARY_UPGRADE__ORDER": "given"}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_dry_run_prints_the_reach_and_plans_it(setup):
    mesh, prometheus = setup
    done = run(mesh, prometheus, "--dry-run", "--output", "json")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (
        "  legacy: namespace label istio-injection=enabled (namespace.sidecar-injector.istio.io)"
        "; whole namespace; 2 pod(s) on 1-14-6×2" in done.stderr
    )
    assert "edge: ambient (istio.io/dataplane-mode=ambient), no sidecar" in done.stderr
    document = json.loads(done.stdout)
    assert [n["name"] for n in document["namespaces"]] == ["foo", "legacy"]
    reach = document["reach"]
    assert reach["webhook_configuration"] == "istio-revision-tag-default"
    legacy = next(n for n in reach["namespaces"] if n["namespace"] == "legacy")
    assert legacy["whole"] and legacy["pods"] == 2 and legacy["revisions"] == {"1-14-6": 2}
    assert reach["ambient"] == ["edge"]


def test_namespace_label_style_refuses_istio_injection_with_the_command(setup):
    mesh, prometheus = setup
    writes = len(mesh.writes())
    done = run(mesh, prometheus, "--style", "namespace-label")
    assert done.returncode == 2, done.stderr[-3000:]
    assert "kubectl label namespace legacy istio-injection- istio.io/rev=default" in done.stderr
    assert len(mesh.writes()) == writes
