"""The quiet policy's plumbing through the state machine and the engine: each judgement
knows which namespaces the revision passed on their own traffic earlier in the night and
whether it is the wave's last look; the evidence that judged each namespace reaches the
summary."""

from __future__ import annotations

from dataclasses import dataclass, field

from analyzer.core.quiet import HealthSignals
from analyzer.core.upgrade import Judge, Judged, NamespaceJudgement, Outcome, summary
from analyzer.core.verdicts import Verdict
from analyzer.service.judging import quiet_context
from tests.fixtures.fakes import FakeMesh
from tests.service.test_engine import NAMES, make_engine, make_plan


@dataclass
class PooledLastWave:
    """Judges the last wave as a quiet policy would: pooled; the others on their own."""

    actions: list[Judge] = field(default_factory=list)

    def judge(self, action: Judge) -> Judged:
        self.actions.append(action)
        evidence = "pool" if "f" in action.judged else "own"
        return Judged(verdicts={
            name: NamespaceJudgement(verdict=Verdict.PASS, reason="ok", evidence=evidence)
            for name in action.judged
        })  # fmt: skip


def test_judgements_carry_the_earlier_own_traffic_passes_and_the_summary_the_evidence():
    judging = PooledLastWave()
    engine, _ = make_engine(FakeMesh.standard(NAMES), judging)
    state = engine.run(make_plan())
    assert state.outcome is Outcome.PROMOTED
    assert [j.passed_before for j in judging.actions] == [(), ("a",), ("a", "b", "c")]
    evidence = {r["name"]: r["evidence"] for r in summary(state)["namespaces"]}
    assert evidence == {"a": "own", "b": "own", "c": "own", "d": "pool", "e": "pool", "f": "pool"}


def test_only_the_last_look_may_pass_by_policy_and_health_is_read_for_the_wave():
    judging = PooledLastWave()
    engine, _ = make_engine(FakeMesh.standard(NAMES), judging)
    engine.run(make_plan(max_extensions=2))
    action = judging.actions[-1]
    assert not quiet_context(action.model_copy(update={"look": 0, "looks": 3}), None).final_look
    seen: list[tuple[str, ...]] = []

    def health(judge: Judge) -> dict[str, HealthSignals]:
        seen.append(judge.judged)
        return {name: HealthSignals() for name in judge.judged}

    context = quiet_context(action.model_copy(update={"look": 2, "looks": 3}), health)
    assert context.final_look and set(context.health or {}) == set(action.judged)
    assert seen == [action.judged] and context.passed_before == ("a", "b", "c")
