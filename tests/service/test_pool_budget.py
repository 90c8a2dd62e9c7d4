"""A wave's pooled quiet-namespace test is counted under the night's multiple-testing
correction: it takes a place in the wave's Holm step-down, within the wave's share of the
night budget, instead of being judged at a whole per-test alpha on top of it.

Why: the night budget promises at most ``budget`` chance of any false rollback over every
test of the night. A pool is one more test of its wave (a FAIL of the pool fails every
quiet namespace in it); judged outside the family, it would spend alpha nobody accounted
for. These tests pin both halves: the own tests leave room for the pool, and the pool is
judged at its Holm alpha.
"""

from __future__ import annotations

import pytest

from analyzer.core.judge import RuleInput, judge_rule
from analyzer.core.multiplicity import NightBudget, holm_alphas
from analyzer.core.observations import RatioCounts
from analyzer.core.quiet import Evidence, WaveContext, pool_input
from analyzer.core.rules import LoadedRule, RuleSet
from analyzer.core.verdicts import Verdict
from analyzer.service.analysis import (
    judge_quiet_wave,
    pool_alphas,
    pool_slots,
    spend_night_budget,
)
from tests.fixtures.rules import SHIPPED_ERROR_RATE

ERRORS = SHIPPED_ERROR_RATE
RULES = RuleSet(rules=(LoadedRule(rule=ERRORS, source="test", line=1),))
CONTROLS_BEFORE = {"busy-a": RatioCounts(bad=300, total=100_000)}
CONTROLS_AFTER = {"busy-a": RatioCounts(bad=310, total=101_000)}
#: 5 % over 25 namespaces × 1 rule: 0.002 per test
BUDGET = NightBudget(0.05, 25)
PER_TEST = 0.002


def quiet_wave(errors_after: float) -> dict[tuple[str, str], RuleInput]:
    """Eight quiet namespaces (~0.2–0.7 rps; 0.3 % errors before, ``errors_after`` after):
    each too thin for the rule alone, enough pooled."""
    inputs = {}
    for index in range(8):
        name = f"quiet-{index}"
        before, after = 120 + 40 * index, 360 + 120 * index
        inputs[(name, ERRORS.name)] = RuleInput(
            rule=ERRORS,
            namespace=name,
            before=RatioCounts(bad=1, total=before),
            after=RatioCounts(bad=round(errors_after * after), total=after),
            controls_before=CONTROLS_BEFORE,
            controls_after=CONTROLS_AFTER,
        )
    return inputs


def own_results(inputs: dict[tuple[str, str], RuleInput]):
    return {name: [judge_rule(data)] for (name, _), data in inputs.items()}


def test_a_wave_that_may_pool_counts_its_pool_in_the_holm_step_down():
    inputs = quiet_wave(errors_after=0.003)
    assert pool_slots(RULES, len(inputs)) == 1  # one pooling rule, eight namespaces
    assert pool_slots(RULES, 1) == 0  # a canary alone has nobody to pool with
    counted = spend_night_budget(own_results(inputs), inputs, RULES, BUDGET, pooled=1)
    alone = spend_night_budget(own_results(inputs), inputs, RULES, BUDGET)
    # the family is the wave's share (8 tests × the per-test alpha) either way; with the
    # pool counted the step-down runs over 9 tests, so every own test gets 8/9 as much
    smallest = min(r[0].statistic["night_alpha"] for r in counted.values())
    assert smallest == pytest.approx(PER_TEST * 8 / 9)
    assert min(r[0].statistic["night_alpha"] for r in alone.values()) == pytest.approx(PER_TEST)
    # and each verdict says so
    assert all("1 pooled test counted" in r[0].reason for r in counted.values())
    assert not any("pooled test" in r[0].reason for r in alone.values())


def test_the_pool_is_judged_at_its_holm_alpha_inside_the_waves_share():
    # every quiet namespace a little worse (+1.5 pp): none shows it alone, the pool does
    inputs = quiet_wave(errors_after=0.018)
    per_rule = spend_night_budget(own_results(inputs), inputs, RULES, BUDGET, pooled=1)
    assert all(r[0].verdict is Verdict.INCONCLUSIVE for r in per_rule.values())
    at_alpha = {
        key: RuleInput(**{**vars(data), "alpha": per_rule[key[0]][0].statistic["alpha"]})
        for key, data in inputs.items()
    }
    alphas = pool_alphas(per_rule, at_alpha, RULES, BUDGET)
    # the pool's p-value is the wave's smallest: first in the step-down over the 8 own
    # tests and the pool, it gets the wave's share over 9 — not a whole per-test alpha more
    pooled = judge_rule(pool_input(ERRORS, list(inputs.values())))
    own_p = [r[0].statistic["p_value"] for r in per_rule.values()]
    assert pooled.statistic["p_value"] < min(own_p)
    assert alphas == {"error-rate": pytest.approx(PER_TEST * 8 / 9)}
    expected = holm_alphas([r[0] for r in per_rule.values()] + [pooled], PER_TEST, 8, pooled=1)
    assert alphas["error-rate"] == pytest.approx(expected[(pooled.namespace, "error-rate")])
    verdicts = judge_quiet_wave(
        per_rule, inputs, RULES, WaveContext(passed_before=("busy-a",)), BUDGET
    )
    assert {(v.verdict.verdict, v.evidence) for v in verdicts.values()} == {
        (Verdict.FAIL, Evidence.POOL)
    }
    judged_at = [v.verdict.rules[0].statistic["pool_alpha"] for v in verdicts.values()]
    assert judged_at == [pytest.approx(PER_TEST * 8 / 9)] * 8
