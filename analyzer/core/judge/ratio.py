"""Ratio rules (errors / requests): counts, not averaged ratios — a two-proportion test on
error counts, net of the control namespaces' drift (proportional or additive).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

import numpy as np
from scipy import stats

from analyzer.core.judge.common import (
    ALTERNATIVE,
    RuleInput,
    _alpha,
    _decide,
    _fmt,
    _p_text,
    _p_value,
    _proportion_variance,
    _signed,
    _tolerance,
    _too_little,
    _usable_controls,
)
from analyzer.core.observations import (
    Observation,
    RatioCounts,
)
from analyzer.core.rules import Direction, Judging
from analyzer.core.verdicts import RuleResult, Verdict


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
