"""Volume rules (request rate): a Poisson rate with over-dispersion measured from the
counts per step, net of the control namespaces' change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from analyzer.core.judge.common import (
    RuleInput,
    _decide,
    _fmt,
    _p_text,
    _p_what,
    _result,
    _usable_controls,
)
from analyzer.core.observations import (
    Observation,
    VolumeCount,
)
from analyzer.core.rules import Direction, Judging
from analyzer.core.verdicts import RuleResult, Verdict


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
