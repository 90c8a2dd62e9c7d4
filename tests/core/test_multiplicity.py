"""The night's false-rollback budget spent within a wave: Holm's step-down as per-test alphas.

Why: the engine re-judges each critical rule at the alpha ``holm_alphas`` gives it, so these
alphas decide rollbacks. They must follow the step-down exactly (k-th smallest p-value gets
budget / (m − k), then the stopping alpha for the rest), leave out what never decides, and
keep the family-wise guarantee the operator set.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from analyzer.core.multiplicity import NightBudget, holm, holm_alphas, look_share, night_alpha
from analyzer.core.verdicts import RuleResult, Verdict


def result(
    namespace: str,
    p_value: float | None,
    rule: str = "error-rate",
    critical: bool = True,
    dry_run: bool = False,
) -> RuleResult:
    statistic = {} if p_value is None else {"p_value": p_value, "alpha": 0.01}
    return RuleResult(
        rule=rule,
        namespace=namespace,
        verdict=Verdict.FAIL,
        reason="",
        critical=critical,
        dry_run=dry_run,
        statistic=statistic,
    )


def test_each_rank_gets_the_family_budget_over_the_tests_left_while_rejecting():
    results = [result("c", 0.0003), result("a", 0.00001), result("b", 0.0001)]
    alphas = holm_alphas(results, per_test_alpha=0.0005, tests=4)
    family = 0.0005 * 4
    assert alphas == {
        ("a", "error-rate"): pytest.approx(family / 4),
        ("b", "error-rate"): pytest.approx(family / 3),
        ("c", "error-rate"): pytest.approx(family / 2),
    }


def test_after_the_first_test_not_rejected_the_rest_get_the_alpha_it_stopped_at():
    results = [result("a", 0.0001), result("b", 0.004), result("c", 0.0045), result("d", 0.3)]
    alphas = holm_alphas(results, per_test_alpha=0.0025, tests=4)
    # family 0.01: a 0.0025 (rejected), b 0.00333 (0.004 is not below: stop), c and d stay
    assert alphas[("a", "error-rate")] == pytest.approx(0.0025)
    assert alphas[("b", "error-rate")] == pytest.approx(0.01 / 3)
    assert alphas[("c", "error-rate")] == pytest.approx(0.01 / 3)  # 0.0045 < 0.005, still not
    assert alphas[("d", "error-rate")] == pytest.approx(0.01 / 3)


def test_a_p_value_equal_to_its_alpha_is_not_rejected_as_in_the_judge():
    alphas = holm_alphas([result("a", 0.001), result("b", 0.9)], per_test_alpha=0.001, tests=2)
    assert alphas == {("a", "error-rate"): 0.001, ("b", "error-rate"): 0.001}


def test_the_smallest_p_value_never_gets_less_than_the_even_split():
    per_test = night_alpha(0.05, 25, 4)
    alphas = holm_alphas([result("a", 0.2), result("b", 0.5)], per_test, tests=8)
    assert min(alphas.values()) == pytest.approx(per_test)
    assert all(alpha >= per_test for alpha in alphas.values())


def test_only_critical_non_dry_run_results_with_a_p_value_take_part():
    results = [
        result("a", 0.0001),
        result("a", 0.0001, rule="latency-p99", critical=False),
        result("a", 0.0001, rule="request-volume", dry_run=True),
        result("b", None),  # too little evidence: no test was run
        result("c", math.nan),
    ]
    alphas = holm_alphas(results, per_test_alpha=0.001, tests=3)
    assert alphas == {("a", "error-rate"): pytest.approx(0.001)}


def test_tests_without_a_p_value_still_count_in_the_wave():
    # three tests in the wave, only one judged with a p-value: it is first of three
    alphas = holm_alphas([result("a", 0.5)], per_test_alpha=0.001, tests=3)
    assert alphas == {("a", "error-rate"): pytest.approx(0.001)}
    # more results than tests (a caller's miscount) never gives more than the family budget
    many = holm_alphas([result(n, 0.0) for n in "abc"], per_test_alpha=0.001, tests=1)
    assert max(many.values()) == pytest.approx(0.003)


def test_ties_are_ordered_by_namespace_and_rule_every_time():
    results = [result("b", 0.001), result("a", 0.001, rule="z"), result("a", 0.001)]
    first = holm_alphas(results, per_test_alpha=0.01, tests=3)
    assert first == holm_alphas(list(reversed(results)), per_test_alpha=0.01, tests=3)
    assert list(first) == [("a", "error-rate"), ("a", "z"), ("b", "error-rate")]


def test_rejections_at_these_alphas_are_holms_and_keep_the_family_budget():
    """Healthy namespaces only (uniform p-values): the chance that any test of the wave
    rejects stays within the wave's share of the budget, and the tests rejected at the
    returned alphas are exactly those Holm's procedure rejects."""
    rng = np.random.default_rng(11)
    per_test, tests, runs = 0.05 / 8, 8, 4000
    any_rejected = 0
    for _ in range(runs):
        p_values = {f"ns-{i}": float(p) for i, p in enumerate(rng.uniform(size=tests))}
        alphas = holm_alphas([result(n, p) for n, p in p_values.items()], per_test, tests)
        rejected = {n for (n, _), alpha in alphas.items() if p_values[n] < alpha}
        assert rejected == holm(p_values, per_test * tests)
        any_rejected += bool(rejected)
    rate = any_rejected / runs
    assert rate <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / runs)


def test_a_per_test_alpha_outside_zero_and_one_is_refused():
    with pytest.raises(ValueError, match="per-test alpha"):
        holm_alphas([result("a", 0.1)], per_test_alpha=0.0, tests=1)


def test_the_night_budget_splits_and_describes_itself():
    budget = NightBudget(0.05, 25)
    assert budget.per_test(4) == pytest.approx(0.0005)
    assert budget.describe(4) == (
        "night budget 5% over 25 namespaces × 4 rules, Holm within the wave"
    )
    assert NightBudget(0.005, 1).describe(1) == (
        "night budget 0.5% over 1 namespace × 1 rule, Holm within the wave"
    )
    with pytest.raises(ValueError, match="budget"):
        NightBudget(1.0, 25)


@pytest.mark.parametrize("looks", [1, 2, 3, 6])
def test_looks_at_a_wave_share_the_test_alpha(looks):
    shares = [look_share(look, looks) for look in range(looks)]
    assert sum(shares) == pytest.approx(1.0)
    assert shares[0] == max(shares)  # most verdicts are reached on the first look


def test_an_extension_spends_its_own_share_of_the_budget():
    first = NightBudget(0.05, 25, look=0, looks=3)
    second = NightBudget(0.05, 25, look=1, looks=3)
    assert first.per_test(4) == pytest.approx(0.00025)
    assert second.per_test(4) == pytest.approx(0.000125)
    assert second.describe(4).endswith("Holm within the wave, look 2 of 3")
    with pytest.raises(ValueError, match="look"):
        look_share(3, 3)
