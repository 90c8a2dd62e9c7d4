"""The judges the benchmark compares, all on the same scenario data.

- ``ours``: the product's judge (``core.judge``) with the default rules and the control
  namespaces, per-test alpha from the night's false-rollback budget (``core.multiplicity``).
- ``flagger``: Flagger-style absolute thresholds on the after window — request success
  rate ≥ 99 % and p99 ≤ a limit the operator set for the service; any failed check fails.
  The limit is generous: 1.25 × the service's healthy p99 as its dashboards show it.
- ``kayenta``: Kayenta-style (NetflixACAJudge + MannWhitneyClassifier): per-step values of
  before (baseline) vs after (canary), Mann-Whitney with a 98 % confidence interval of the
  Hodges-Lehmann shift; a metric is High (Low) when the interval's lower (upper) end lies
  beyond ±25 % of the estimate's magnitude *and* the mean-ratio effect size passes the
  allowed increase (decrease); NaN steps replaced by 0 (its default NaN strategy); any
  critical metric High/Low fails the canary. Effect-size gates are the default rules'
  relative allowances, so it is held to the same tolerance as ours.
- ``naive``: what a person would script: after vs before window aggregates with the
  rules' relative thresholds, no statistics, no controls.

Reimplemented from the published behaviour for comparison only (no code copied).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np
from scipy import stats

from analyzer.adapters.rule_files import PACKAGED_RULES, load_rules
from analyzer.bench.scenarios import (
    ISTIO_BUCKETS,
    STEP_SECONDS,
    STEPS_PER_WINDOW,
    Scenario,
    WindowData,
    _bucket_probabilities,
)
from analyzer.core.judge import RuleInput, judge_rule
from analyzer.core.observations import (
    BucketCounts,
    Observation,
    RatioCounts,
    VolumeCount,
    histogram_quantile,
)
from analyzer.core.rules import FailWhen, Rule, RuleSet, RuleType
from analyzer.core.verdicts import RuleResult, Verdict, combine_rule_results


@dataclass(frozen=True)
class JudgeOutcome:
    """A judge's namespace verdict and which rules (metrics) decided it."""

    verdict: Verdict
    failed: tuple[str, ...] = ()


Judge = Callable[[Scenario], JudgeOutcome]


@lru_cache(maxsize=4)
def default_rules(fail_when: str | None = None) -> RuleSet:
    """The default server-side rules shipped with the product (error rate, p99, p50, volume);
    ``fail_when``: every rule's ``judge.failWhen`` set to it (None: as shipped).

    The benchmark's synthetic windows are one namespace's served requests; the client-side
    rules (``reporter="source"``) judge a different population, the namespace's own outbound
    calls, which the benchmark does not generate, so they are left out here."""
    rules = load_rules([PACKAGED_RULES])
    server_side = tuple(
        loaded
        for loaded in rules.rules
        if 'reporter="source"'
        not in " ".join(
            filter(
                None,
                (
                    loaded.rule.spec.numerator,
                    loaded.rule.spec.denominator,
                    loaded.rule.spec.buckets,
                    loaded.rule.spec.query,
                ),
            )
        )
    )
    if fail_when is None:
        return RuleSet(server_side)
    return RuleSet(
        tuple(
            replace(loaded, rule=_with_fail_when(loaded.rule, FailWhen(fail_when)))
            for loaded in server_side
        )
    )


def _with_fail_when(rule: Rule, fail_when: FailWhen) -> Rule:
    judge = rule.spec.judge.model_copy(update={"fail_when": fail_when})
    spec = rule.spec.model_copy(update={"judge": judge})
    return rule.model_copy(update={"spec": spec})


# --- observations from scenario windows ----------------------------------------------------


def _cumulative(buckets: np.ndarray) -> tuple[float, ...]:
    return tuple(float(v) for v in np.cumsum(buckets))


def observation(rule: Rule, window: WindowData) -> Observation | None:
    """The observation ``core.observations.extract_observations`` would give for a window."""
    if window.requests.sum() <= 0 and rule.spec.type is not RuleType.VOLUME:
        return None
    kind = rule.spec.type
    if kind is RuleType.RATIO:
        return RatioCounts(bad=float(window.errors.sum()), total=float(window.requests.sum()))
    if kind is RuleType.HISTOGRAM:
        return BucketCounts(
            window.bounds,
            _cumulative(window.buckets.sum(axis=0)),
            steps=tuple(_cumulative(step) for step in window.buckets),
        )
    if kind is RuleType.VOLUME:
        return VolumeCount(
            float(window.requests.sum()),
            window.seconds,
            tuple((60.0 * step, float(v)) for step, v in enumerate(window.requests)),
        )
    return None


# --- ours -----------------------------------------------------------------------------------


def ours(
    alpha: float | None = None, fail_when: str | None = None, rules: RuleSet | None = None
) -> Judge:
    """Our judge with per-test ``alpha`` (None: each rule's own confidence) and every rule's
    ``failWhen`` (None: as shipped); ``rules``: other rules than the default ones."""
    rules = rules if rules is not None else default_rules(fail_when)

    def judge(scenario: Scenario) -> JudgeOutcome:
        results = tuple(judge_scenario_rule(rule, scenario, alpha) for rule in rules)
        verdict = combine_rule_results(scenario.namespace, results)
        return JudgeOutcome(verdict.verdict, tuple(r.rule for r in verdict.failing_rules()))

    return judge


def before_steps(rule: Rule) -> int:
    """The steps (minutes) of ``rule``'s before-window: its own ``beforeWindow``, else the
    10-minute ``windows.before`` the scenarios are drawn with."""
    own = rule.spec.judge.before_window
    return STEPS_PER_WINDOW if own is None else max(1, round(own.total_seconds() / STEP_SECONDS))


def longest_before(rules: RuleSet | None = None) -> int:
    """The longest before-window of ``rules`` (default: the shipped ones), in steps."""
    return max(before_steps(rule) for rule in rules or default_rules())


def judge_scenario_rule(rule: Rule, scenario: Scenario, alpha: float | None) -> RuleResult:
    """One rule of our judge on one scenario, controls included, each read over the rule's
    own before-window (as far as the scenario has minutes for it)."""
    steps = before_steps(rule)
    return judge_rule(
        RuleInput(
            rule=rule,
            namespace=scenario.namespace,
            before=observation(rule, scenario.before_for("canary", steps)),
            after=observation(rule, scenario.after),
            controls_before={
                n: o
                for n in scenario.controls_before
                if (o := observation(rule, scenario.before_for(n, steps))) is not None
            },
            controls_after={
                n: o
                for n, w in scenario.controls_after.items()
                if (o := observation(rule, w)) is not None
            },
            alpha=alpha,
        )
    )


# --- flagger-style --------------------------------------------------------------------------

FLAGGER_MIN_SUCCESS_RATE = 0.99
FLAGGER_LATENCY_MARGIN = 1.25


def healthy_dashboard_p99(scenario: Scenario) -> float:
    """The canary's healthy p99 as bucket interpolation shows it (what an operator sees)."""
    truth = scenario.canary
    probabilities = _bucket_probabilities(truth.latency_median_ms, truth.latency_sigma)
    histogram = BucketCounts(ISTIO_BUCKETS, _cumulative(probabilities * 1e6))
    return histogram_quantile(0.99, histogram) or truth.p99_ms


def flagger(scenario: Scenario) -> JudgeOutcome:
    after = scenario.after
    requests = after.requests.sum()
    failed = []
    if requests <= 0:  # "no values found for metric": a failed check
        return JudgeOutcome(Verdict.FAIL, ("request-success-rate", "request-duration"))
    if 1 - after.errors.sum() / requests < FLAGGER_MIN_SUCCESS_RATE:
        failed.append("request-success-rate")
    p99 = histogram_quantile(0.99, BucketCounts(ISTIO_BUCKETS, _cumulative(after.buckets.sum(0))))
    if p99 is None or p99 > FLAGGER_LATENCY_MARGIN * healthy_dashboard_p99(scenario):
        failed.append("request-duration")
    return JudgeOutcome(Verdict.FAIL if failed else Verdict.PASS, tuple(failed))


# --- kayenta-style --------------------------------------------------------------------------

KAYENTA_CONFIDENCE = 0.98
KAYENTA_TOLERANCE = 0.25


@lru_cache(maxsize=64)
def _wilcox_cdf(m: int, n: int) -> tuple[float, ...]:
    """CDF of the Mann-Whitney U statistic (number of pairs x > y) without ties."""
    # counts[k] for sizes (i, j) built by the classic recursion over the largest element
    table = {(0, 0): [1]}
    for i in range(m + 1):
        for j in range(n + 1):
            if (i, j) == (0, 0):
                continue
            left = table.get((i - 1, j)) if i > 0 else None  # largest is an x: +j pairs
            right = table.get((i, j - 1)) if j > 0 else None
            size = i * j + 1
            counts = [0] * size
            if left is not None:
                for k, c in enumerate(left):
                    counts[k + j] += c
            if right is not None:
                for k, c in enumerate(right):
                    counts[k] += c
            table[(i, j)] = counts
    counts = np.array(table[(m, n)], dtype=float)
    return tuple(np.cumsum(counts) / counts.sum())


def hodges_lehmann_interval(
    experiment: np.ndarray, control: np.ndarray, confidence: float
) -> tuple[float, float, float]:
    """(lower, upper, estimate) of the shift experiment − control, as R's ``wilcox.test``
    with ``conf.int=TRUE`` gives it: exact without ties for small samples, else normal."""
    m, n = len(experiment), len(control)
    diffs = np.sort(np.subtract.outer(experiment, control).ravel())
    estimate = float(np.median(diffs))
    alpha = 1 - confidence
    combined = np.concatenate((experiment, control))
    if m < 50 and n < 50 and len(np.unique(combined)) == len(combined):
        cdf = _wilcox_cdf(m, n)
        qu = next(k for k, value in enumerate(cdf) if value >= alpha / 2)
        qu = max(qu, 1)
        ql = m * n - qu
        return float(diffs[qu - 1]), float(diffs[ql]), estimate
    z = float(stats.norm.ppf(1 - alpha / 2))
    k = math.floor(m * n / 2 - z * math.sqrt(m * n * (m + n + 1) / 12))
    k = min(max(k, 0), m * n - 1)
    return float(diffs[k]), float(diffs[m * n - k - 1]), estimate


def kayenta_classify(
    control: np.ndarray, experiment: np.ndarray, direction: str, allowed: float
) -> str:
    """Pass / High / Low / Nodata for one metric, after Kayenta's MannWhitneyClassifier."""
    control = np.nan_to_num(control, nan=0.0)
    experiment = np.nan_to_num(experiment, nan=0.0)
    if len(control) == 0 or len(experiment) == 0:
        return "Nodata"
    if np.array_equal(np.sort(control), np.sort(experiment)):
        return "Pass"
    if len(np.unique(np.concatenate((control, experiment)))) == 1:
        return "Pass"
    lower, upper, estimate = hodges_lehmann_interval(experiment, control, KAYENTA_CONFIDENCE)
    critical = KAYENTA_TOLERANCE * abs(estimate)
    mean_control = float(np.mean(control))
    ratio = float(np.mean(experiment)) / mean_control if mean_control else math.inf
    if direction in ("increase", "both") and lower > critical and ratio >= 1 + allowed:
        return "High"
    if direction in ("decrease", "both") and upper < -critical and ratio <= 1 - allowed:
        return "Low"
    return "Pass"


def _step_values(rule: Rule, window: WindowData) -> np.ndarray:
    kind = rule.spec.type
    if kind is RuleType.RATIO:
        with np.errstate(invalid="ignore", divide="ignore"):
            return window.errors / window.requests
    if kind is RuleType.HISTOGRAM:
        quantile = rule.spec.judge.quantile or 0.99
        values = []
        for step in window.buckets:
            value = histogram_quantile(quantile, BucketCounts(ISTIO_BUCKETS, _cumulative(step)))
            values.append(math.nan if value is None else value)
        return np.array(values)
    return window.requests / 60.0


def kayenta(scenario: Scenario) -> JudgeOutcome:
    failed = []
    for rule in default_rules():
        judging = rule.spec.judge
        allowed = judging.allowed_change.relative or 0.0
        label = kayenta_classify(
            _step_values(rule, scenario.before),
            _step_values(rule, scenario.after),
            judging.direction.value,
            allowed,
        )
        if label in ("High", "Low"):
            failed.append(rule.name)
    return JudgeOutcome(Verdict.FAIL if failed else Verdict.PASS, tuple(failed))


# --- naive before/after ---------------------------------------------------------------------


def naive(scenario: Scenario) -> JudgeOutcome:
    failed = []
    for rule in default_rules():
        judging = rule.spec.judge
        allowed = judging.allowed_change.relative or 0.0
        before = observation(rule, scenario.before)
        after = observation(rule, scenario.after)
        if before is None or after is None:
            return JudgeOutcome(Verdict.INCONCLUSIVE)
        if isinstance(before, RatioCounts) and isinstance(after, RatioCounts):
            b, a = before.bad / before.total, after.bad / after.total
        elif isinstance(before, BucketCounts) and isinstance(after, BucketCounts):
            q = judging.quantile or 0.99
            b, a = histogram_quantile(q, before) or 0.0, histogram_quantile(q, after) or 0.0
        elif isinstance(before, VolumeCount) and isinstance(after, VolumeCount):
            b, a = before.rate, after.rate
        else:
            continue
        if judging.direction.value == "decrease":
            bad = a < b * (1 - allowed)
        else:
            bad = a > b * (1 + allowed) if b > 0 else a > 0
        if bad:
            failed.append(rule.name)
    return JudgeOutcome(Verdict.FAIL if failed else Verdict.PASS, tuple(failed))
