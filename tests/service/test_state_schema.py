"""The state ConfigMap is the one place an upgrade's state is serialised: rule results stay
typed (``RuleResult``) everywhere else, so the stored form must read back into them —
whether the previous release wrote it (rule results as free dicts, no schema version:
``tests/fixtures/state_samples``) or this one did — and alerts built from a loaded state
must explain the same rules as alerts built before it was stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from analyzer.core.alerts.upgrade import rollback_started_alert
from analyzer.core.judge import RuleInput, judge_rule
from analyzer.core.observations import RatioCounts
from analyzer.core.upgrade import (
    STATE_SCHEMA_VERSION,
    Judge,
    Judged,
    NamespaceJudgement,
    Stage,
    StateSchemaError,
    UpgradeState,
    state_document,
    state_from_document,
)
from analyzer.core.verdicts import RuleResult, Verdict, combine_rule_results
from analyzer.service.clock import VirtualClock
from analyzer.service.engine import (
    LogNotifier,
    MemoryStateStore,
    StateCorruptError,
    UpgradeEngine,
)
from tests.fixtures.fakes import FakeMesh
from tests.fixtures.rules import make_rule
from tests.service.test_engine import make_plan

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "state_samples"
NOW = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)
ERRORS = make_rule(
    "ratio",
    name="error-rate",
    judge={"allowedChange": {"absolute": 0.005, "relative": 0.5}, "minEvidence": {"requests": 500}},
)


def stored(name: str) -> dict:
    """The state document of a sample ConfigMap, as the ConfigMap store loads it."""
    return json.loads(json.loads((SAMPLES / name).read_text())["data"]["state"])


def through_the_configmap(document: dict) -> dict:
    """What the ConfigMap store writes and reads back: JSON text."""
    return json.loads(json.dumps(document, sort_keys=True))


@dataclass
class CountingJudging:
    """Judges each namespace's error-rate rule on fixed counts (``failing``: 2% after)."""

    failing: set[str]
    actions: list[Judge] = field(default_factory=list)
    results: dict[str, RuleResult] = field(default_factory=dict)

    def judge(self, action: Judge) -> Judged:
        self.actions.append(action)
        verdicts = {}
        for name in action.judged:
            after = 200.0 if name in self.failing else 10.0
            controls = {c: RatioCounts(12.0, 12000.0) for c in action.controls}
            result = judge_rule(
                RuleInput(
                    ERRORS,
                    name,
                    RatioCounts(10.0, 10000.0),
                    RatioCounts(after, 10000.0),
                    controls,
                    controls,
                )
            )
            self.results[name] = result
            verdict = combine_rule_results(name, (result,))
            verdicts[name] = NamespaceJudgement(
                verdict=verdict.verdict, reason=verdict.reason, rules=verdict.rules
            )
        return Judged(verdicts=verdicts)


#: record fields this release writes that the samples' release did not
ADDED_SINCE = {"evidence"}


@pytest.mark.parametrize(
    "sample",
    sorted(p.name for p in SAMPLES.glob("*.configmap.json")),
)
def test_every_state_of_the_previous_release_is_read_with_typed_rule_results(sample):
    document = stored(sample)
    assert "schema_version" not in document  # written before the schema had a version
    state = state_from_document(document)
    for record in state.namespaces:
        assert all(isinstance(rule, RuleResult) for rule in record.rules)
        assert record.verdict is None or isinstance(record.verdict, Verdict)
    again = through_the_configmap(state_document(state))
    assert again["schema_version"] == STATE_SCHEMA_VERSION
    # written back, the records are the JSON the previous release wrote (that release reads
    # them too) plus the fields added since (``evidence``: which evidence judged it, empty
    # for a record saved before, which its own traffic judged)
    written = again["state"]["namespaces"]
    assert all(record["evidence"] == "" for record in written)
    assert [
        {key: value for key, value in record.items() if key not in ADDED_SINCE}
        for record in written
    ] == document["state"]["namespaces"]


def test_rule_results_of_the_previous_release_explain_the_rollback():
    state = state_from_document(stored("rolling-back.configmap.json"))
    failed = state.record("b")
    assert failed.verdict is Verdict.FAIL
    (error_rate,) = [r for r in failed.rules if r.rule == "error-rate"]
    assert error_rate.verdict is Verdict.FAIL and error_rate.controls is not None
    alert = rollback_started_alert(state, NOW)
    assert alert.labels["rule"] == "error-rate" and alert.labels["namespace"] == "b"
    assert "before 0.001 → after 0.02" in alert.description
    assert "controls: a, d, e, f:" in alert.description


def test_state_written_by_this_release_reads_back_equal_and_resumes():
    store = MemoryStateStore()
    judging = CountingJudging(failing={"b"})
    engine = UpgradeEngine(FakeMesh.standard(), store, judging, VirtualClock(), LogNotifier())
    stopped: list[UpgradeState] = []

    def stop_when_rolling_back(state: UpgradeState) -> None:
        if state.stage is Stage.ROLLBACK and not stopped:
            stopped.append(state)
            raise KeyboardInterrupt  # the process dies with the rollback's first step pending

    with pytest.raises(KeyboardInterrupt):
        engine.run(make_plan(), gate=stop_when_rolling_back)
    store.document = through_the_configmap(store.document)
    assert store.document["schema_version"] == STATE_SCHEMA_VERSION
    loaded = engine.load()
    assert loaded == stopped[0]
    before, after = rollback_started_alert(stopped[0], NOW), rollback_started_alert(loaded, NOW)
    assert (after.summary, after.labels) == (before.summary, before.labels)
    # the store writes JSON with sorted keys, so evidence is listed in another order
    assert sorted(after.description) == sorted(before.description)
    assert loaded.record("b").rules == (judging.results["b"],)  # as the judge gave it


def test_a_newer_schema_or_another_format_is_refused_not_misread():
    document = stored("rolling-back.configmap.json")
    with pytest.raises(StateSchemaError, match="newer"):
        state_from_document({**document, "schema_version": STATE_SCHEMA_VERSION + 1})
    with pytest.raises(StateSchemaError, match="format"):
        state_from_document({**document, "format": 2})
    store = MemoryStateStore()
    store.document = {**document, "schema_version": STATE_SCHEMA_VERSION + 1}
    engine = UpgradeEngine(
        FakeMesh.standard(), store, CountingJudging(set()), VirtualClock(), LogNotifier()
    )
    with pytest.raises(StateCorruptError):
        engine.load()
