"""End to end: judging at every step (``upgrade.looks=every-step``) on the simulated mesh
with a real Prometheus.

Why: the anytime-valid judge (``core/sequential.py``) must work on what Prometheus really
answers for a growing after-window, not only on the engine's scripted verdicts: a bad
canary is rolled back with the anytime-valid bound named in its reason, and a healthy night
still promotes. The same compressed windows and fixture as test_upgrade_flows.py; the test
waits on the command's exit, never on the clock.
"""

from __future__ import annotations

import pytest

from tests.e2e.test_upgrade_flows import APPS, cluster  # noqa: F401  (the shared fixture)

pytestmark = pytest.mark.e2e

EVERY_STEP = {"CANARY_UPGRADE__LOOKS": "every-step"}


def test_a_bad_canary_is_rolled_back_by_an_anytime_valid_look(cluster):  # noqa: F811
    env = cluster("bad-canary")
    env.extra_env = EVERY_STEP
    code, document, stderr = env.run()
    assert code == 1, stderr[-3000:]
    assert document["outcome"] == "rolled_back"
    assert env.tag_revision() == "1-14-6"
    assert set(env.revisions("accounts")) == {"1-14-6"}
    canary = document["namespaces"][0]
    assert (canary["name"], canary["verdict"]) == ("accounts", "fail")
    failing = [r for r in canary["rules"] if r["verdict"] == "fail"]
    assert failing and "every step anytime-valid" in failing[0]["reason"]


def test_a_healthy_night_judged_at_every_step_promotes(cluster):  # noqa: F811
    env = cluster("healthy")
    env.extra_env = EVERY_STEP
    code, document, stderr = env.run()
    assert code == 0, stderr[-3000:]
    assert document["outcome"] == "promoted"
    assert env.tag_revision() == "1-15-4"
    for namespace in APPS:
        assert set(env.revisions(namespace)) == {"1-15-4"}, namespace
