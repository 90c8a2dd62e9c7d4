"""End to end: a night with two namespaces at 0.1 rps finishes promoted, and says which
evidence judged them.

Why: issue 16 — below a rule's minimum evidence every look at a namespace is INCONCLUSIVE,
and before quiet namespaces had a policy such a night held for a person however healthy
the revision was. Here ``canary-analyzer upgrade`` runs as a subprocess on the simulated
mesh with a real Prometheus (the fixture and compressed windows of test_upgrade_flows.py):
``inventory`` and ``orders`` serve 0.1 rps (about 40 simulated requests per window, the
shipped rules need 500). The plan puts them last (the forecast falls back on the last
window: the sim has no previous nights); the rules' default policy judges them at their
wave's last look — pooled (too thin even together), then on the revision's verdicts on the
busier namespaces before them — behind the health gates read from the pods.
"""

from __future__ import annotations

import pytest

from tests.e2e.test_upgrade_flows import APPS, cluster  # noqa: F401  (the shared fixture)

pytestmark = pytest.mark.e2e

QUIET = ("inventory", "orders")


def test_a_night_with_two_quiet_namespaces_is_promoted_and_names_the_evidence(cluster):  # noqa: F811
    env = cluster("healthy", rps=dict.fromkeys(QUIET, 0.1))
    env.extra_env = {
        "CANARY_UPGRADE__ORDER": "evidence",  # the product's default
        # a machine busy with other work can stall the sim's API server for seconds
        "CANARY_KUBERNETES__REQUEST_TIMEOUT": "30s",
    }
    report = env.work / "report.html"
    code, document, stderr = env.run("--report", str(report))
    assert code == 0, stderr[-3000:]
    assert document["outcome"] == "promoted"
    assert env.tag_revision() == "1-15-4"
    order = [record["name"] for record in document["namespaces"]]
    assert set(order[-2:]) == set(QUIET), order  # quiet namespaces last
    records = {record["name"]: record for record in document["namespaces"]}
    for name in QUIET:
        record = records[name]
        assert record["state"] == "promoted"
        assert record["evidence"] in ("pool", "inherited"), record
        assert f"[evidence: {record['evidence']}" in record["reason"]
    for name in set(APPS) - set(QUIET):
        assert records[name]["evidence"] == "own", records[name]
    # the forecast, before anything moved, said how each quiet namespace would be judged
    forecast = {each["namespace"]: each for each in document["forecast"]}
    assert all(forecast[name]["quiet"] and forecast[name]["policy"] == "pool" for name in QUIET)
    assert not forecast[order[0]]["quiet"]
    assert [each["namespace"] for each in document["forecast"]] == order  # in plan order
    html = report.read_text()
    assert "evidence: inherited" in html or "evidence: pool" in html
    # the report shows the forecast, and its timeline opens with a note per quiet namespace
    assert 'id="forecast"' in html and "quiet policy: pool" in html
    assert html.count("<td>Forecast</td>") >= len(QUIET)
