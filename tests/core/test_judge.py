"""The judge, table-driven: each row is a situation a rule meets at night and the verdict it
must get — ties, zero errors, constant series, minimum evidence, ceiling, direction,
controls that cancel drift, and the ERROR outcome. Plus the pieces it rests on: tail
quantiles from buckets and the night's alpha budget."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analyzer.bench.scenarios import ISTIO_BUCKETS, _bucket_probabilities
from analyzer.core.judge import RuleInput, error_result, judge_rule
from analyzer.core.multiplicity import holm, night_alpha
from analyzer.core.observations import BucketCounts, RatioCounts, ValueSeries, VolumeCount
from analyzer.core.quantiles import tail_quantile
from analyzer.core.rules import Rule
from analyzer.core.verdicts import Verdict
from tests.fixtures.rules import make_rule


def rule(kind: str, **judge) -> Rule:
    if kind == "histogram":
        judge.setdefault("quantile", 0.99)
    return make_rule(kind, judge=judge)


ERRORS = {"allowedChange": {"absolute": 0.005, "relative": 0.5}, "minEvidence": {"requests": 500}}
LATENCY = {"allowedChange": {"relative": 0.25, "absolute": 5}, "minEvidence": {"requests": 500}}
VOLUME = {
    "direction": "decrease",
    "allowedChange": {"relative": 0.3},
    "minEvidence": {"requests": 500},
}


def histogram(requests: int, median: float = 30.0, sigma: float = 0.7) -> BucketCounts:
    """Expected bucket counts (no noise) of a log-normal latency."""
    cumulative = np.cumsum(_bucket_probabilities(median, sigma) * requests)
    return BucketCounts(ISTIO_BUCKETS, tuple(float(round(v)) for v in cumulative))


def judged(the_rule: Rule, before, after, controls_before=None, controls_after=None, alpha=None):
    return judge_rule(
        RuleInput(
            rule=the_rule,
            namespace="canary",
            before=before,
            after=after,
            controls_before=controls_before or {},
            controls_after=controls_after or {},
            alpha=alpha,
        )
    )


CASES = [
    # (id, rule, before, after, controls before, controls after, verdict)
    (
        "errors unchanged, plenty of traffic",
        rule("ratio", **ERRORS),
        RatioCounts(60, 12000),
        RatioCounts(61, 12000),
        None,
        None,
        Verdict.PASS,
    ),
    (
        "zero errors in both windows",
        rule("ratio", **ERRORS),
        RatioCounts(0, 6000),
        RatioCounts(0, 6000),
        None,
        None,
        Verdict.PASS,
    ),
    (
        "errors 1% → 5% at 20 rps",
        rule("ratio", **ERRORS),
        RatioCounts(120, 12000),
        RatioCounts(600, 12000),
        None,
        None,
        Verdict.FAIL,
    ),
    (
        "zero errors before, many after",
        rule("ratio", **ERRORS),
        RatioCounts(0, 6000),
        RatioCounts(90, 6000),
        None,
        None,
        Verdict.FAIL,
    ),
    (
        "below minimum evidence, healthy: inconclusive, never pass",
        rule("ratio", **ERRORS),
        RatioCounts(0, 30),
        RatioCounts(0, 30),
        None,
        None,
        Verdict.INCONCLUSIVE,
    ),
    (
        "below minimum evidence but an exact test shows the regression",
        rule("ratio", **ERRORS),
        RatioCounts(0, 300),
        RatioCounts(60, 300),
        None,
        None,
        Verdict.FAIL,
    ),
    (
        "no requests after the restart",
        rule("ratio", **ERRORS),
        RatioCounts(5, 6000),
        RatioCounts(0, 0),
        None,
        None,
        Verdict.INCONCLUSIVE,
    ),
    (
        "significant but tiny change passes (within allowance)",
        rule("ratio", **ERRORS),
        RatioCounts(1000, 1_000_000),
        RatioCounts(1300, 1_000_000),
        None,
        None,
        Verdict.PASS,
    ),
    (
        "ceiling: after value clearly above it fails outright",
        rule("ratio", ceiling=0.01, minEvidence={"requests": 100}),
        RatioCounts(150, 10000),
        RatioCounts(160, 10000),
        None,
        None,
        Verdict.FAIL,
    ),
    (
        "errors doubled everywhere (drift): controls cancel it",
        rule("ratio", **ERRORS),
        RatioCounts(60, 12000),
        RatioCounts(130, 12000),
        {"a": RatioCounts(600, 120000), "b": RatioCounts(300, 60000)},
        {"a": RatioCounts(1210, 120000), "b": RatioCounts(590, 60000)},
        Verdict.PASS,
    ),
    (
        "errors tripled in the canary only: controls do not hide it",
        rule("ratio", **ERRORS),
        RatioCounts(60, 12000),
        RatioCounts(180, 12000),
        {"a": RatioCounts(600, 120000)},
        {"a": RatioCounts(610, 120000)},
        Verdict.FAIL,
    ),
    (
        "traffic halved everywhere (night drift): controls cancel it",
        rule("volume", **VOLUME),
        VolumeCount(12000, 600),
        VolumeCount(6100, 600),
        {"a": VolumeCount(60000, 600)},
        {"a": VolumeCount(30000, 600)},
        Verdict.PASS,
    ),
    (
        "traffic halved without controls: a decrease is the bad direction",
        rule("volume", **VOLUME),
        VolumeCount(12000, 600),
        VolumeCount(6000, 600),
        None,
        None,
        Verdict.FAIL,
    ),
    (
        "traffic doubled: an increase is not the bad direction",
        rule("volume", **VOLUME),
        VolumeCount(12000, 600),
        VolumeCount(24000, 600),
        None,
        None,
        Verdict.PASS,
    ),
    (
        "p99 unchanged",
        rule("histogram", **LATENCY),
        histogram(12000),
        histogram(12000),
        None,
        None,
        Verdict.PASS,
    ),
    (
        "p99 +60% (tail widened)",
        rule("histogram", **LATENCY),
        histogram(12000, sigma=0.7),
        histogram(12000, sigma=0.7 + math.log(1.6) / 2.326),
        None,
        None,
        Verdict.FAIL,
    ),
    (
        "latency +40% everywhere (drift): controls cancel it",
        rule("histogram", **LATENCY),
        histogram(12000, median=30),
        histogram(12000, median=42),
        {"a": histogram(60000, median=20)},
        {"a": histogram(60000, median=28)},
        Verdict.PASS,
    ),
    (
        "too few tail requests for p99",
        rule("histogram", quantile=0.99, allowedChange={"relative": 0.25}),
        histogram(800),
        histogram(800),
        None,
        None,
        Verdict.INCONCLUSIVE,
    ),
    (
        "value series: constant and equal (all ties)",
        rule("value", minEvidence={"points": 3}, allowedChange={"relative": 0.1}),
        ValueSeries((5.0,) * 10),
        ValueSeries((5.0,) * 10),
        None,
        None,
        Verdict.PASS,
    ),
    (
        "value series: ties across windows, clear increase",
        rule("value", minEvidence={"points": 3}, allowedChange={"relative": 0.1}),
        ValueSeries((5.0, 5.0, 6.0, 5.0, 6.0, 5.0, 5.0, 6.0, 5.0, 5.0)),
        ValueSeries((9.0, 9.0, 10.0, 9.0, 10.0, 9.0, 9.0, 10.0, 9.0, 9.0)),
        None,
        None,
        Verdict.FAIL,
    ),
    (
        "value series: too few points",
        rule("value", minEvidence={"points": 5}),
        ValueSeries((1.0, 2.0)),
        ValueSeries((1.0, 2.0)),
        None,
        None,
        Verdict.INCONCLUSIVE,
    ),
    (
        "no data after the restart: not evidence of health",
        rule("ratio", **ERRORS),
        RatioCounts(60, 12000),
        None,
        None,
        None,
        Verdict.INCONCLUSIVE,
    ),
]


@pytest.mark.parametrize(
    ("the_rule", "before", "after", "controls_before", "controls_after", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_verdict_table(the_rule, before, after, controls_before, controls_after, expected):
    result = judged(the_rule, before, after, controls_before, controls_after)
    assert result.verdict is expected, result.reason
    assert result.reason  # every result explains itself


def test_results_explain_themselves():
    result = judged(rule("ratio", **ERRORS), RatioCounts(120, 12000), RatioCounts(600, 12000))
    assert result.before == pytest.approx(0.01) and result.after == pytest.approx(0.05)
    assert result.evidence["before_requests"] == 12000
    assert result.threshold["allowed_change"] == pytest.approx(0.005)
    assert result.statistic["p_value"] < 1e-6 and "test" in result.statistic
    assert result.reason.startswith("regression:")


def test_a_p_value_too_small_for_a_double_reads_as_a_bound_not_zero():
    # 0.2 % → 4 % over 240,000 requests each: the tail underflows; "p=0" would claim certainty
    result = judged(rule("ratio", **ERRORS), RatioCounts(480, 240000), RatioCounts(9600, 240000))
    assert result.verdict is Verdict.FAIL
    assert result.statistic["p_value"] == 0.0
    assert "p<1e-300" in result.reason and "p=0" not in result.reason
    modest = judged(rule("ratio", **ERRORS), RatioCounts(10, 2000), RatioCounts(26, 2000))
    assert f"p={modest.statistic['p_value']:.2g}" in modest.reason


@pytest.mark.parametrize(
    ("fail_when", "after_bad"),
    [("estimate-beyond", 26), ("beyond-allowance", 40)],  # +0.8 pp / +1.5 pp, allowed 0.5 pp
)
def test_alpha_override_makes_a_borderline_regression_inconclusive(fail_when, after_bad):
    the_rule = rule("ratio", failWhen=fail_when, **ERRORS)
    before, after = RatioCounts(10, 2000), RatioCounts(after_bad, 2000)
    assert judged(the_rule, before, after, alpha=0.05).verdict is Verdict.FAIL
    assert judged(the_rule, before, after, alpha=1e-5).verdict is Verdict.INCONCLUSIVE


def test_error_outcome_is_neither_pass_nor_fail():
    result = error_result(rule("ratio", **ERRORS), "canary", "connection refused", ("q",))
    assert result.verdict is Verdict.ERROR
    assert "connection refused" in result.reason and result.queries == ("q",)


@pytest.mark.parametrize("sigma", [0.5, 0.7, 0.85])
@pytest.mark.parametrize("median", [8.0, 20.0, 40.0, 60.0])
def test_tail_quantile_tracks_the_true_p99_through_coarse_buckets(median, sigma):
    true_p99 = median * math.exp(2.326 * sigma)
    estimate = tail_quantile(0.99, histogram(1_000_000, median, sigma))
    assert estimate is not None
    assert estimate.value == pytest.approx(true_p99, rel=0.08)


def test_tail_quantile_of_empty_or_unresolvable_histograms():
    assert tail_quantile(0.99, BucketCounts((100.0, math.inf), (0.0, 0.0))) is None
    assert tail_quantile(0.99, BucketCounts((100.0, math.inf), (10.0, 100.0))) is None


def test_night_alpha_splits_the_budget_over_every_test():
    assert night_alpha(0.1, 10, 4) == pytest.approx(0.0025)
    assert night_alpha(0.1, 10, 4, spent=0.05) == pytest.approx(0.00125)
    with pytest.raises(ValueError):
        night_alpha(1.5, 1, 1)


def test_holm_rejects_step_down():
    p_values = {"a": 0.001, "b": 0.012, "c": 0.04, "d": 0.5}
    assert holm(p_values, 0.05) == {"a", "b"}
    assert holm({"a": 0.2}, 0.05) == set()


LATENCY_P99 = {"allowedChange": {"relative": 0.2, "absolute": 5}, "minEvidence": {"requests": 500}}


FAIL_WHEN = ["estimate-beyond", "beyond-allowance"]


@pytest.mark.parametrize("fail_when", FAIL_WHEN)
@pytest.mark.parametrize("requests", [3000, 6000, 12000, 48000])  # 5–80 rps, 10-minute windows
@pytest.mark.parametrize("drift", [0.9, 1.0, 1.2])  # the night's latency factor, everyone
def test_plus_14_percent_net_of_controls_allowed_20_is_never_fail(requests, drift, fail_when):
    # a healthy canary whose p99 reads +14.4 % net of three controls: significant against
    # "no change at all" at 10-20 rps, but the rule allows +20 %: under either failWhen a
    # FAIL needs a change beyond the allowance (its estimate, or its certainty)
    controls_before = {
        f"c{i}": histogram(4 * requests, median=m) for i, m in enumerate((20, 35, 50))
    }
    controls_after = {
        f"c{i}": histogram(4 * requests, median=m * drift) for i, m in enumerate((20, 35, 50))
    }
    result = judged(
        rule("histogram", failWhen=fail_when, **LATENCY_P99),
        histogram(requests),
        histogram(requests, median=30 * 1.144 * drift),
        controls_before,
        controls_after,
    )
    assert result.verdict is not Verdict.FAIL, result.reason
    assert result.statistic["fail_when"] == fail_when
    assert 0.1 < result.statistic["relative_change"] < 0.2
    if requests >= 12000:  # the bare test of "no change" rejects it
        assert result.statistic["p_value_no_change"] < 0.01
    assert result.statistic["p_value_beyond_allowance"] > 0.5


def test_an_estimate_beyond_the_allowance_fails_by_default_and_waits_when_strict():
    # 0.5 % → 1.1 % over 12,000 requests each: +0.6 pp against +0.5 pp allowed — clearly
    # more than no change, its estimate beyond the allowance, the excess itself not certain
    before, after = RatioCounts(60, 12000), RatioCounts(132, 12000)
    default = judged(rule("ratio", **ERRORS), before, after)
    assert default.verdict is Verdict.FAIL, default.reason
    assert default.statistic["fail_when"] == "estimate-beyond"
    assert default.statistic["p_value"] == default.statistic["p_value_no_change"] < 1e-6
    strict = judged(rule("ratio", failWhen="beyond-allowance", **ERRORS), before, after)
    assert strict.verdict is Verdict.INCONCLUSIVE, strict.reason
    assert strict.statistic["p_value"] == strict.statistic["p_value_beyond_allowance"] > 0.01
    # 0.5 % → 2 %: the excess over +0.5 pp is certain, both settings FAIL
    for fail_when in FAIL_WHEN:
        the_rule = rule("ratio", failWhen=fail_when, **ERRORS)
        assert judged(the_rule, before, RatioCounts(240, 12000)).verdict is Verdict.FAIL


def test_a_p99_estimate_beyond_the_allowance_with_controls_follows_fail_when():
    # p99 about +26 % net of a steady control, +20 % allowed, 12,000 requests a window
    # (20 rps): the change is certain, the part beyond +20 % is not
    controls_before = {"c": histogram(4 * 12000, median=40)}
    controls_after = {"c": histogram(4 * 12000, median=40)}
    before, after = histogram(12000), histogram(12000, median=30 * 1.25)
    verdicts = {}
    for fail_when in FAIL_WHEN:
        result = judged(
            rule("histogram", failWhen=fail_when, **LATENCY_P99),
            before,
            after,
            controls_before,
            controls_after,
        )
        verdicts[fail_when] = result.verdict
        assert result.statistic["p_value_no_change"] < 0.01
        assert result.statistic["p_value_beyond_allowance"] > 0.01
    assert verdicts == {"estimate-beyond": Verdict.FAIL, "beyond-allowance": Verdict.INCONCLUSIVE}


def test_a_significant_change_inside_the_allowance_is_never_fail_by_default():
    # +0.3 pp against +0.5 pp allowed over 200,000 requests: certain, but allowed
    result = judged(rule("ratio", **ERRORS), RatioCounts(1000, 200000), RatioCounts(1600, 200000))
    assert result.statistic["p_value_no_change"] < 1e-6
    assert result.verdict is not Verdict.FAIL, result.reason


def bursty(requests: int, median: float, wobble: float, seed: int) -> BucketCounts:
    """Ten one-minute steps of a log-normal latency whose scale wobbles minute to minute."""
    rng = np.random.default_rng(seed)
    steps = []
    for factor in np.exp(rng.normal(0.0, wobble, 10)):
        counts = rng.multinomial(requests // 10, _bucket_probabilities(median * factor, 0.7))
        steps.append(tuple(float(v) for v in np.cumsum(counts)))
    total = tuple(float(v) for v in np.sum(steps, axis=0))
    return BucketCounts(ISTIO_BUCKETS, total, steps=tuple(steps))


def test_a_bursty_tail_widens_the_quantiles_error_and_a_steady_one_does_not():
    wobbly = bursty(12000, 40.0, 0.25, seed=3)
    steady = bursty(12000, 40.0, 0.0, seed=3)
    without_steps = BucketCounts(wobbly.bounds, wobbly.cumulative)
    wobbly_q = tail_quantile(0.99, wobbly)
    assert wobbly_q.dispersion > 1.5
    assert wobbly_q.log_standard_error > 1.2 * tail_quantile(0.99, without_steps).log_standard_error
    steady_q = tail_quantile(0.99, steady)
    assert steady_q.dispersion < 1.5
