"""End to end: a regression visible only client-side is rolled back.

Why: issue 13, point 8 — the default rules used to read ``reporter="destination"`` only, so
a new proxy failing its OWN outbound calls (what the canary namespace's pods send, reported
by their proxies with ``reporter="source"``) passed every rule and was promoted. The
scenario ``client-side-regression`` breaks exactly that on 1-15-4 in ``accounts``: every
server-side series stays healthy. ``canary-analyzer upgrade`` runs as a subprocess on the
simulated mesh with a real Prometheus, as in test_upgrade_flows.py (whose fixture and
compressed windows this test shares); it waits on conditions, never on the clock.
"""

from __future__ import annotations

import pytest

from tests.e2e.test_upgrade_flows import APPS, cluster  # noqa: F401  (the shared fixture)

pytestmark = pytest.mark.e2e


def test_a_regression_visible_only_client_side_is_rolled_back(cluster):  # noqa: F811
    env = cluster("client-side-regression")
    code, document, stderr = env.run()
    assert code == 1, stderr[-3000:]
    assert document["outcome"] == "rolled_back"
    assert env.tag_revision() == "1-14-6"
    assert set(env.revisions("accounts")) == {"1-14-6"}  # back on the old proxy
    restarts = env.restarts()
    assert all(count == 0 for (namespace, _), count in restarts.items()
               if namespace in APPS[1:])  # fmt: skip
    canary = document["namespaces"][0]
    assert (canary["name"], canary["verdict"]) == ("accounts", "fail")
    verdicts = {rule["rule"]: rule["verdict"] for rule in canary["rules"]}
    # only the client-side rules can see it; the server side of accounts did not change
    assert verdicts["client-error-rate"] == "fail"
    assert verdicts["error-rate"] != "fail"
    assert verdicts["latency-p99"] != "fail"
