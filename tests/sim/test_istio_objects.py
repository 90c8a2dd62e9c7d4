"""The simulated mesh's control plane is what Istio's charts render, in both layouts.

Why: the tag move is proven against the seed; the seed must be the charts' rendering
(analyzer/sim/istio_charts, README there), not our idea of it: the current layout (Istio
1.30.3) has the tag Service istiod-revision-tag-<tag>, the legacy one (1.24.6) does not.
"""

from __future__ import annotations

import pytest
from kubernetes import client as kube

from analyzer.sim import istio_objects
from tests.fixtures.sim_fixtures import api_client_for, fast_scenario, make_mesh  # noqa: F401


def _chart(layout: str, name: str) -> dict:
    return {(o["kind"], o["metadata"]["name"]): o for o in istio_objects.rendered(layout, name)}


@pytest.mark.parametrize("layout", ["current", "legacy"])
def test_seed_is_the_charts_rendering(make_mesh, layout):  # noqa: F811
    mesh = make_mesh(fast_scenario(istio_layout=layout))
    api = api_client_for(mesh)
    try:
        admission = kube.AdmissionregistrationV1Api(api)
        core = kube.CoreV1Api(api)
        chart = _chart(layout, "istiod-1-14-6.yaml")
        tag = api.sanitize_for_serialization(
            admission.read_mutating_webhook_configuration("istio-revision-tag-default"))
        expected = chart[("MutatingWebhookConfiguration", "istio-revision-tag-default")]
        assert tag["metadata"]["labels"] == expected["metadata"]["labels"]
        assert [w["namespaceSelector"] for w in tag["webhooks"]] == [
            w["namespaceSelector"] for w in expected["webhooks"]]
        # istiod patches its CA into the webhooks of its revision
        assert {w["clientConfig"]["caBundle"] for w in tag["webhooks"]} == {
            istio_objects.fake_ca_bundle("1-14-6")}
        services = {s.metadata.name for s in core.list_namespaced_service(
            "istio-system", label_selector="istio.io/tag").items}
        assert services == ({"istiod-revision-tag-default"} if layout == "current" else set())
        validator = admission.read_validating_webhook_configuration("istiod-default-validator")
        assert validator.metadata.labels["release"] == "istio-base"  # the base chart's
    finally:
        api.close()


def test_other_revision_and_tag_names_are_the_renderings_renamed():
    objects = istio_objects.tag_objects("current", "canary", "1-16-0")
    names = sorted((o["kind"], o["metadata"]["name"]) for o in objects)
    assert names == [("MutatingWebhookConfiguration", "istio-revision-tag-canary"),
                     ("Service", "istiod-revision-tag-canary")]
    mwc = objects[0] if objects[0]["kind"] == "MutatingWebhookConfiguration" else objects[1]
    assert mwc["metadata"]["labels"]["istio.io/tag"] == "canary"
    assert mwc["metadata"]["labels"]["istio.io/rev"] == "1-16-0"
    assert {w["clientConfig"]["service"]["name"] for w in mwc["webhooks"]} == {"istiod-1-16-0"}
    values = [e["values"] for w in mwc["webhooks"]
              for e in (w.get("namespaceSelector") or {}).get("matchExpressions") or []
              if e["key"] == "istio.io/rev" and e.get("values")]
    assert values == [["canary"]]
    assert len(mwc["webhooks"]) == 2  # only default has the istio-injection webhooks
