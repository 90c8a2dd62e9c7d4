"""Quantiles from coarse histogram buckets, with their uncertainty from counts.

Why not Prometheus' ``histogram_quantile``: it interpolates linearly inside a bucket, which
with Istio's default buckets (…, 100, 250, 500, … ms) makes a true p99 change of +25 %
show as anything from +3 % to +66 %. Here the share of requests below each bound is put on
the probit scale (Φ⁻¹ of the share: a straight line in log x for a log-normal latency) and
a monotone cubic through every finite bound gives the quantile (one power-law tail per
bucket where too few bounds are known; linear in the first bucket, which starts at 0). Its
standard error comes by the delta method from the count of requests beyond it — evidence
in requests, not in averaged values — and is made honest for what counts do not show:

- **bursty minutes.** A slow minute (a busy dependency, a pause) makes many requests slow
  at once, so counts vary from minute to minute more than independent requests would. When
  the window's per-step counts are known, the variance is multiplied by the dispersion of
  the per-step counts beyond the quantile's bucket (Pearson's χ² over its degrees of
  freedom, its excess over 1 scaled to the quantile: a slow minute moves the count beyond a
  bound with share S by S ÷ (1 − quantile) times more than it moves the quantile; never
  below 1);
- **the shape inside a wide bucket.** Where the quantile sits inside a wide bucket (p99 in
  100–250 ms; a median in 10–50 ms of a coarser layout) the counts say nothing about the
  shape between the bounds. The same cubic on a second scale (log of the share above: a
  straight line for a power-law tail) gives a second reading; their disagreement is added
  to the error (in quadrature).

Without them, healthy restarts on Istio's default buckets with a p99 inside the wide bucket,
5–20 rps and latency wobbling by up to ±20 % per minute failed the p99 rule 3–7 % of the
time at α = 1 %, and the p50's test of no change rejected 19 % of healthy restarts on a
coarse layout with a heavy tail; with them the tests' z-scores on healthy restarts spread
as a standard normal or narrower (``bench judge``'s calibration table).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from scipy.interpolate import PchipInterpolator
from scipy.optimize import brentq
from scipy.special import ndtri

from analyzer.core.observations import BucketCounts


@dataclass(frozen=True)
class TailQuantile:
    """A quantile estimate: value, its log-scale standard error, and what it rests on."""

    value: float
    log_standard_error: float
    lower_bound: float  # the bucket the quantile falls in
    upper_bound: float
    exponent: float  # local power-law exponent of the survival function (``S ∝ x^-k``)
    tail_requests: float  # requests expected above the quantile
    #: variance factor for minute-to-minute burstiness of the tail (1: none seen or known)
    dispersion: float = 1.0
    #: log-scale disagreement of two interpolation shapes inside the bucket (part of the error)
    interpolation_log_error: float = 0.0

    def to_dict(self) -> dict[str, float]:
        return {
            "value_ms": self.value,
            "log_standard_error": self.log_standard_error,
            "bucket": [self.lower_bound, self.upper_bound],
            "tail_exponent": self.exponent,
            "tail_requests": self.tail_requests,
            "tail_dispersion": self.dispersion,
            "interpolation_log_error": self.interpolation_log_error,
        }


@lru_cache(maxsize=4096)  # controls' histograms recur for every judged namespace
def tail_quantile(quantile: float, histogram: BucketCounts) -> TailQuantile | None:
    """The ``quantile`` of a window's histogram, interpolated as a power-law tail inside its
    bucket (linearly in the first bucket, which starts at 0). None when the histogram is
    empty or the quantile lies in the ``+Inf`` bucket (buckets cannot resolve it)."""
    total = histogram.total
    if total <= 0:
        return None
    target = 1.0 - quantile  # survival share at the quantile
    previous_bound, previous_survival = 0.0, 1.0
    for bound, cumulative in zip(histogram.bounds, histogram.cumulative, strict=True):
        survival = max(1.0 - cumulative / total, 0.0)
        if survival <= target + 1e-12:
            if math.isinf(bound):
                return None
            in_bucket = previous_survival - survival
            if in_bucket <= 0:
                return None
            # the share above the upper bound, smoothed by half a request: one or zero slow
            # requests above it must not decide the tail's slope
            smoothed = max(survival, 0.5 / total)
            if previous_bound <= 0:
                share = (previous_survival - target) / in_bucket
                value = previous_bound + (bound - previous_bound) * share
                # density in the bucket, as the slope of log S in log x at the value
                exponent = (in_bucket / (bound - previous_bound)) * value / target
            else:
                exponent = math.log(previous_survival / smoothed) / math.log(bound / previous_bound)
                value = previous_bound * (bound / previous_bound) ** (
                    math.log(previous_survival / target) / math.log(previous_survival / smoothed)
                )
            interpolation = 0.0
            if previous_bound > 0:
                refined = _smooth_tail(histogram, target, "probit")
                other = _smooth_tail(histogram, target, "log")
                if refined is not None:
                    value, exponent = refined
                    if other is not None:
                        # two reasonable shapes inside the bucket disagree by this much:
                        # the interpolation's own uncertainty, which no count reduces
                        interpolation = abs(math.log(refined[0] / other[0]))
            exponent = max(exponent, 1e-6)
            # Var(S_hat) = S(1-S)/n at the quantile; d log Q = -d log S / k
            log_se = math.sqrt((1 - target) / (target * total)) / exponent
            if previous_bound > 0:
                log_se = max(
                    log_se,
                    _segment_log_se(
                        previous_bound, bound, previous_survival, smoothed, target, total
                    ),
                )
            dispersion = tail_dispersion(
                histogram, previous_bound if previous_bound > 0 else bound, target
            )
            return TailQuantile(
                value=value,
                log_standard_error=math.hypot(log_se * math.sqrt(dispersion), interpolation),
                lower_bound=previous_bound,
                upper_bound=bound,
                exponent=exponent,
                tail_requests=target * total,
                dispersion=dispersion,
                interpolation_log_error=interpolation,
            )
        previous_bound, previous_survival = bound, survival
    return None


#: Fewest steps with requests from which a window's dispersion is estimated.
MIN_DISPERSION_STEPS = 3


def tail_dispersion(histogram: BucketCounts, bound: float, target: float = 0.0) -> float:
    """How much more the per-step counts of requests slower than ``bound`` vary than
    independent requests would make them: Pearson's χ² (binomial per step, the window's
    share above ``bound``) over its degrees of freedom, at least 1. 1 without per-step
    counts or with fewer than ``MIN_DISPERSION_STEPS`` steps that had requests."""
    if not histogram.steps or bound not in histogram.bounds:
        return 1.0
    index = histogram.bounds.index(bound)
    steps = [(step[-1], step[-1] - step[index]) for step in histogram.steps if step[-1] > 0]
    if len(steps) < MIN_DISPERSION_STEPS:
        return 1.0
    total = sum(requests for requests, _ in steps)
    share = sum(above for _, above in steps) / total
    if not 0 < share < 1:
        return 1.0
    statistic = sum(
        (above - requests * share) ** 2 / (requests * share * (1 - share))
        for requests, above in steps
    )
    excess = max(statistic / (len(steps) - 1) - 1.0, 0.0)
    # a slow minute scales every request's latency: the count above a bound with share S
    # then varies by (n·S·k·ε)² beyond the binomial, while log q moves by ε — the excess
    # seen at ``bound`` over-states the quantile's by S ÷ (1 − quantile)
    return 1.0 + excess * min(1.0, target / share) if target else 1.0 + excess


def _segment_log_se(
    lower: float, upper: float, above_lower: float, above_upper: float, target: float, total: float
) -> float:
    """Delta-method standard error of ``log Q`` for the power-law segment through the shares
    above both bounds of the quantile's bucket (multinomial counts: the share above the
    upper bound rests on few requests and usually dominates)."""
    width = math.log(upper / lower)
    drop = math.log(above_lower / above_upper)
    if drop <= 0:
        return math.inf
    into = math.log(above_lower / target)
    grad_upper = width * into / drop**2
    grad_total = width / drop  # the gradients for both shares add up to 1/k
    var_lower = (1 - above_lower) / (above_lower * total)
    var_upper = (1 - above_upper) / (above_upper * total)
    return math.sqrt(grad_total**2 * var_lower + grad_upper**2 * max(var_upper - var_lower, 0.0))


def _smooth_tail(
    histogram: BucketCounts, target: float, scale: str = "probit"
) -> tuple[float, float] | None:
    """Quantile and local exponent from a monotone cubic (PCHIP) through the survival share
    against ``log x`` at every finite bound: follows the distribution's curvature across
    buckets, where one power law per bucket is biased by a few percent. On the ``probit``
    scale (Φ⁻¹ of the share below) a log-normal latency is a straight line; on the ``log``
    scale (log of the share above) a power-law tail is. None when too few points."""
    total = histogram.total
    xs, ys = [], []
    for bound, cumulative in zip(histogram.bounds, histogram.cumulative, strict=True):
        if math.isinf(bound) or bound <= 0:
            continue
        survival = 1.0 - cumulative / total
        if survival >= 1.0:
            continue
        xs.append(math.log(bound))
        ys.append(_scaled(max(survival, 0.5 / total), scale))
        if survival <= 0:
            break  # nothing is known beyond the first empty tail
    level = _scaled(target, scale)
    if len(xs) < 3 or ys[0] >= level:
        return None
    crossing = next((i for i, y in enumerate(ys) if y >= level), None)
    if crossing is None:
        return None
    curve = PchipInterpolator(xs, ys)
    low, high = xs[crossing - 1], xs[crossing]
    if curve(low) - level >= 0 or curve(high) - level < 0:
        return None
    root = brentq(lambda x: float(curve(x)) - level, low, high)
    slope = float(curve.derivative()(root))
    if scale == "probit":  # S = Φ(−y): −d log S / d log x = φ(y)/S · dy/d log x
        slope *= math.exp(-0.5 * level * level) / math.sqrt(2 * math.pi) / target
    if slope <= 0:
        return None
    return math.exp(root), slope


def _scaled(survival: float, scale: str) -> float:
    """A survival share on an increasing scale: ``probit`` Φ⁻¹(1 − S), ``log`` −log S."""
    return -float(ndtri(survival)) if scale == "probit" else -math.log(survival)
