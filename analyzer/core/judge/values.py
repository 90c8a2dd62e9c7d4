"""Value rules (any gauge-like series): medians before and after compared by a rank test
(Mann-Whitney), net of the control namespaces' change.
"""

from __future__ import annotations

from collections.abc import Sequence

from scipy import stats

from analyzer.core.judge.common import (
    ALTERNATIVE,
    RuleInput,
    _alpha,
    _fmt,
    _p_text,
    _result,
    _signed,
    _tolerance,
    _too_little,
    _usable_controls,
)
from analyzer.core.observations import (
    ValueSeries,
)
from analyzer.core.verdicts import RuleResult, Verdict


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
