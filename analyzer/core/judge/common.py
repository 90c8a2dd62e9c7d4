"""What every rule type's judge shares: the input, the ERROR outcome, allowances, signs,
p-values, the minimum-evidence check and the one decision (PASS, FAIL or INCONCLUSIVE) for
tests that give a change and its standard error. See the package docstring for the
principles.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scipy import stats

from analyzer.core.formatting import Style, format_value, p_value_text
from analyzer.core.observations import (
    Observation,
)
from analyzer.core.rules import Direction, FailWhen, Judging, Rule
from analyzer.core.verdicts import RuleResult, Verdict

#: A rule's bad direction as scipy's one- or two-sided ``alternative``.
ALTERNATIVE = {
    Direction.INCREASE: "greater",
    Direction.DECREASE: "less",
    Direction.BOTH: "two-sided",
}


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


def _p_text(p_value: float) -> str:
    """``p=0.0031`` for a reason text (``core.formatting.p_value_text``)."""
    return p_value_text(p_value)


def _fmt(value: float | None, unit: str) -> str:
    """A value in a reason text (``core.formatting``, reason style)."""
    return format_value(value, unit, Style.REASON)


# --- deciding ---------------------------------------------------------------------------------


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
