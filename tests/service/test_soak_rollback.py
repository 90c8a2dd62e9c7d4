"""A promoted upgrade rolled back during its soak (analyzer/core/upgrade/soak.py
``rollback_promoted``, applied by the engine): the tag goes back to the old revision and
every moved workload, gateways included, restarts onto the old proxy, in both styles."""

from __future__ import annotations

import pytest

from analyzer.core.alerts import AlertName
from analyzer.core.upgrade import Outcome, Stage, UpgradeStyle, summary
from analyzer.core.upgrade.soak import SoakError, rollback_promoted
from tests.fixtures.fakes import FakeMesh, ScriptedJudging
from tests.service.test_engine import NAMES, make_engine, make_plan


@pytest.mark.parametrize("style", list(UpgradeStyle))
def test_rollback_of_a_promoted_upgrade_puts_every_moved_workload_back(style):
    mesh = FakeMesh.standard(NAMES)
    alerts = []
    engine, _ = make_engine(mesh, ScriptedJudging(), alerts=alerts)
    promoted = engine.run(make_plan(style))
    assert promoted.outcome is Outcome.PROMOTED
    assert {w.pod_revision for w in mesh.workloads} == {"1-15-4"}
    before = mesh.restarts()
    state = engine.decide(lambda s, now: rollback_promoted(s, now, "p99 up in b", "alice"))
    assert state.stage is Stage.ROLLBACK and not state.finished
    state = engine.run(None)
    assert state.outcome is Outcome.ROLLED_BACK
    assert mesh.tag_revision["default"] == "1-14-6"
    assert {w.pod_revision for w in mesh.workloads} == {"1-14-6"}  # gateway included
    assert all(mesh.restarts()[k] == before[k] + 1 for k in before)  # each exactly once more
    assert "rolled back after promotion by alice: p99 up in b" in summary(state)["reason"]
    assert {r["state"] for r in summary(state)["namespaces"]} == {"rolled_back"}
    names = [a.name for a in alerts]
    assert names[-2:] == [AlertName.ROLLBACK_STARTED, AlertName.ROLLBACK_FINISHED]


def test_only_a_promoted_upgrade_is_rolled_back_this_way():
    mesh = FakeMesh.standard(NAMES)
    engine, _ = make_engine(mesh, ScriptedJudging())
    engine.run(make_plan())
    state = engine.decide(lambda s, now: rollback_promoted(s, now, "why", "bob"))
    engine.run(None)
    with pytest.raises(SoakError, match="not promoted"):
        engine.decide(lambda s, now: rollback_promoted(s, now, "again", "bob"))
    assert state.plan.upgrade_id == "u1"
