"""Seeded restart scenarios for the verdict-quality benchmark — no Prometheus needed.

A judge is only as good as the nights it is tried on. Each scenario is one canary restart
at night: the canary namespace and a few not-yet-upgraded control namespaces, observed over
the default windows (10 min before, 10 min after, 1 min steps), with

- Poisson request counts with per-minute overdispersion (real traffic is burstier than
  Poisson) and each namespace's own small trend;
- long-tailed latency (log-normal, per namespace) counted into Istio's default buckets;
- night-time drift that hits every namespace alike: traffic ramps by a factor in
  [0.5, 1.5] across the windows and load moves latency a little with it; error rates move
  either in proportion to load (two scenarios in three) or by the same points everywhere,
  up to +0.4 pp (a shared backend failing a little, one in three);
- low-traffic namespaces (0.05-2 rps) as well as busy ones;
- a regression injected in the canary's after window only (half the scenarios have none):
  error rate +0.5/+1/+2 percentage points, p99 +10/+25/+50 % (tail widened, median kept),
  traffic -50 %.

Everything is drawn from one ``numpy`` generator seeded by the caller: same seed, same
scenarios, for every judge.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

#: Istio's default request-duration buckets (milliseconds), ``+Inf`` last. Istio sets no
#: buckets of its own: unless a pod carries the ``sidecar.istio.io/statsHistogramBuckets``
#: annotation (istio/istio ``pkg/bootstrap/config.go`` turns it into Envoy's
#: ``histogram_bucket_settings``), the proxy uses Envoy's defaults
#: (envoyproxy/envoy ``source/common/stats/histogram_impl.cc``,
#: ``HistogramSettingsImpl::defaultBuckets``): this list.
ISTIO_BUCKETS: tuple[float, ...] = (
    0.5,
    1,
    5,
    10,
    25,
    50,
    100,
    250,
    500,
    1000,
    2500,
    5000,
    10000,
    30000,
    60000,
    300000,
    600000,
    1800000,
    3600000,
    math.inf,
)

#: Canary traffic levels (requests per second) the benchmark reports on.
TRAFFIC_LEVELS: tuple[float, ...] = (0.05, 0.5, 2, 5, 10, 20, 50, 200)

#: Regression kinds, in report order, with what they do to the canary's after window.
REGRESSIONS: dict[str, tuple[str, float]] = {
    "errors+0.5pp": ("errors", 0.005),
    "errors+1pp": ("errors", 0.01),
    "errors+2pp": ("errors", 0.02),
    "p99+10%": ("p99", 0.10),
    "p99+25%": ("p99", 0.25),
    "p99+50%": ("p99", 0.50),
    "traffic-50%": ("traffic", -0.50),
}

STEPS_PER_WINDOW = 10
#: offset of the seed of the minutes before the 10-minute before-window (their own stream)
EARLIER_STREAM = 104_729
STEP_SECONDS = 60.0
CONTROLS_PER_SCENARIO = 5

#: How the night moves every namespace's error rate: in proportion to load (busier is a
#: little more error-prone), or by the same points everywhere (a shared backend failing).
DRIFT_MODELS: tuple[str, ...] = ("proportional", "proportional", "additive")
#: Additive drift: a shared failure adds up to this many points to every error rate.
ADDITIVE_SHIFT_MAX = 0.004
Z99 = float(stats.norm.ppf(0.99))


@dataclass(frozen=True)
class WindowData:
    """One namespace over one window: per-step requests, errors and bucket counts."""

    requests: np.ndarray  # shape (steps,)
    errors: np.ndarray  # shape (steps,)
    buckets: np.ndarray  # shape (steps, len(bounds)), non-cumulative
    bounds: tuple[float, ...] = ISTIO_BUCKETS

    @property
    def seconds(self) -> float:
        return len(self.requests) * STEP_SECONDS


@dataclass(frozen=True)
class NamespaceTruth:
    """What generated a namespace (for the physical limit and the Flagger operator)."""

    rps: float
    error_rate: float
    latency_median_ms: float
    latency_sigma: float

    @property
    def p99_ms(self) -> float:
        return self.latency_median_ms * math.exp(Z99 * self.latency_sigma)


@dataclass(frozen=True)
class Scenario:
    """One canary restart: the canary's and the controls' windows, and the truth."""

    index: int
    traffic: float  # canary's before-window rps level
    regression: str | None  # a key of REGRESSIONS, or None for a healthy restart
    drift: float  # traffic factor after/before that hit every namespace
    drift_model: str  # how the night moved error rates: "proportional" or "additive"
    canary: NamespaceTruth
    before: WindowData
    after: WindowData
    controls_before: dict[str, WindowData] = field(default_factory=dict)
    controls_after: dict[str, WindowData] = field(default_factory=dict)
    #: the minutes before the 10-minute before-window ("canary" and each control), for the
    #: rules that read a longer before-window of their own (``spec.judge.beforeWindow``)
    earlier: dict[str, WindowData] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return f"canary-{self.index}"

    def before_for(self, name: str, steps: int) -> WindowData:
        """The last ``steps`` before-minutes of ``name`` ("canary" or a control): the
        10-minute before-window, preceded by the earlier minutes the scenario has."""
        window = self.before if name == "canary" else self.controls_before[name]
        if steps == len(window.requests):
            return window
        earlier = self.earlier.get(name)
        return last_steps(window if earlier is None else joined(earlier, window), steps)


def joined(first: WindowData, then: WindowData) -> WindowData:
    """Two consecutive windows of one namespace as one."""
    return WindowData(
        np.concatenate((first.requests, then.requests)),
        np.concatenate((first.errors, then.errors)),
        np.concatenate((first.buckets, then.buckets)),
        then.bounds,
    )


def last_steps(window: WindowData, steps: int) -> WindowData:
    """The last ``steps`` of a window (all of it when shorter)."""
    return WindowData(
        window.requests[-steps:], window.errors[-steps:], window.buckets[-steps:], window.bounds
    )


def earlier_rates(rng: np.random.Generator, rps: float, steps: int) -> np.ndarray:
    """Per-step rates of the minutes before a 10-minute before-window: the namespace's own
    level with per-minute overdispersion (the night's ramp starts at the 10-minute window)."""
    return rps * rng.lognormal(0.0, 0.08, steps)


def _bucket_probabilities(median: float, sigma: float) -> np.ndarray:
    bounds = np.array(ISTIO_BUCKETS[:-1])
    cdf = stats.norm.cdf((np.log(bounds) - math.log(median)) / sigma)
    cumulative = np.append(cdf, 1.0)
    probabilities = np.diff(np.concatenate(([0.0], cumulative)))
    return np.clip(probabilities, 0.0, 1.0) / probabilities.sum()


def _window(
    rng: np.random.Generator,
    rates: np.ndarray,
    error_rate: float,
    median: float,
    sigma: float,
) -> WindowData:
    requests = rng.poisson(rates * STEP_SECONDS)
    errors = rng.binomial(requests, min(max(error_rate, 0.0), 1.0))
    buckets = rng.multinomial(requests, _bucket_probabilities(median, sigma))
    return WindowData(requests.astype(float), errors.astype(float), buckets.astype(float))


def _rate_path(
    rng: np.random.Generator,
    rps: float,
    drift: float,
    own_trend: float,
    after_steps: int = STEPS_PER_WINDOW,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-step rates of the before window and of ``after_steps`` after it: the night's
    ramp (1 → drift across both), the namespace's own trend, and per-minute overdispersion."""
    steps = STEPS_PER_WINDOW + after_steps
    ramp = np.linspace(1.0, drift, steps) * np.linspace(1.0, own_trend, steps)
    jitter = rng.lognormal(0.0, 0.08, steps)
    rates = rps * ramp * jitter
    return rates[:STEPS_PER_WINDOW], rates[STEPS_PER_WINDOW:]


def _namespace_truth(rng: np.random.Generator, rps: float) -> NamespaceTruth:
    return NamespaceTruth(
        rps=rps,
        error_rate=float(math.exp(rng.uniform(math.log(0.001), math.log(0.008)))),
        latency_median_ms=float(rng.uniform(8, 60)),
        latency_sigma=float(rng.uniform(0.5, 0.85)),
    )


def _load_effects(drift_after: float) -> tuple[float, float]:
    """How a window's load (relative to the before window) moves error rate and latency:
    busier nights are a little slower and a little more error-prone, for everyone."""
    error_factor = 1.0 + 0.4 * (drift_after - 1.0)
    latency_factor = 1.0 + 0.2 * (drift_after - 1.0)
    return error_factor, latency_factor


def generate(
    count: int,
    seed: int,
    levels: Sequence[float] = TRAFFIC_LEVELS,
    regressions: Sequence[str | None] | None = None,
    earlier_steps: int = 0,
) -> list[Scenario]:
    """``count`` scenarios at random ``levels``; by default half healthy and the rest spread
    evenly over REGRESSIONS, else cycling through ``regressions`` (None = healthy).
    ``earlier_steps``: minutes drawn before each 10-minute before-window, from a stream of
    their own (``EARLIER_STREAM``), so every other draw is the same whatever their number."""
    rng = np.random.default_rng(seed)
    earlier = np.random.default_rng(seed + EARLIER_STREAM) if earlier_steps > 0 else None
    if regressions is None:
        kinds = list(REGRESSIONS)
        plan = [None if i % 2 == 0 else kinds[(i // 2) % len(kinds)] for i in range(count)]
    else:
        plan = [regressions[i % len(regressions)] for i in range(count)]
    return [
        _scenario(
            rng,
            index,
            float(levels[int(rng.integers(len(levels)))]),
            regression,
            earlier,
            earlier_steps,
        )
        for index, regression in enumerate(plan)
    ]


def drifted_error_rate(rate: float, model: str, error_factor: float, shared: float) -> float:
    """An error rate after the night's drift: scaled with the load (``proportional``) or
    raised by the same points everywhere (``additive``, a shared backend failing)."""
    return rate * error_factor if model == "proportional" else rate + shared


def with_regression(
    kind: str,
    error_rate: float,
    latency_sigma: float,
    rates: np.ndarray,
    regressions: dict[str, tuple[str, float]] = REGRESSIONS,
) -> tuple[float, float, np.ndarray]:
    """An after-window's error rate, latency spread and per-step rates with the regression
    ``kind`` (a key of ``regressions``) injected: errors add points, p99 grows by its share
    with the median unchanged, traffic scales."""
    what, size = regressions[kind]
    if what == "errors":
        return error_rate + size, latency_sigma, rates
    if what == "p99":
        return error_rate, latency_sigma + math.log(1 + size) / Z99, rates
    return error_rate, latency_sigma, rates * (1 + size)


def _scenario(
    rng: np.random.Generator,
    index: int,
    level: float,
    regression: str | None,
    earlier: np.random.Generator | None = None,
    earlier_steps: int = 0,
) -> Scenario:
    drift = float(rng.uniform(0.5, 1.5))
    model = DRIFT_MODELS[int(rng.integers(len(DRIFT_MODELS)))]
    shared_errors = float(rng.uniform(0.0, ADDITIVE_SHIFT_MAX))
    error_factor, latency_factor = _load_effects(drift)

    canary = _namespace_truth(rng, level)
    rates_before, rates_after = _rate_path(rng, level, drift, float(rng.uniform(0.95, 1.05)))
    canary_error_after = drifted_error_rate(canary.error_rate, model, error_factor, shared_errors)
    sigma_after = canary.latency_sigma
    if regression is not None:
        canary_error_after, sigma_after, rates_after = with_regression(
            regression, canary_error_after, sigma_after, rates_after
        )
    before = _window(
        rng, rates_before, canary.error_rate, canary.latency_median_ms, canary.latency_sigma
    )
    after = _window(
        rng, rates_after, canary_error_after, canary.latency_median_ms * latency_factor, sigma_after
    )
    controls_before, controls_after = {}, {}
    truths = {"canary": canary}
    for number in range(CONTROLS_PER_SCENARIO):
        rps = float(math.exp(rng.uniform(math.log(0.5), math.log(100))))
        truth = _namespace_truth(rng, rps)
        truths[f"control-{number}"] = truth
        cb, ca = _rate_path(rng, rps, drift, float(rng.uniform(0.95, 1.05)))
        name = f"control-{number}"
        controls_before[name] = _window(
            rng, cb, truth.error_rate, truth.latency_median_ms, truth.latency_sigma
        )
        controls_after[name] = _window(
            rng,
            ca,
            drifted_error_rate(truth.error_rate, model, error_factor, shared_errors),
            truth.latency_median_ms * latency_factor,
            truth.latency_sigma,
        )
    first = {}
    if earlier is not None and earlier_steps > 0:
        for name, truth in truths.items():
            rates = earlier_rates(earlier, truth.rps, earlier_steps)
            first[name] = _window(
                earlier, rates, truth.error_rate, truth.latency_median_ms, truth.latency_sigma
            )
    return Scenario(
        index=index,
        traffic=level,
        regression=regression,
        drift=drift,
        drift_model=model,
        canary=canary,
        before=before,
        after=after,
        controls_before=controls_before,
        controls_after=controls_after,
        earlier=first,
    )


def ideal_power(
    error_rate: float, increase: float, requests_before: float, requests_after: float
) -> float:
    """The physical limit: power of an ideal one-sided two-proportion z test (α = 1 %) that
    knows there is no drift, for ``error_rate`` → ``error_rate + increase`` with the given
    (expected) request counts."""
    if requests_before <= 0 or requests_after <= 0:
        return 0.0
    p0, p1 = error_rate, error_rate + increase
    pooled = (p0 * requests_before + p1 * requests_after) / (requests_before + requests_after)
    null_se = math.sqrt(pooled * (1 - pooled) * (1 / requests_before + 1 / requests_after))
    true_se = math.sqrt(p0 * (1 - p0) / requests_before + p1 * (1 - p1) / requests_after)
    return float(stats.norm.cdf((increase - Z99 * null_se) / true_se))


def reference_limit(rps: float, increase: float = 0.01, base: float = 0.01) -> float:
    """The issue's reference figure: +1 pp over a 1 % base at ``rps`` over 10-min windows,
    no drift (≈ 0.8 at 5 rps)."""
    n = rps * STEPS_PER_WINDOW * STEP_SECONDS
    return ideal_power(base, increase, n, n)


def exact_ideal_power(
    error_rate: float, increase: float, requests_before: int, requests_after: int
) -> float:
    """The same ideal z test's *actual* power: summed over every pair of error counts the
    two windows can show, rather than from the normal approximation. At a few expected
    errors per window the approximation promises power no test at α = 1 % has (at 0.05 rps
    it gives 3 %, the test itself rejects almost never)."""

    def rejects(e0: np.ndarray, e1: np.ndarray, n0: int, n1: int) -> np.ndarray:
        pooled = (e0 + e1) / (n0 + n1)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n0 + 1 / n1))
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(se > 0, (e1 / n1 - e0 / n0) / se, 0.0)
        return z > Z99

    return _power(rejects, error_rate, increase, requests_before, requests_after)


def best_unbiased_power(
    error_rate: float, increase: float, requests_before: int, requests_after: int
) -> float:
    """What no unbiased test at α = 1 % can beat: the power of the uniformly most powerful
    unbiased test (the conditional test on the after window's share of the errors,
    randomised on the boundary count so its size is exactly α). An upper bound for any
    practical test, randomisation being something no operator would accept."""

    def rejects(e0: np.ndarray, e1: np.ndarray, n0: int, n1: int) -> np.ndarray:
        events, share = e0 + e1, n1 / (n0 + n1)
        above = stats.binom.sf(e1, events, share)
        at = stats.binom.pmf(e1, events, share)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            partial = np.clip((0.01 - above) / at, 0.0, 1.0)
        return np.where(above + at <= 0.01, 1.0, np.where(above < 0.01, partial, 0.0))

    return _power(rejects, error_rate, increase, requests_before, requests_after)


def _power(
    rejects: Callable[[np.ndarray, np.ndarray, int, int], np.ndarray],
    error_rate: float,
    increase: float,
    requests_before: int,
    requests_after: int,
) -> float:
    """A test's power for ``error_rate`` → ``error_rate + increase``: its chance of
    rejecting (``rejects`` on a grid of before × after error counts) weighted by how likely
    each pair of counts is."""
    n0, n1 = int(requests_before), int(requests_after)
    if n0 <= 0 or n1 <= 0:
        return 0.0
    p1 = min(error_rate + increase, 1.0)
    e0, e1 = _count_range(n0, error_rate), _count_range(n1, p1)
    w0, w1 = stats.binom.pmf(e0, n0, error_rate), stats.binom.pmf(e1, n1, p1)
    return float(w0 @ rejects(e0[:, None], e1[None, :], n0, n1) @ w1)


def _count_range(n: int, p: float) -> np.ndarray:
    """Every error count with non-negligible probability in ``n`` requests at rate ``p``."""
    low, high = stats.binom.ppf([1e-9, 1 - 1e-9], n, p)
    return np.arange(int(low), int(high) + 1)
