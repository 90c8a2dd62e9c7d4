"""Moving a tag leaves exactly what Istio's own charts render for the new revision.

Why: the tag move was proven only against objects written by the same hands as the engine.
Here the simulated mesh is seeded from Helm renderings of istio/istio's charts (vendored as
data, ``analyzer/sim/istio_charts/``, release and values in its README), and after
``move_tag`` the tag webhook, the tag Service and ``istiod-default-validator`` must equal,
field by field, the chart's rendering for the new revision; after moving back, the old one.
Modelled on istioctl/pkg/tag/generate.go (Generate, fixWhConfig), util.go
(DeactivateIstioInjectionWebhook) and the istio-discovery templates revision-tags-mwc.yaml,
revision-tags-svc.yaml; the base chart's defaultrevision-validatingwebhookconfiguration.yaml.

Fields left out of the comparison, each filled by someone other than the chart:
- ``metadata.resourceVersion``, ``uid``, ``creationTimestamp``, ``generation``,
  ``managedFields``: the API server sets them on every write;
- ``webhooks[].clientConfig.caBundle``: istiod's webhook controller patches its CA in
  (pkg/webhooks/webhookpatch.go); the chart renders none. Checked separately: the tag
  webhook carries the new revision's CA after the move.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from analyzer.adapters.kubernetes import NEVER_MATCH, KubernetesCluster
from analyzer.sim import istio_objects
from tests.fixtures.istio_golden import (
    assert_matches_chart,
    assert_validator,
    golden,
    normalised,
    read,
)
from tests.fixtures.sim_fixtures import api_client_for, fast_scenario, make_mesh  # noqa: F401


@pytest.fixture
def cluster_for(make_mesh):  # noqa: F811
    adapters = []

    def start(namespace: str = "istio-system", **scenario):
        mesh = make_mesh(fast_scenario(**scenario))
        adapter = KubernetesCluster(api_client_for(mesh), request_timeout=10, backoff=0.01,
                                    istio_namespace=namespace)
        adapters.append(adapter)
        return mesh, adapter

    yield start
    for adapter in adapters:
        adapter.close()


@pytest.mark.parametrize("layout", ["current", "legacy"])
def test_default_tag_moves_to_the_charts_rendering_and_back(cluster_for, layout):
    _, cluster = cluster_for(istio_layout=layout)
    assert_matches_chart(cluster, layout, "", "1-14-6")  # the seed is the chart's
    assert_validator(cluster, layout, "", "1-14-6")

    info = cluster.move_tag("default", "1-15-4")
    assert_matches_chart(cluster, layout, "", "1-15-4")
    assert_validator(cluster, layout, "", "1-15-4")
    mwc = read(cluster, "MutatingWebhookConfiguration", "istio-revision-tag-default")
    assert {w["clientConfig"]["caBundle"] for w in mwc["webhooks"]} == {
        istio_objects.fake_ca_bundle("1-15-4")}
    assert info.webhook == "istio-revision-tag-default"
    assert info.service == ("istiod-revision-tag-default" if layout == "current" else None)
    owned = "\n".join(info.warnings)
    assert "MutatingWebhookConfiguration istio-revision-tag-default is managed by Helm" in owned
    assert "ValidatingWebhookConfiguration istiod-default-validator is managed by Helm" in owned
    assert ("Service istiod-revision-tag-default is managed by Helm" in owned) == (
        layout == "current")

    cluster.move_tag("default", "1-14-6")  # the rollback
    assert_matches_chart(cluster, layout, "", "1-14-6")
    assert_validator(cluster, layout, "", "1-14-6")


def test_tags_reports_the_owners_before_the_move(cluster_for):
    _, cluster = cluster_for()
    info = cluster.tags()["default"]
    assert info.service == "istiod-revision-tag-default"
    assert [w.split(" is managed")[0] for w in info.warnings] == [
        "MutatingWebhookConfiguration istio-revision-tag-default",
        "Service istiod-revision-tag-default",
        "ValidatingWebhookConfiguration istiod-default-validator",
    ]


@pytest.mark.parametrize("layout", ["current", "legacy"])
def test_a_tag_other_than_default_leaves_the_validator(cluster_for, layout):
    _, cluster = cluster_for(istio_layout=layout, tags=[
        {"name": "default", "revision": "1-14-6"}, {"name": "prod", "revision": "1-14-6"}])
    cluster.move_tag("prod", "1-15-4")
    assert_matches_chart(cluster, layout, "", "1-15-4", tag="prod")
    assert_matches_chart(cluster, layout, "", "1-14-6", tag="default")
    assert_validator(cluster, layout, "", "1-14-6")
    cluster.move_tag("prod", "1-14-6")
    assert_matches_chart(cluster, layout, "", "1-14-6", tag="prod")


def _install(cluster: KubernetesCluster, objects: list[dict[str, Any]]) -> None:
    """Put rendered objects in place of what the simulated mesh seeded (kubectl apply)."""
    admission = cluster.admission
    for obj in objects:
        obj = copy.deepcopy(obj)
        name = obj["metadata"]["name"]
        if obj["kind"] == "Service":
            namespace = obj["metadata"]["namespace"]
            create = (cluster.core.create_namespaced_service, namespace)
            replace = (cluster.core.replace_namespaced_service, name, namespace)
            get = (cluster.core.read_namespaced_service, name, namespace)
        else:
            kind = ("mutating" if obj["kind"] == "MutatingWebhookConfiguration"
                    else "validating")
            create = (getattr(admission, f"create_{kind}_webhook_configuration"),)
            replace = (getattr(admission, f"replace_{kind}_webhook_configuration"), name)
            get = (getattr(admission, f"read_{kind}_webhook_configuration"), name)
        try:
            current = cluster._json(*get)
        except ApiException:
            cluster._json(*create, obj)
            continue
        obj["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        cluster._json(*replace, obj)


def _delete_all_webhooks(cluster: KubernetesCluster) -> None:
    admission = cluster.admission
    for kind in ("mutating", "validating"):
        listing = cluster._json(getattr(admission, f"list_{kind}_webhook_configuration"))
        for item in listing.get("items") or []:
            cluster._json(getattr(admission, f"delete_{kind}_webhook_configuration"),
                          item["metadata"]["name"])


def test_url_based_injector_validator_path_is_exactly_validate(cluster_for):
    _, cluster = cluster_for()
    rendered = [o for rev in ("1-14-6", "1-15-4")
                for o in istio_objects.rendered("current", f"url/istiod-{rev}.yaml")
                if o["metadata"]["name"].startswith("istio-sidecar-injector-")
                or rev == "1-14-6"]
    _install(cluster, rendered + istio_objects.rendered("current", "url/base-1-14-6.yaml"))
    assert_matches_chart(cluster, "current", "url/", "1-14-6")
    cluster.move_tag("default", "1-15-4")
    assert_matches_chart(cluster, "current", "url/", "1-15-4")
    assert_validator(cluster, "current", "url/", "1-15-4")
    validator = read(cluster, "ValidatingWebhookConfiguration", "istiod-default-validator")
    assert validator["webhooks"][0]["clientConfig"]["url"] == \
        "https://istiod-1-15-4.istio-system.svc:443/validate"
    cluster.move_tag("default", "1-14-6")
    assert_matches_chart(cluster, "current", "url/", "1-14-6")
    assert_validator(cluster, "current", "url/", "1-14-6")


@pytest.mark.parametrize("layout", ["current", "legacy"])
def test_outside_istio_system_the_webhook_carries_the_namespace(cluster_for, layout):
    _, cluster = cluster_for(namespace="istio-control", istio_layout=layout)
    _delete_all_webhooks(cluster)
    cluster._json(cluster.core.create_namespace, {"metadata": {"name": "istio-control"}})
    objects = [o for rev in ("1-14-6", "1-15-4")
               for o in istio_objects.rendered(layout, f"istio-control/istiod-{rev}.yaml")
               if rev == "1-14-6" or "istio.io/tag" not in o["metadata"]["labels"]]
    _install(cluster, objects + istio_objects.rendered(layout, "istio-control/base-1-14-6.yaml"))
    assert set(cluster.tags()) == {"default", "prod"}
    assert_matches_chart(cluster, layout, "istio-control/", "1-14-6")
    info = cluster.move_tag("default", "1-15-4")
    assert info.webhook == "istio-revision-tag-default-istio-control"
    assert_matches_chart(cluster, layout, "istio-control/", "1-15-4")
    assert_validator(cluster, layout, "istio-control/", "1-15-4")
    cluster.move_tag("default", "1-14-6")
    assert_matches_chart(cluster, layout, "istio-control/", "1-14-6")
    assert_validator(cluster, layout, "istio-control/", "1-14-6")


def test_moving_default_deactivates_the_non_revisioned_injector(cluster_for):
    _, cluster = cluster_for()
    legacy = golden("current", "istiod-default.yaml", "MutatingWebhookConfiguration",
                    "istio-sidecar-injector")
    _install(cluster, [legacy])
    info = cluster.move_tag("default", "1-15-4")
    after = read(cluster, "MutatingWebhookConfiguration", "istio-sidecar-injector")
    expected = copy.deepcopy(legacy)
    for webhook in expected["webhooks"]:
        webhook["namespaceSelector"] = NEVER_MATCH
        webhook["objectSelector"] = NEVER_MATCH
    assert normalised(after) == normalised(expected)
    assert any("istio-sidecar-injector (istio.io/rev=default) was deactivated" in w
               for w in info.warnings)
    assert_matches_chart(cluster, "current", "", "1-15-4")
    version = after["metadata"]["resourceVersion"]
    cluster.move_tag("default", "1-14-6")  # already deactivated: left alone
    assert read(cluster, "MutatingWebhookConfiguration", "istio-sidecar-injector")[
        "metadata"]["resourceVersion"] == version
