"""The soak's looks in the service loop (analyzer/service/soak_judge.py) on a virtual clock:
looks at the configured cadence, a regression pages once, names namespace, rule and
evidence, blocks the prune, is remembered across a restart, and (opt-in) rolls back.

Metrics come from an in-memory ``MetricsSource`` (the port the Prometheus adapter
implements) holding request and error counts per namespace: the baseline hours before the
upgrade healthy, the soak's recent windows healthy or regressed as the test says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from analyzer.core.alerts import AlertName
from analyzer.core.observations import ROLE_LABEL
from analyzer.core.ports import MetricsUnreachableError, Series
from analyzer.core.revisions import RevisionInputs
from analyzer.core.rules import LoadedRule, RuleSet
from analyzer.core.upgrade import Outcome
from analyzer.service.control import Requester, UpgradeRequestBody
from analyzer.service.prune_path import PrunePath
from analyzer.service.soak import PruneGate
from analyzer.service.soak_judge import SoakSettings, SoakWatch
from analyzer.service.timeline import KeptTimeline
from tests.fixtures.rules import make_rule
from tests.service.harness import NAMES, START, make_service, run_tick

LABEL = "destination_workload_namespace"
H = timedelta(hours=1)
SETTINGS = SoakSettings(soak=24 * H, every=H, window=H, baselines=(timedelta(hours=24),),
                        step=timedelta(minutes=1), delay=timedelta(seconds=30))


def _rules() -> RuleSet:
    judge = {"allowedChange": {"absolute": 0.005, "relative": 0.5},
             "minEvidence": {"requests": 500}, "confidence": 0.99}
    return RuleSet(rules=(LoadedRule(rule=make_rule("ratio", name="error-rate", judge=judge),
                                     source="test", line=1),))


@dataclass
class SoakSource:
    """Before ``upgrade_started``: 0.5 % errors everywhere. After: the same, except the
    namespaces in ``regressed`` (5 %). ``down``: every query fails as Prometheus down."""

    upgrade_started: datetime
    regressed: set[str] = field(default_factory=set)
    down: bool = False
    windows: list[tuple[datetime, datetime]] = field(default_factory=list)

    def query_range(self, query: str, start: datetime, end: datetime,
                    step: timedelta) -> list[Series]:
        if self.down:
            raise MetricsUnreachableError("connection refused")
        self.windows.append((start, end))
        times, moment = [], start
        while moment <= end:
            times.append(moment.timestamp())
            moment += step
        series = []
        for namespace in NAMES:
            bad = 300 if start >= self.upgrade_started and namespace in self.regressed else 30
            for role, total in (("numerator", bad), ("denominator", 6000)):
                points = tuple((t, total / len(times)) for t in times)
                series.append(Series({LABEL: namespace, ROLE_LABEL: role}, points))
        return series


def _promoted(tmp_path, settings=SETTINGS):
    source = SoakSource(upgrade_started=START)
    watch = SoakWatch(source, _rules, LABEL, settings)
    service, mesh, clock, sent, _ = make_service(tmp_path, soak_watch=watch)
    service.request_upgrade(UpgradeRequestBody(to_revision="1-15-4"))
    run_tick(service)
    assert service.view.state.outcome is Outcome.PROMOTED
    return service, mesh, clock, sent, source, watch


def test_looks_come_at_the_cadence_and_compare_the_same_hours_before_the_upgrade(tmp_path):
    service, _mesh, clock, sent, source, watch = _promoted(tmp_path)
    promoted_at = service.view.state.updated_at
    run_tick(service)
    soak = service.status()["soak"]
    assert soak["state"] == "soaking" and soak["looks"] == 0
    assert soak["next_look"] == (promoted_at + H + timedelta(seconds=30)).isoformat()
    assert not source.windows  # no look before a whole window follows the promotion
    clock.advance(soak_first := H + timedelta(seconds=30))
    run_tick(service)
    assert service.status()["soak"]["looks"] == 1
    (before, after) = sorted(set(source.windows))
    assert after[1] - after[0] == before[1] - before[0]  # the same length (points cover it)
    assert after[0] - before[0] == timedelta(hours=24)  # the same clock time, the night before
    assert before[1] <= START  # wholly before the upgrade began
    run_tick(service)  # the same look is never taken twice
    assert service.status()["soak"]["looks"] == 1
    clock.advance(3 * H)  # three looks missed: the latest is taken, once
    run_tick(service)
    assert service.status()["soak"]["looks"] == 2
    assert not [a for a in sent if a.name is AlertName.SOAK_REGRESSION]
    clock.advance(24 * H - soak_first)
    run_tick(service)
    clock.advance(H)
    run_tick(service)
    assert service.status()["soak"]["state"] == "clean"
    assert watch.blocks_prune(service.view.state) is False


def test_a_regression_pages_once_names_the_evidence_and_blocks_the_prune(tmp_path):
    service, _mesh, clock, sent, source, watch = _promoted(tmp_path)
    source.regressed = {"c"}
    clock.advance(H + timedelta(seconds=30))
    run_tick(service)
    pages = [a for a in sent if a.name is AlertName.SOAK_REGRESSION]
    assert len(pages) == 1
    page = pages[0]
    assert page.severity.value == "critical"
    assert page.labels["namespace"] == "c" and page.labels["rule"] == "error-rate"
    assert "canary-analyzer rollback" in page.description and "c: FAIL" in page.description
    status = service.status()
    assert status["soak"]["state"] == "regressed"
    assert status["soak"]["regression"]["namespaces"] == ["c"]
    assert status["upgrade"]["outcome"] == "promoted"  # offered, not started
    assert [i["namespace"] for i in status["timeline"] if i["reason"] == "SoakRegression"] == ["c"]
    assert watch.blocks_prune(service.view.state)
    clock.advance(2 * H)
    run_tick(service)
    assert len([a for a in sent if a.name is AlertName.SOAK_REGRESSION]) == 1
    # a restarted service remembers it (service memory in the state ConfigMap)
    again = SoakWatch(source, _rules, LABEL, SETTINGS)
    again.attach(service.context, lambda _reason: None)
    assert again.blocks_prune(service.view.state)
    # a replica that started before the page (its memory stale) takes it on leading
    service.context.memory.soak = None
    late = SoakWatch(source, _rules, LABEL, SETTINGS)
    late.attach(service.context, lambda _reason: None)
    assert not late.blocks_prune(service.view.state)
    late.reload()
    assert late.blocks_prune(service.view.state) and late.record.looks == 1


def test_rollback_after_the_page_moves_every_workload_back_and_names_who(tmp_path):
    service, mesh, clock, sent, source, _watch = _promoted(tmp_path)
    source.regressed = {"c"}
    clock.advance(H + timedelta(seconds=30))
    run_tick(service)
    answer = service.rollback(Requester(actor="alice", reason="c 5xx"))
    assert "rolling back upgrade" in answer["message"]
    assert service.wait_idle(60)
    run_tick(service)
    state = service.view.state
    assert state.outcome is Outcome.ROLLED_BACK
    assert mesh.tag_revision["default"] == "1-14-6"
    assert {w.pod_revision for w in mesh.workloads} == {"1-14-6"}
    assert set(mesh.restarts().values()) == {2}  # gateway and every namespace, once more
    status = service.status()
    assert "alice: c 5xx" in status["upgrade"]["reason"]
    assert status["soak"]["state"] == "rolled-back"
    assert any(i["reason"] == "RollbackRequested" and "alice" in i["message"]
               for i in status["timeline"])
    resolved = [a for a in sent if a.name is AlertName.SOAK_REGRESSION and a.ends_at]
    assert resolved  # the rollback's end resolves the page


def test_rollback_is_refused_when_nothing_is_promoted(tmp_path):
    import pytest

    from analyzer.service.control import ControlRefusedError

    service, *_ = make_service(tmp_path)
    with pytest.raises(ControlRefusedError, match="nothing to roll back"):
        service.rollback()


def test_automatic_rollback_when_configured(tmp_path):
    settings = SoakSettings(**{**SETTINGS.__dict__, "auto_rollback": True})
    service, mesh, clock, sent, source, _watch = _promoted(tmp_path, settings)
    source.regressed = {"b"}
    clock.advance(H + timedelta(seconds=30))
    run_tick(service)
    assert service.wait_idle(60)
    run_tick(service)
    assert service.view.state.outcome is Outcome.ROLLED_BACK
    assert {w.pod_revision for w in mesh.workloads} == {"1-14-6"}
    page = next(a for a in sent if a.name is AlertName.SOAK_REGRESSION)
    assert "Rolling back now" in page.description
    assert "upgrade.soak_auto_rollback" in service.status()["upgrade"]["reason"]


def test_a_look_prometheus_cannot_answer_is_in_the_timeline_and_never_pages(tmp_path):
    service, _mesh, clock, sent, source, _watch = _promoted(tmp_path)
    source.down = True
    clock.advance(H + timedelta(seconds=30))
    run_tick(service)
    status = service.status()
    assert status["soak"]["state"] == "soaking" and status["soak"]["errors"] == 1
    (error,) = [i for i in status["timeline"] if i["reason"] == "SoakLookError"]
    assert "connection refused" in error["message"]
    assert not [a for a in sent if a.name is AlertName.SOAK_REGRESSION]
    assert isinstance(service.context.timeline, KeptTimeline)



def test_rollback_is_refused_once_the_old_revision_is_gone(tmp_path):
    import pytest

    from analyzer.service.control import ControlRefusedError

    service, mesh, _clock, _sent, _source, _watch = _promoted(tmp_path)
    del mesh.revisions_ready["1-14-6"]  # pruned by hand (`canary-analyzer prune`)
    with pytest.raises(ControlRefusedError, match="1-14-6 is no longer installed"):
        service.rollback(Requester(actor="alice"))
    assert service.view.state.outcome is Outcome.PROMOTED
    assert mesh.tag_revision["default"] == "1-15-4"


class _EmptyCluster:
    """The prune's own port (``soak.RevisionsPort``) over a cluster where nothing of the
    old revision is read: enough for an offer that is still soaking."""

    def inputs(self) -> RevisionInputs:
        return RevisionInputs()

    def revision_objects(self, revision: str) -> list:
        return []

    def delete(self, obj) -> bool:
        raise AssertionError("nothing is deleted while soaking")


def test_a_soak_regression_withholds_the_prune_offer_in_the_status(tmp_path):
    service, _mesh, clock, _sent, source, _watch = _promoted(tmp_path)
    gate = PruneGate(_EmptyCluster, 24 * H, lambda _alert: None, lambda _alert: None)
    service.context.prune_path = PrunePath(gate, service.context.timeline, lambda: None)
    run_tick(service)
    assert service.status()["prune"]["state"] == "soaking"
    source.regressed = {"c"}
    clock.advance(H + timedelta(seconds=30))
    run_tick(service)
    prune = service.status()["prune"]
    assert prune["state"] == "withheld"
    assert "canary-analyzer rollback" in prune["detail"]
    import pytest

    from analyzer.service.control import ControlRefusedError

    with pytest.raises(ControlRefusedError, match="nothing to prune: withheld"):
        service.approve_prune()
    clock.advance(24 * H)  # the soak ends: still never offered
    run_tick(service)
    assert service.status()["prune"]["state"] == "withheld"
    assert "SoakEnded" not in [item["reason"] for item in service.status()["timeline"]]
