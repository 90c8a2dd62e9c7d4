"""``--context`` picks the kubeconfig context as kubectl does, and the dry run names it.

A kubeconfig with two contexts: ``prod`` (current) points at a port nothing listens on,
``sim`` at the simulated mesh's API server. ``upgrade --dry-run --context sim`` plans on
the mesh and says so (text and the additive JSON field ``kubernetes``); an unknown
context is exit 2 naming the kubeconfig and its contexts.
"""

from __future__ import annotations

import json

import pytest
import yaml

from analyzer.adapters.kubeconfig import KubeconfigError, load
from analyzer.settings import KubernetesSettings
from tests.commands.cli_run import EMPTY_PROMQL_ANSWER, run_cli
from tests.fixtures.canned_http import canned_server, closed_port
from tests.fixtures.sim_fixtures import make_mesh  # noqa: F401

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def two_contexts(make_mesh, tmp_path):  # noqa: F811
    mesh = make_mesh()
    config = yaml.safe_load(mesh.kubeconfig_path.read_text())
    server = config["clusters"][0]["cluster"]["server"]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "prod",
        "clusters": [
            {"name": "prod-eu", "cluster": {"server": f"http://127.0.0.1:{closed_port()}"}},
            {"name": "simulated", "cluster": {"server": server}},
        ],
        "users": [{"name": "me", "user": {}}],
        "contexts": [
            {"name": "prod", "context": {"cluster": "prod-eu", "user": "me"}},
            {"name": "sim", "context": {"cluster": "simulated", "user": "me"}},
        ],
    }))  # fmt: skip
    return kubeconfig, server


def test_the_context_is_chosen_and_named(two_contexts):
    kubeconfig, server = two_contexts
    configuration, target = load(KubernetesSettings(kubeconfig=kubeconfig, context="sim"))
    assert target.as_dict() == {"context": "sim", "cluster": "simulated", "server": server}
    assert configuration.host == server
    _, current = load(KubernetesSettings(kubeconfig=kubeconfig))
    assert (current.context, current.cluster) == ("prod", "prod-eu")


def test_an_unknown_context_names_the_file_and_the_contexts(two_contexts):
    kubeconfig, _ = two_contexts
    with pytest.raises(KubeconfigError, match=rf"kubeconfig {kubeconfig}: no context 'stage' "
                       r"\(contexts: prod, sim\)"):  # fmt: skip
        load(KubernetesSettings(kubeconfig=kubeconfig, context="stage"))


def test_dry_run_on_the_chosen_context_names_cluster_and_context(two_contexts):
    kubeconfig, server = two_contexts
    with canned_server(200, EMPTY_PROMQL_ANSWER, "application/json") as prometheus:
        common = ["upgrade", "--to-revision", "1-15-4", "--dry-run", "--kubeconfig",
                  str(kubeconfig), "--context", "sim", "--prometheus-url", prometheus]
        as_json = run_cli(*common, "-o", "json")
        as_text = run_cli(*common)
    assert as_json.returncode == 0, as_json.stderr[-2000:]
    document = json.loads(as_json.stdout)
    assert document["dry_run"] is True
    assert document["kubernetes"] == {"context": "sim", "cluster": "simulated", "server": server}
    assert f"acting on cluster simulated (context sim, {server})" in as_json.stderr
    assert as_text.returncode == 0, as_text.stderr[-2000:]
    assert as_text.stdout.startswith(
        f"dry run on cluster simulated (context sim, {server}): nothing was changed."
    )


def test_unknown_context_on_the_command_line_is_exit_2(two_contexts):
    kubeconfig, _ = two_contexts
    with canned_server(200, EMPTY_PROMQL_ANSWER, "application/json") as prometheus:
        done = run_cli("upgrade", "--to-revision", "1-15-4", "--dry-run", "--kubeconfig",
                       str(kubeconfig), "--context", "stage", "--prometheus-url", prometheus)  # fmt: skip
    assert done.returncode == 2 and "no context 'stage'" in done.stderr
