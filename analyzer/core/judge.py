"""The judge: one rule, one namespace, before vs after — PASS, FAIL or INCONCLUSIVE.

Pure functions over observations (see ``observations``). Principles:

- Counts, not averaged ratios: error rates by a two-proportion test on request counts,
  latency by tail counts from histogram buckets, volume as a Poisson rate.
- Controls: namespaces not yet upgraded, over the same windows, are the concurrent control;
  the canary's change is judged net of theirs (difference in differences), which cancels
  night-time drift that hits everyone.
- A FAIL needs both statistical confidence (``confidence``) and a change beyond what the
  rule allows (``allowedChange``), with or without controls; ``failWhen`` says how:
  ``estimate-beyond`` (default) — the change is significant against "no change" (net of
  controls) and its point estimate is beyond the allowance; ``beyond-allowance`` — the
  change beyond the allowance is itself significant (fewer FAILs near the allowance,
  slower, more INCONCLUSIVE). Either way significant-but-allowed (say +14 % against +20 %
  allowed) is not a regression. ``statistic.p_value`` is the test that decided (what the
  night budget spends); ``p_value_no_change`` and ``p_value_beyond_allowance`` are both
  reported.
- A PASS needs evidence that the change is within what is allowed (``passConfidence``);
  too little evidence is INCONCLUSIVE, never a pass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np
from scipy import stats

from analyzer.core.observations import (
    BucketCounts,
    Observation,
    RatioCounts,
    ValueSeries,
    VolumeCount,
)
from analyzer.core.quantiles import tail_quantile
from analyzer.core.rules import AbsentPolicy, Direction, FailWhen, Judging, Rule, RuleType
from analyzer.core.verdicts import RuleResult, Verdict

#: A rule's bad direction as scipy's one- or two-sided ``alternative``.
ALTERNATIVE = {
    Direction.INCREASE: "greater",
    Direction.DECREASE: "less",
    Direction.BOTH: "two-sided",
}

#: Tail events needed before a quantile is resolved at all (histogram rules).
MIN_TAIL_EVENTS = 20


@dataclass(frozen=True)
class RuleInput:
    """Everything the judge needs for one rule on one namespace."""

    rule: Rule
    namespace: str
    before: Observation | None
    after: Observation | None
    controls_before: Mapping[str, Observation]
    controls_after: Mapping[str, Observation]
    queries: tuple[str, ...] = ()
    alpha: float | None = None  # overrides 1 - confidence (e.g. after a multiplicity split)


def judge_rule(data: RuleInput) -> RuleResult:
    """Judge one rule on one namespace."""
    spec = data.rule.spec
    if data.before is None and data.after is None and spec.when_absent is AbsentPolicy.SKIP:
        return _result(
            data,
            Verdict.INCONCLUSIVE,
            f"no series for {data.namespace} in either window: it has none of what this rule "
            "measures (whenAbsent: skip), so the rule does not decide for it",
            applies=False,
        )
    if data.before is None or data.after is None:
        missing = [
            name for name, obs in (("before", data.before), ("after", data.after)) if obs is None
        ]
        return _result(
            data,
            Verdict.INCONCLUSIVE,
            f"no data for {data.namespace} in the {' and '.join(missing)} window "
            "(empty query result: not evidence of health)",
        )
    judge = {
        RuleType.RATIO: _judge_ratio,
        RuleType.HISTOGRAM: _judge_histogram,
        RuleType.VOLUME: _judge_volume,
        RuleType.VALUE: _judge_values,
    }[spec.type]
    return judge(data)


def error_result(
    rule: Rule, namespace: str, message: str, queries: Sequence[str] = ()
) -> RuleResult:
    """The ERROR outcome: the data source failed; never a pass, never a rollback by itself."""
    return RuleResult(
        rule=rule.name,
        namespace=namespace,
        verdict=Verdict.ERROR,
        reason=f"metrics query failed: {message}",
        critical=rule.spec.critical,
        dry_run=rule.spec.dry_run,
        queries=tuple(queries),
    )


# --- shared pieces ------------------------------------------------------------------------


def _alpha(data: RuleInput) -> float:
    return data.alpha if data.alpha is not None else 1.0 - data.rule.spec.judge.confidence


def _tolerance(judging: Judging, baseline: float) -> float:
    """The allowed change: the larger of the absolute and relative allowances given."""
    allowed = judging.allowed_change
    candidates = [allowed.absolute or 0.0]
    if allowed.relative is not None:
        candidates.append(allowed.relative * abs(baseline))
    return max(candidates)


def _signed(direction: Direction, change: float) -> float:
    """The change in the bad direction (positive = worse). ``both``: magnitude."""
    if direction is Direction.DECREASE:
        return -change
    if direction is Direction.BOTH:
        return abs(change)
    return change


def _p_value(direction: Direction, z: float) -> float:
    if direction is Direction.BOTH:
        return float(2 * stats.norm.sf(abs(z)))
    if direction is Direction.DECREASE:
        return float(stats.norm.cdf(z))
    return float(stats.norm.sf(z))


def _proportion_variance(events: float, total: float) -> float:
    smoothed = (events + 0.5) / (total + 1.0)  # keeps zero-error windows from zero variance
    return smoothed * (1 - smoothed) / max(total, 1.0)


def _result(data: RuleInput, verdict: Verdict, reason: str, **fields) -> RuleResult:
    spec = data.rule.spec
    return RuleResult(
        rule=data.rule.name,
        namespace=data.namespace,
        verdict=verdict,
        reason=reason,
        critical=spec.critical,
        dry_run=spec.dry_run,
        queries=data.queries,
        **fields,
    )


def _usable_controls(
    data: RuleInput, minimum: float, size
) -> tuple[dict[str, Observation], dict[str, Observation]]:
    """Controls with data in both windows and enough evidence in each."""
    if not data.rule.spec.judge.use_controls:
        return {}, {}
    names = [
        name
        for name in sorted(set(data.controls_before) & set(data.controls_after))
        if name != data.namespace
        and size(data.controls_before[name]) >= max(minimum, 1)
        and size(data.controls_after[name]) >= max(minimum, 1)
    ]
    return (
        {n: data.controls_before[n] for n in names},
        {n: data.controls_after[n] for n in names},
    )


def _too_little(
    data: RuleInput, before: float, after: float, needed: float, what: str
) -> RuleResult | None:
    if before >= needed and after >= needed and after > 0 and before > 0:
        return None
    return _result(
        data,
        Verdict.INCONCLUSIVE,
        f"too little evidence: {before:.0f} {what} before, {after:.0f} after "
        f"(rule needs ≥ {needed:.0f} in each window)",
        evidence={f"before_{what}": before, f"after_{what}": after, f"min_{what}": needed},
    )


#: Below this a p-value is printed as a bound: doubles cannot tell such values apart.
P_VALUE_FLOOR = 1e-300


def _p_text(p_value: float) -> str:
    """``p=0.0031`` for a reason text; ``p<1e-300`` where the value underflowed to 0."""
    return f"p<{P_VALUE_FLOOR:.0e}" if p_value < P_VALUE_FLOOR else f"p={p_value:.2g}"


def _fmt(value: float | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "ratio":
        return f"{value * 100:.2f}%"
    if unit == "pp":
        return f"{value * 100:+.2f} pp"
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "rps":
        return f"{value:.2f} rps"
    return f"{value:.4g}{(' ' + unit) if unit else ''}"


# --- ratio: errors / requests ---------------------------------------------------------------


def _log_rate_variance(events: float) -> float:
    return 1.0 / (events + 0.5)


#: Above this many errors (both windows together) the conditional test is used: it is then
#: as powerful as the unconditional one and cheaper.
UNCONDITIONAL_TEST_MAX_EVENTS = 500


@dataclass(frozen=True)
class NullDrift:
    """What "nothing changed but the night" predicts for the after window's error rate:
    ``scale × rate_before + shift`` (proportional drift: shift 0; additive: scale 1)."""

    scale: float = 1.0
    shift: float = 0.0


def _null_rates(k0, k1, n0: float, n1: float, null: NullDrift):
    """Error rates per request (before, after) that best explain counts ``k0``, ``k1`` under
    the null, floored at half an error per window so a quiet window keeps some variance."""
    before = np.maximum((k0 + k1 - n1 * null.shift) / (n0 + n1 * null.scale), 0.5 / n0)
    after = np.maximum(null.scale * before + null.shift, 0.5 / n1)
    return before, after


def _score_z(k0, k1, n0: float, n1: float, null: NullDrift):
    """Score statistic for the after window's error rate beyond the null's prediction, with
    Poisson variances at the null's rates. Works on numbers and on numpy grids."""
    before, after = _null_rates(k0, k1, n0, n1, null)
    standard_error = np.sqrt(null.scale**2 * before / n0 + after / n1)
    return (k1 / n1 - null.scale * k0 / n0 - null.shift) / standard_error


def _tail(direction: Direction, z, observed: float):
    tolerance = 1e-9
    if direction is Direction.INCREASE:
        return z >= observed - tolerance
    if direction is Direction.DECREASE:
        return z <= observed + tolerance
    return np.abs(z) >= abs(observed) - tolerance


def _unconditional_p_value(
    direction: Direction, e0: int, e1: int, n0: float, n1: float, null: NullDrift
) -> float:
    """Krishnamoorthy and Thomson's E test: the chance, at the null's best-fitting error
    rates, of error counts whose score statistic is at least as extreme as the observed one.
    Its size stays close to alpha at any count, where the conditional test's falls far
    below it (at 0.5 rps it calls a rise at 7 errors after and none before; this test at 5,
    a z test at 6)."""
    observed = float(_score_z(e0, e1, n0, n1, null))
    grids = []
    for rate, exposure in zip(_null_rates(e0, e1, n0, n1, null), (n0, n1), strict=True):
        mean = float(rate) * exposure
        values = np.arange(int(stats.poisson.isf(1e-12, mean)) + 2)
        grids.append((values, stats.poisson.pmf(values, mean)))
    (k0, w0), (k1, w1) = grids
    extreme = _tail(direction, _score_z(k0[:, None], k1[None, :], n0, n1, null), observed)
    return float(min(w0 @ extreme @ w1, 1.0))


def _ratio_p_value(
    direction: Direction, before: RatioCounts, after: RatioCounts, null: NullDrift
) -> tuple[float, str]:
    """P-value for "the error rate moved beyond what the null predicts", on error counts.
    Few errors: the unconditional E test. Many errors and proportional drift: the
    conditional test — given ``bad_before + bad_after`` errors, the after window's share is
    binomial with ``π = n1·r / (n0 + n1·r)``. Many errors and additive drift: the score
    test, whose normal approximation is good there."""
    e0, e1 = round(before.bad), round(after.bad)
    events = e0 + e1
    if events == 0 and null.shift <= 0:
        return 1.0, "no errors in either window"
    if events <= UNCONDITIONAL_TEST_MAX_EVENTS:
        return (
            _unconditional_p_value(direction, e0, e1, before.total, after.total, null),
            "unconditional E test on error counts",
        )
    if null.shift:
        z = float(_score_z(e0, e1, before.total, after.total, null))
        return _p_value(direction, z), "score test on error counts"
    share = after.total * null.scale / (before.total + after.total * null.scale)
    return (
        float(stats.binomtest(e1, events, share, alternative=ALTERNATIVE[direction]).pvalue),
        "conditional binomial test on error counts",
    )


def _ratio_p_beyond(
    direction: Direction,
    before: RatioCounts,
    after: RatioCounts,
    null: NullDrift,
    tolerance: float,
) -> tuple[float, str]:
    """P-value for "the error rate moved by no more than the allowance beyond what the
    null predicts": the same tests as ``_ratio_p_value``, with the null's after rate moved
    by the allowance in the bad direction (both sides for ``both``). Small only when a
    change beyond the allowance is certain."""
    if direction is Direction.BOTH:
        up, test = _ratio_p_value(
            Direction.INCREASE, before, after, replace(null, shift=null.shift + tolerance)
        )
        down, _ = _ratio_p_value(
            Direction.DECREASE, before, after, replace(null, shift=null.shift - tolerance)
        )
        return min(2 * min(up, down), 1.0), test + " beyond the allowance"
    shift = tolerance if direction is Direction.INCREASE else -tolerance
    p_value, test = _ratio_p_value(
        direction, before, after, replace(null, shift=null.shift + shift)
    )
    return p_value, test + " beyond the allowance"


def _with_control_noise(p_value: float, direction: Direction, own: float, control: float) -> float:
    """Widen a p-value for the controls' own noise (variances on the log-rate scale)."""
    if control <= 0 or p_value >= 1.0:
        return p_value
    shrink = math.sqrt(own / (own + control))
    if direction is Direction.BOTH:
        return float(2 * stats.norm.sf(stats.norm.isf(p_value / 2) * shrink))
    return float(stats.norm.sf(stats.norm.isf(p_value) * shrink))


class DriftModel(StrEnum):
    """How night-time drift moves error rates: in proportion (load, shared dependencies) or
    by the same number of percentage points everywhere (a failing shared backend)."""

    PROPORTIONAL = "proportional"
    ADDITIVE = "additive"


def _pooled(observations: Mapping[str, Observation]) -> RatioCounts:
    return RatioCounts(
        sum(o.bad for o in observations.values()), sum(o.total for o in observations.values())
    )


def _drift_fit(
    model: DriftModel,
    controls_before: Mapping[str, Observation],
    controls_after: Mapping[str, Observation],
) -> float:
    """How badly ``model`` explains the controls' own changes: the evidence-weighted sum of
    squared standardised residuals when each control is predicted from the pooled drift."""
    cb, ca = _pooled(controls_before), _pooled(controls_after)
    ratio = ((ca.bad + 0.5) / ca.total) / ((cb.bad + 0.5) / cb.total)
    offset = ca.bad / ca.total - cb.bad / cb.total
    misfit = 0.0
    for name, before in controls_before.items():
        after = controls_after[name]
        q0, q1 = before.bad / before.total, after.bad / after.total
        predicted = q0 * ratio if model is DriftModel.PROPORTIONAL else q0 + offset
        variance = _proportion_variance(after.bad, after.total) + _proportion_variance(
            before.bad, before.total
        )
        misfit += (q1 - predicted) ** 2 / variance
    return misfit


def _judge_ratio(data: RuleInput) -> RuleResult:
    """Error rate on counts. With two or more controls the drift model (proportional or
    additive) that explains the controls better is used; with one control both are tried
    and must agree for a PASS or a FAIL (disagreement is INCONCLUSIVE)."""
    judging = data.rule.spec.judge
    needed = judging.min_evidence.requests
    controls_before, controls_after = _usable_controls(data, needed, lambda o: o.total)
    if len(controls_before) >= 2:
        model = min(DriftModel, key=lambda m: _drift_fit(m, controls_before, controls_after))
        return _judge_ratio_with(data, controls_before, controls_after, model)
    proportional = _judge_ratio_with(data, controls_before, controls_after, DriftModel.PROPORTIONAL)
    if not controls_before:
        return proportional
    additive = _judge_ratio_with(data, controls_before, controls_after, DriftModel.ADDITIVE)
    if proportional.verdict is additive.verdict:
        return proportional
    if Verdict.INCONCLUSIVE in (proportional.verdict, additive.verdict):
        return proportional if proportional.verdict is Verdict.INCONCLUSIVE else additive
    return replace(
        proportional,
        verdict=Verdict.INCONCLUSIVE,
        reason=(
            "one control cannot tell how the drift moves error rates: if in proportion, "
            f"{proportional.verdict.value} ({proportional.reason}); if by the same points, "
            f"{additive.verdict.value} ({additive.reason})"
        ),
    )


def _judge_ratio_with(
    data: RuleInput,
    controls_before: Mapping[str, Observation],
    controls_after: Mapping[str, Observation],
    model: DriftModel,
) -> RuleResult:
    judging = data.rule.spec.judge
    before, after = data.before, data.after
    assert isinstance(before, RatioCounts) and isinstance(after, RatioCounts)
    needed = judging.min_evidence.requests
    if before.total <= 0 or after.total <= 0:
        return _too_little(data, before.total, after.total, max(needed, 1), "requests")  # type: ignore[return-value]
    p0, p1 = before.bad / before.total, after.bad / after.total
    control_info = None
    drift, drift_variance = 1.0, 0.0
    offset, offset_variance = 0.0, 0.0
    if controls_before:
        cb, ca = _pooled(controls_before), _pooled(controls_after)
        drift = ((ca.bad + 0.5) / ca.total) / ((cb.bad + 0.5) / cb.total)
        drift_variance = _log_rate_variance(cb.bad) + _log_rate_variance(ca.bad)
        offset = ca.bad / ca.total - cb.bad / cb.total
        offset_variance = _proportion_variance(cb.bad, cb.total) + _proportion_variance(
            ca.bad, ca.total
        )
        control_info = {
            "namespaces": sorted(controls_before),
            "before": cb.bad / cb.total,
            "after": ca.bad / ca.total,
            "change": offset,
            "ratio": drift,
            "drift_model": model.value,
            "requests_before": cb.total,
            "requests_after": ca.total,
        }
    own_variance = _proportion_variance(after.bad, after.total)
    if model is DriftModel.PROPORTIONAL:
        expected_after = p0 * drift
        variance = (
            own_variance
            + drift**2 * _proportion_variance(before.bad, before.total)
            + expected_after**2 * drift_variance
        )
        null, control_variance = NullDrift(scale=drift), drift_variance
        own_scale_variance = _log_rate_variance(before.bad) + _log_rate_variance(after.bad)
    else:
        expected_after = p0 + offset
        variance = own_variance + _proportion_variance(before.bad, before.total) + offset_variance
        null, control_variance = NullDrift(shift=offset), offset_variance
        own_scale_variance = variance - offset_variance
    tolerance = _tolerance(judging, p0)
    raw_p_value, test = _ratio_p_beyond(judging.direction, before, after, null, tolerance)
    p_value = _with_control_noise(
        raw_p_value,
        judging.direction,
        own_scale_variance,
        control_variance,
    )
    raw_no_change, _ = _ratio_p_value(judging.direction, before, after, null)
    p_no_change = _with_control_noise(
        raw_no_change, judging.direction, own_scale_variance, control_variance
    )
    change = p1 - expected_after
    evidence = {
        "before_requests": before.total,
        "after_requests": after.total,
        "before_bad": before.bad,
        "after_bad": after.bad,
        "min_requests": needed,
    }
    if control_info:
        test += f", drift-adjusted by controls ({model.value})"
    result = _decide(
        data,
        before_value=p0,
        after_value=p1,
        change=change,
        standard_error=math.sqrt(variance),
        tolerance=tolerance,
        unit_value="ratio",
        unit_change="pp",
        control_info=control_info,
        evidence=evidence,
        test=test,
        ceiling_check=lambda: _ratio_beyond_limit(judging, after, _alpha(data)),
        p_value=p_value,
        p_value_no_change=p_no_change,
    )
    # the error at the edge of the allowance (the FAIL test's null), for anytime looks: a
    # score statistic, which a high observed error rate does not slow down
    edge = expected_after + (-tolerance if judging.direction is Direction.DECREASE else tolerance)
    at_edge = variance
    if 0 < edge < 1 and _signed(judging.direction, p1 - edge) > 0:
        at_edge = variance - own_variance + edge * (1 - edge) / max(after.total, 1.0)
    result = replace(
        result,
        statistic={**result.statistic, "estimate_standard_error_at_allowance": math.sqrt(at_edge)},
    )
    return _short_of_evidence(data, result, before.total, after.total, needed)


def _short_of_evidence(
    data: RuleInput, result: RuleResult, before: float, after: float, needed: float
) -> RuleResult:
    """Below the rule's minimum evidence a result is never PASS: a regression shown by an
    exact test still FAILs; anything else is INCONCLUSIVE."""
    if (before >= needed and after >= needed) or result.verdict is Verdict.FAIL:
        return result
    reason = (
        f"too little evidence: {before:.0f} requests before, {after:.0f} after "
        f"(rule needs ≥ {needed:.0f} in each window); {result.reason}"
    )
    return replace(result, verdict=Verdict.INCONCLUSIVE, reason=reason)


def _ratio_beyond_limit(judging: Judging, after: RatioCounts, alpha: float) -> str | None:
    bad, total = round(after.bad), max(round(after.total), 1)
    bad = min(bad, total)
    if judging.ceiling is not None:
        p = stats.binomtest(bad, total, judging.ceiling, alternative="greater").pvalue
        if p < alpha:
            return f"after value {_fmt(after.bad / after.total, 'ratio')} is above the ceiling {_fmt(judging.ceiling, 'ratio')} ({_p_text(p)})"
    if judging.floor is not None:
        p = stats.binomtest(bad, total, judging.floor, alternative="less").pvalue
        if p < alpha:
            return f"after value {_fmt(after.bad / after.total, 'ratio')} is below the floor {_fmt(judging.floor, 'ratio')} ({_p_text(p)})"
    return None


def _decide(
    data: RuleInput,
    *,
    before_value: float,
    after_value: float,
    change: float,
    standard_error: float,
    tolerance: float,
    unit_value: str,
    unit_change: str,
    control_info: dict | None,
    evidence: dict,
    test: str,
    ceiling_check,
    p_value: float | None = None,
    p_value_no_change: float | None = None,
) -> RuleResult:
    """Shared decision for tests that give a change and its standard error.

    One confidence bound and one test split the outcomes: PASS when the worst plausible
    change (``passConfidence``) is within the allowance; FAIL per ``failWhen`` at alpha
    (``_fails``) — ``p_value`` is the test of "the change is within the allowance" and
    ``p_value_no_change`` the test of no change, each given by the caller or from the normal
    approximation; else INCONCLUSIVE. A significant change within what the rule allows is
    never a regression."""
    judging = data.rule.spec.judge
    alpha = _alpha(data)
    worse = _signed(judging.direction, change)
    z = change / standard_error if standard_error > 0 else (math.inf if change else 0.0)
    if p_value is None:
        p_value = _p_beyond(judging.direction, change, tolerance, standard_error)
    if p_value_no_change is None:
        p_value_no_change = _p_value(judging.direction, z)
    p_beyond_allowance = p_value
    failing, p_value = _fails(judging, alpha, worse, tolerance, p_value_no_change, p_value)
    z_pass = float(stats.norm.ppf(judging.pass_confidence))
    worst_plausible = worse + z_pass * standard_error
    statistic = {
        "test": test,
        "z": z,
        "p_value": p_value,
        "p_value_no_change": p_value_no_change,
        "p_value_beyond_allowance": p_beyond_allowance,
        "fail_when": judging.fail_when.value,
        "alpha": alpha,
        "change": change,
        "standard_error": standard_error,
        "worst_plausible_change": worst_plausible,
        "least_certain_change": worse - float(stats.norm.isf(alpha)) * standard_error,
        # the judged change, its standard error and the allowance on one scale: what an
        # anytime-valid look (``core.sequential``) needs
        "estimate": change,
        "estimate_standard_error": standard_error,
        "estimate_allowance": tolerance,
    }
    threshold = {
        "allowed_change": tolerance,
        "allowed_absolute": judging.allowed_change.absolute,
        "allowed_relative": judging.allowed_change.relative,
        "direction": judging.direction.value,
        "ceiling": judging.ceiling,
        "floor": judging.floor,
        "confidence": judging.confidence,
        "pass_confidence": judging.pass_confidence,
    }
    net = " net of controls" if control_info else ""
    described = (
        f"{_fmt(before_value, unit_value)} → {_fmt(after_value, unit_value)} "
        f"(change{net} {_fmt(change, unit_change)}, allowed {_fmt(tolerance, unit_change).lstrip('+')}"
        f", {_p_text(p_value)}{_p_what(judging)})"
    )
    fields = {
        "before": before_value,
        "after": after_value,
        "controls": control_info,
        "evidence": evidence,
        "threshold": threshold,
        "statistic": statistic,
    }
    beyond = ceiling_check()
    if beyond:
        return _result(data, Verdict.FAIL, beyond, **fields)
    plausible = _fmt(
        worst_plausible if judging.direction is not Direction.DECREASE else -worst_plausible,
        unit_change,
    )
    if worst_plausible <= tolerance:
        return _result(data, Verdict.PASS, f"within allowed change: {described}", **fields)
    if failing:
        return _result(
            data,
            Verdict.FAIL,
            f"regression: {described}; up to {plausible} is plausible at "
            f"{judging.pass_confidence:.0%}",
            **fields,
        )
    return _result(
        data,
        Verdict.INCONCLUSIVE,
        f"cannot rule out a regression: {described}; up to {plausible} "
        f"is plausible at {judging.pass_confidence:.0%}",
        **fields,
    )


# --- histogram: latency quantile --------------------------------------------------------------


def _control_quantile_drift(
    data: RuleInput, quantile: float, needed: float
) -> tuple[float, float, dict | None]:
    """The controls' change of the quantile on the log scale (inverse-variance weighted over
    controls with enough tail requests) and its variance."""
    controls_before, controls_after = _usable_controls(data, needed, lambda o: o.total)
    weights, values, used = [], [], []
    for name in controls_before:
        cb = tail_quantile(quantile, controls_before[name])  # type: ignore[arg-type]
        ca = tail_quantile(quantile, controls_after[name])  # type: ignore[arg-type]
        if cb is None or ca is None or min(cb.tail_requests, ca.tail_requests) < MIN_TAIL_EVENTS:
            continue
        variance = cb.log_standard_error**2 + ca.log_standard_error**2
        weights.append(1 / variance)
        values.append(math.log(ca.value / cb.value))
        used.append(name)
    if not weights:
        return 0.0, 0.0, None
    total = sum(weights)
    drift = sum(w * v for w, v in zip(weights, values, strict=True)) / total
    info = {
        "namespaces": used,
        "quantile_change_relative": math.exp(drift) - 1,
        "log_change": drift,
        "log_standard_error": math.sqrt(1 / total),
    }
    return drift, 1 / total, info


def _judge_histogram(data: RuleInput) -> RuleResult:
    judging = data.rule.spec.judge
    quantile = judging.quantile or 0.99
    before, after = data.before, data.after
    assert isinstance(before, BucketCounts) and isinstance(after, BucketCounts)
    needed = judging.min_evidence.requests
    name = f"p{quantile * 100:g}"
    if (short := _too_little(data, before.total, after.total, needed, "requests")) is not None:
        return short
    q0, q1 = tail_quantile(quantile, before), tail_quantile(quantile, after)
    evidence: dict = {"before_requests": before.total, "after_requests": after.total}
    if q0 is None or q1 is None:
        return _result(
            data,
            Verdict.INCONCLUSIVE,
            f"{name} lies beyond the highest finite bucket; buckets cannot resolve it",
            before=q0.value if q0 else None,
            after=q1.value if q1 else None,
            evidence=evidence,
        )
    evidence.update({"before_quantile": q0.to_dict(), "after_quantile": q1.to_dict()})
    tail_events = min(q0.tail_requests, q1.tail_requests)
    if tail_events < MIN_TAIL_EVENTS:
        return _result(
            data,
            Verdict.INCONCLUSIVE,
            f"too little evidence for {name}: ~{tail_events:.0f} requests in the tail "
            f"(needs ≥ {MIN_TAIL_EVENTS})",
            before=q0.value,
            after=q1.value,
            evidence=evidence,
        )
    drift, drift_variance, control_info = _control_quantile_drift(data, quantile, needed)
    log_change = math.log(q1.value / q0.value) - drift
    standard_error = math.sqrt(q0.log_standard_error**2 + q1.log_standard_error**2 + drift_variance)
    direction = judging.direction
    alpha = _alpha(data)
    z = log_change / standard_error if standard_error > 0 else 0.0
    p_no_change = _p_value(direction, z)
    z_pass = float(stats.norm.ppf(judging.pass_confidence))
    worse_log = _signed(direction, log_change)
    worst_log = worse_log + z_pass * standard_error
    expected = q0.value * math.exp(drift)
    relative_change = math.exp(log_change) - 1
    absolute_change = q1.value - expected
    tolerance_relative = judging.allowed_change.relative
    tolerance_absolute = judging.allowed_change.absolute
    log_allowance = _log_allowance(judging, expected)
    # the change beyond the allowance, tested: FAIL needs THAT to be significant
    p_beyond_allowance = _p_beyond(direction, log_change, log_allowance, standard_error)
    failing, p_value = _fails(
        judging, alpha, worse_log, log_allowance, p_no_change, p_beyond_allowance
    )

    net = " net of controls" if control_info else ""
    allowed = []
    if tolerance_relative is not None:
        allowed.append(f"{tolerance_relative:+.0%}")
    if tolerance_absolute is not None:
        allowed.append(f"+{tolerance_absolute:g} ms")
    described = (
        f"{name} {_fmt(q0.value, 'ms')} → {_fmt(q1.value, 'ms')} ({relative_change:+.1%}{net}; "
        f"allowed {' and '.join(allowed) or 'none'}; {_p_text(p_value)}{_p_what(judging)})"
    )
    plausible = math.exp(worst_log if direction is not Direction.DECREASE else -worst_log) - 1
    least_log = worse_log - float(stats.norm.isf(alpha)) * standard_error
    fields = {
        "before": q0.value,
        "after": q1.value,
        "controls": control_info,
        "evidence": evidence,
        "threshold": {
            "quantile": quantile,
            "allowed_relative": tolerance_relative,
            "allowed_absolute": tolerance_absolute,
            "allowed_log_change": log_allowance,
            "ceiling": judging.ceiling,
            "direction": direction.value,
            "confidence": judging.confidence,
            "pass_confidence": judging.pass_confidence,
        },
        "statistic": {
            "test": f"z test on log {name} beyond the allowance (power-law tail per bucket, "
            "error from tail counts and their minute-to-minute dispersion)" + net,
            "z": z,
            "p_value": p_value,
            "p_value_no_change": p_no_change,
            "p_value_beyond_allowance": p_beyond_allowance,
            "fail_when": judging.fail_when.value,
            "alpha": alpha,
            "relative_change": relative_change,
            "absolute_change_ms": absolute_change,
            "standard_error_log": standard_error,
            "worst_plausible_relative_change": plausible,
            "least_certain_relative_change": math.exp(
                least_log if direction is not Direction.DECREASE else -least_log
            )
            - 1,
            "estimate": log_change,
            "estimate_standard_error": standard_error,
            "estimate_allowance": log_allowance,
        },
    }
    if judging.ceiling is not None and q1.value > judging.ceiling:
        return _result(
            data,
            Verdict.FAIL,
            f"{name} {_fmt(q1.value, 'ms')} is above the ceiling {judging.ceiling:g} ms",
            **fields,
        )
    if worst_log <= log_allowance:
        return _result(data, Verdict.PASS, f"within allowed change: {described}", **fields)
    if failing:
        return _result(
            data,
            Verdict.FAIL,
            f"regression: {described}; at least "
            f"{fields['statistic']['least_certain_relative_change']:+.0%} at "
            f"{1 - alpha:.4g} confidence",
            **fields,
        )
    return _result(
        data,
        Verdict.INCONCLUSIVE,
        f"cannot rule out a regression: {described}; up to {plausible:+.0%} is plausible at "
        f"{judging.pass_confidence:.0%}",
        **fields,
    )


def _log_allowance(judging: Judging, expected: float) -> float:
    """The allowance on the log scale of a quantile whose expected value is ``expected``:
    a change is beyond it only when it exceeds every allowance given (relative and
    absolute), so the boundary is the larger of the two."""
    allowed = judging.allowed_change
    bounds = [0.0]
    if allowed.relative is not None:
        bounds.append(
            -math.log(1 - min(allowed.relative, 0.999999))
            if judging.direction is Direction.DECREASE
            else math.log1p(allowed.relative)
        )
    if allowed.absolute is not None and expected > 0:
        bounds.append(
            -math.log(max(1 - allowed.absolute / expected, 1e-6))
            if judging.direction is Direction.DECREASE
            else math.log1p(allowed.absolute / expected)
        )
    return max(bounds)


def _fails(
    judging: Judging,
    alpha: float,
    worse: float,
    allowance: float,
    p_no_change: float,
    p_beyond_allowance: float,
) -> tuple[bool, float]:
    """Whether the statistics call a FAIL under the rule's ``failWhen``, and the p-value
    that decided (the one the night budget spends). ``worse``: the change's point estimate
    in the bad direction, on ``allowance``'s scale."""
    if judging.fail_when is FailWhen.BEYOND_ALLOWANCE:
        return p_beyond_allowance < alpha, p_beyond_allowance
    return p_no_change < alpha and worse > allowance, p_no_change


def _p_what(judging: Judging) -> str:
    """What the reported p-value tests, for reasons."""
    if judging.fail_when is FailWhen.BEYOND_ALLOWANCE:
        return " beyond it"
    return " against no change"


def _p_beyond(
    direction: Direction, change: float, allowance: float, standard_error: float
) -> float:
    """P-value for "the change is within the allowance" (normal, on ``change``'s scale):
    small only when a change beyond the allowance is certain. ``both``: either side."""
    if standard_error <= 0:
        return 0.0 if _signed(direction, change) > allowance else 1.0
    if direction is Direction.BOTH:
        up = stats.norm.sf((change - allowance) / standard_error)
        down = stats.norm.cdf((change + allowance) / standard_error)
        return float(min(2 * min(up, down), 1.0))
    return float(stats.norm.sf((_signed(direction, change) - allowance) / standard_error))


# --- volume: request rate ------------------------------------------------------------------------


def _judge_volume(data: RuleInput) -> RuleResult:
    judging = data.rule.spec.judge
    before, after = data.before, data.after
    assert isinstance(before, VolumeCount) and isinstance(after, VolumeCount)
    needed = judging.min_evidence.requests
    if before.count < max(needed, 1):
        return _result(
            data,
            Verdict.INCONCLUSIVE,
            f"too little evidence: {before.count:.0f} requests before (rule needs ≥ {needed})",
            evidence={"before_requests": before.count, "after_requests": after.count},
        )
    # log rate ratio, net of controls; Poisson variance 1/count per term
    log_change = math.log((after.count + 0.5) / after.seconds) - math.log(
        (before.count + 0.5) / before.seconds
    )
    variance = count_dispersion(before.points) / (before.count + 0.5)
    drift = 0.0
    controls_before, controls_after = _usable_controls(data, needed, lambda o: o.count)
    control_info = None
    if controls_before:
        c0 = sum(o.count for o in controls_before.values())
        c1 = sum(o.count for o in controls_after.values())
        drift = math.log((c1 + 0.5) / after.seconds) - math.log((c0 + 0.5) / before.seconds)
        log_change -= drift
        variance += count_dispersion(_summed_points(controls_before)) / (c0 + 0.5)
        variance += count_dispersion(_summed_points(controls_after)) / (c1 + 0.5)
        control_info = {
            "namespaces": sorted(controls_before),
            "rate_before": c0 / before.seconds,
            "rate_after": c1 / after.seconds,
            "change_relative": math.exp(drift) - 1,
        }
    # the after count's variance at the edge of what is allowed when fewer requests came
    # than that edge expects (a score test): traffic vanishing must not hide behind the
    # variance of its own near-zero count
    allowed_share = 1 - min(judging.allowed_change.relative or 0.0, 0.999999)
    edge = before.count / before.seconds * after.seconds * math.exp(drift) * allowed_share
    counted = after.count
    if judging.direction is not Direction.INCREASE and after.count < edge:
        counted = edge
    variance += count_dispersion(after.points) / (counted + 0.5)
    relative_change = math.exp(log_change) - 1
    fields_evidence = {"before_requests": before.count, "after_requests": after.count}
    # Judge on the log scale; allowances are translated to it.
    tolerance = judging.allowed_change.relative
    log_tolerance = (
        (
            -math.log(1 - min(tolerance, 0.999999))
            if judging.direction is Direction.DECREASE
            else math.log(1 + tolerance)
        )
        if tolerance is not None
        else 0.0
    )
    result = _decide(
        data,
        before_value=before.rate,
        after_value=after.rate,
        change=log_change,
        standard_error=math.sqrt(variance),
        tolerance=log_tolerance,
        unit_value="rps",
        unit_change="log",
        control_info=control_info,
        evidence=fields_evidence,
        test="Poisson rate ratio (log scale)" + (", net of controls" if control_info else ""),
        ceiling_check=lambda: _volume_beyond_limit(judging, after),
    )
    net = " net of controls" if control_info else ""
    described = (
        f"request rate {_fmt(before.rate, 'rps')} → {_fmt(after.rate, 'rps')} "
        f"({relative_change:+.1%}{net}; allowed {'-' if judging.direction is Direction.DECREASE else '+'}"
        f"{(tolerance or 0):.0%}, {_p_text(result.statistic.get('p_value', float('nan')))}"
        f"{_p_what(judging)})"
    )
    prefix = {
        Verdict.FAIL: "regression: ",
        Verdict.PASS: "within allowed change: ",
        Verdict.INCONCLUSIVE: "cannot rule out a regression: ",
    }[result.verdict]
    if result.verdict is Verdict.FAIL and result.reason.startswith(("after value", "request rate")):
        return result
    statistic = dict(result.statistic, relative_change=relative_change)
    return RuleResult(**{**result.__dict__, "reason": prefix + described, "statistic": statistic})


#: Fewest steps from which a count's dispersion is estimated (a line is fitted through them).
MIN_DISPERSION_STEPS = 4


def count_dispersion(points: Sequence[tuple[float, float]]) -> float:
    """How much more a window's per-step counts vary than Poisson counts would, around a
    straight line through them (a trend is the night's, not noise): Pearson's χ² over its
    degrees of freedom, at least 1. Real traffic is burstier than Poisson; a Poisson
    variance alone made the volume rule's test of no change reject about one healthy
    restart in five."""
    if len(points) < MIN_DISPERSION_STEPS:
        return 1.0
    times = np.array([t for t, _ in points], dtype=float)
    counts = np.array([v for _, v in points], dtype=float)
    if counts.sum() <= 0 or np.ptp(times) <= 0:
        return 1.0
    slope, intercept = np.polyfit(times - times.mean(), counts, 1)
    fitted = np.maximum(intercept + slope * (times - times.mean()), 0.5)
    statistic = float(np.sum((counts - fitted) ** 2 / fitted))
    return max(1.0, statistic / (len(points) - 2))


def _summed_points(observations: Mapping[str, Observation]) -> tuple[tuple[float, float], ...]:
    """Per-step counts summed over namespaces (steps every namespace has)."""
    by_time: dict[float, float] = {}
    seen: dict[float, int] = {}
    for observation in observations.values():
        for t, v in observation.points:
            by_time[t] = by_time.get(t, 0.0) + v
            seen[t] = seen.get(t, 0) + 1
    return tuple((t, v) for t, v in sorted(by_time.items()) if seen[t] == len(observations))


def _volume_beyond_limit(judging: Judging, after: VolumeCount) -> str | None:
    if judging.floor is not None and after.rate < judging.floor:
        return f"request rate {_fmt(after.rate, 'rps')} is below the floor {judging.floor:g} rps"
    if judging.ceiling is not None and after.rate > judging.ceiling:
        return (
            f"request rate {_fmt(after.rate, 'rps')} is above the ceiling {judging.ceiling:g} rps"
        )
    return None


# --- value: any series, rank test ------------------------------------------------------------------


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _judge_values(data: RuleInput) -> RuleResult:
    judging = data.rule.spec.judge
    before, after = data.before, data.after
    assert isinstance(before, ValueSeries) and isinstance(after, ValueSeries)
    needed = max(judging.min_evidence.points, 3)
    if (
        short := _too_little(data, len(before.values), len(after.values), needed, "points")
    ) is not None:
        return short
    shift = 0.0
    controls_before, controls_after = _usable_controls(data, needed, lambda o: len(o.values))
    control_info = None
    if controls_before:
        changes = [
            _median(controls_after[n].values) - _median(controls_before[n].values)
            for n in controls_before
        ]
        shift = _median(changes)
        control_info = {"namespaces": sorted(controls_before), "median_change": shift}
    adjusted_after = [v - shift for v in after.values]
    m0, m1 = _median(before.values), _median(after.values)
    change = _median(adjusted_after) - m0
    alternative = ALTERNATIVE[judging.direction]
    if len(set(before.values) | set(adjusted_after)) == 1:
        p_value, u_statistic = 1.0, float("nan")
    else:
        test = stats.mannwhitneyu(adjusted_after, before.values, alternative=alternative)
        p_value, u_statistic = float(test.pvalue), float(test.statistic)
    tolerance = _tolerance(judging, m0)
    worse = _signed(judging.direction, change)
    alpha = _alpha(data)
    unit = data.rule.spec.unit
    net = " net of controls" if control_info else ""
    described = (
        f"median {_fmt(m0, unit)} → {_fmt(m1, unit)} (change{net} {change:+.4g}, allowed "
        f"{tolerance:.4g}, Mann-Whitney {_p_text(p_value)})"
    )
    fields = {
        "before": m0,
        "after": m1,
        "controls": control_info,
        "evidence": {"before_points": len(before.values), "after_points": len(after.values)},
        "threshold": {
            "allowed_change": tolerance,
            "ceiling": judging.ceiling,
            "floor": judging.floor,
            "direction": judging.direction.value,
            "confidence": judging.confidence,
        },
        "statistic": {
            "test": "Mann-Whitney U" + net,
            "u": u_statistic,
            "p_value": p_value,
            "alpha": alpha,
            "change": change,
        },
    }
    if judging.ceiling is not None and m1 > judging.ceiling:
        return _result(
            data,
            Verdict.FAIL,
            f"median {_fmt(m1, unit)} is above the ceiling {judging.ceiling:g}",
            **fields,
        )
    if judging.floor is not None and m1 < judging.floor:
        return _result(
            data,
            Verdict.FAIL,
            f"median {_fmt(m1, unit)} is below the floor {judging.floor:g}",
            **fields,
        )
    if p_value < alpha and worse > tolerance:
        return _result(data, Verdict.FAIL, f"regression: {described}", **fields)
    if worse > tolerance:
        return _result(
            data,
            Verdict.INCONCLUSIVE,
            f"change beyond allowance but not significant: {described}",
            **fields,
        )
    return _result(data, Verdict.PASS, f"within allowed change: {described}", **fields)
