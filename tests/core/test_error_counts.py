"""The error-rate test at the counts a quiet namespace has at night: its false-alarm rate
stays at alpha (summed exactly over every count the windows can show), it calls a rise as
soon as an ideal test would, and drift that adds the same points everywhere is told apart
from drift in proportion."""

from __future__ import annotations

import pytest
from scipy import stats

from analyzer.core.judge import RuleInput, judge_rule
from analyzer.core.observations import RatioCounts
from analyzer.core.rules import Rule
from analyzer.core.verdicts import Verdict
from tests.fixtures.rules import make_rule


def error_rule(**judge) -> Rule:
    return make_rule("ratio", name="error-rate", judge={"confidence": 0.99, **judge})


#: Any significant rise fails: what is left is the test itself.
BARE = error_rule(allowedChange={"absolute": 0.0}, minEvidence={"requests": 1})
SHIPPED = error_rule(
    allowedChange={"absolute": 0.005, "relative": 0.5}, minEvidence={"requests": 500}
)


def verdict(rule: Rule, before: RatioCounts, after: RatioCounts, controls=None) -> Verdict:
    controls_before, controls_after = controls or ({}, {})
    return judge_rule(
        RuleInput(
            rule=rule,
            namespace="canary",
            before=before,
            after=after,
            controls_before=controls_before,
            controls_after=controls_after,
        )
    ).verdict


@pytest.mark.parametrize(
    ("requests", "error_rate", "at_least"),
    [(300, 0.003, 0.0), (300, 0.02, 0.005), (1200, 0.003, 0.005), (3000, 0.008, 0.007)],
)
def test_false_alarms_stay_at_alpha_at_low_counts(requests, error_rate, at_least):
    """Never much above alpha; and, once there are a few errors to go on, not far below it
    either (a test far below alpha wastes the power a quiet namespace has)."""
    counts = range(int(stats.binom.isf(1e-7, requests, error_rate)) + 1)
    weights = stats.binom.pmf(list(counts), requests, error_rate)
    size = sum(
        weights[before] * weights[after]
        for before in counts
        for after in counts
        if verdict(BARE, RatioCounts(before, requests), RatioCounts(after, requests))
        is Verdict.FAIL
    )
    assert at_least <= size <= 0.0125


def test_a_rise_is_called_where_an_ideal_test_calls_it():
    # 0.5 rps over 10 minutes: 300 requests a window, none failed before. A conditional
    # test needs 7 errors after, a z test 6.
    assert verdict(BARE, RatioCounts(0, 300), RatioCounts(5, 300)) is Verdict.FAIL
    assert verdict(BARE, RatioCounts(0, 300), RatioCounts(4, 300)) is not Verdict.FAIL


def shared_backend(shift: float):
    """Five busy controls whose error rates all rose by ``shift`` (absolute)."""
    bases = (0.001, 0.002, 0.004, 0.006, 0.008)
    before = {f"c{i}": RatioCounts(round(b * 200_000), 200_000) for i, b in enumerate(bases)}
    after = {
        f"c{i}": RatioCounts(round((b + shift) * 200_000), 200_000) for i, b in enumerate(bases)
    }
    return before, after


def test_additive_drift_is_not_blamed_on_the_canary():
    controls = shared_backend(0.004)
    result = judge_rule(
        RuleInput(
            rule=SHIPPED,
            namespace="canary",
            before=RatioCounts(20, 20_000),
            after=RatioCounts(100, 20_000),  # 0.1 % → 0.5 %: the same +0.4 pp as everyone
            controls_before=controls[0],
            controls_after=controls[1],
        )
    )
    assert result.verdict is Verdict.PASS
    assert result.controls["drift_model"] == "additive"


def test_a_rise_beyond_additive_drift_fails():
    controls = shared_backend(0.004)
    assert (
        verdict(SHIPPED, RatioCounts(20, 20_000), RatioCounts(300, 20_000), controls)
        is Verdict.FAIL
    )
