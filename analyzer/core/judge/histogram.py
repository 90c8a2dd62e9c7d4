"""Histogram rules (latency quantiles): tail counts from histogram buckets, the quantile's
change on the log scale, net of the control namespaces' change.
"""

from __future__ import annotations

import math

from scipy import stats

from analyzer.core.judge.common import (
    RuleInput,
    _alpha,
    _fails,
    _fmt,
    _p_beyond,
    _p_text,
    _p_value,
    _p_what,
    _result,
    _signed,
    _too_little,
    _usable_controls,
)
from analyzer.core.observations import (
    BucketCounts,
)
from analyzer.core.quantiles import tail_quantile
from analyzer.core.rules import Direction, Judging
from analyzer.core.verdicts import RuleResult, Verdict

#: Tail events needed before a quantile is resolved at all (histogram rules).
MIN_TAIL_EVENTS = 20


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
