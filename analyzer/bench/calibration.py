"""Calibration on real-shaped latency: does the judge keep its promised false-FAIL rate
where histograms are coarse and the night moves everyone's latency?

The main scenarios (``scenarios``) spread p99s over many buckets. A new user's data is
less kind: Istio's default buckets (…, 50, 100, 250, 500, … ms) put a typical p99 inside
the wide 100–250 ms bucket, where the quantile is interpolated from a few dozen tail
requests; traffic is 5–50 rps; and the night scales every namespace's latency by the same
0.9–1.2×, which moves each quantile to a different place inside its own bucket. Healthy
restarts only: every FAIL here is a false one. Each cell — bucket layout × latency shape ×
canary traffic — reports the false-FAIL share of every rule with its 95 % (Wilson)
interval, to be read against the rule's α.

Bucket layouts: Envoy's defaults (what Istio exports unless told otherwise) and the
coarser list of Istio's own ``sidecar.istio.io/statsHistogramBuckets`` example
(istio/istio ``pkg/bootstrap/instance_test.go``: 1, 5, 10, 50, 100, 500, 1000, 5000, 10000
ms), whose p99 bucket is 100–500 ms. Latency shapes: log-normal, and a heavier tail — a
Student t with 3 degrees of freedom on the log scale (a power-law tail: the slowest
requests are far slower than a log-normal's).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import special, stats

from analyzer.bench import judges
from analyzer.bench.scenarios import (
    ADDITIVE_SHIFT_MAX,
    CONTROLS_PER_SCENARIO,
    DRIFT_MODELS,
    EARLIER_STREAM,
    ISTIO_BUCKETS,
    STEPS_PER_WINDOW,
    NamespaceTruth,
    Scenario,
    WindowData,
    _load_effects,
    _rate_path,
    drifted_error_rate,
    earlier_rates,
)
from analyzer.core.verdicts import Verdict

#: Bucket layouts (ms, ``+Inf`` last) by name.
BUCKET_LAYOUTS: dict[str, tuple[float, ...]] = {
    "istio-default": ISTIO_BUCKETS,
    "istio-annotation-example": (1, 5, 10, 50, 100, 500, 1000, 5000, 10000, math.inf),
}
#: Latency shapes: the distribution of log latency (scaled by the namespace's spread).
LATENCY_SHAPES: dict[str, stats.rv_continuous] = {
    "log-normal": stats.norm,
    "log-t3": stats.t(3),
}
#: Spread (scale of log latency) per shape: medians land at 10–80 ms for a p99 of 100–250.
SPREADS = {"log-normal": (0.5, 0.9), "log-t3": (0.25, 0.45)}
#: Canary traffic levels (rps) of the calibration.
CALIBRATION_LEVELS: tuple[float, ...] = (5, 10, 20, 50)
#: The night's latency factor on every namespace, after vs before.
LATENCY_DRIFT = (0.9, 1.2)
#: Minute-to-minute wobble of a namespace's latency (log scale, drawn per namespace): real
#: tails are bursty (a slow dependency, a pause), so tail requests are overdispersed.
LATENCY_JITTER = (0.0, 0.2)
#: The canary's p99 (ms): inside the wide 100–250 ms bucket of the default layout.
CANARY_P99 = (105.0, 245.0)
#: Controls' p99s (ms) spread over several buckets, and their traffic (rps).
CONTROL_P99 = (30.0, 600.0)
CONTROL_RPS = (2.0, 100.0)


#: The same distributions' CDFs as plain ufuncs (fast on arrays of many steps at once).
_CDF = {"log-normal": special.ndtr, "log-t3": lambda z: special.stdtr(3, z)}


def bucket_probabilities(bounds: Sequence[float], shape: str, median, spread: float) -> np.ndarray:
    """Share of requests in each bucket (non-cumulative, ``+Inf`` last); ``median`` may be
    an array (one row of shares per median)."""
    finite = np.log(np.array([b for b in bounds if not math.isinf(b)], dtype=float))
    medians = np.atleast_1d(np.asarray(median, dtype=float))
    cdf = _CDF[shape]((finite[None, :] - np.log(medians)[:, None]) / spread)
    edges = np.concatenate((np.zeros((len(medians), 1)), cdf, np.ones((len(medians), 1))), axis=1)
    probabilities = np.clip(np.diff(edges, axis=1), 0.0, 1.0)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return probabilities if np.ndim(median) else probabilities[0]


def quantile_of(shape: str, median: float, spread: float, quantile: float = 0.99) -> float:
    return median * math.exp(spread * float(LATENCY_SHAPES[shape].ppf(quantile)))


def _window(
    rng: np.random.Generator,
    rates: np.ndarray,
    error_rate: float,
    bounds: tuple[float, ...],
    shape: str,
    median: float,
    spread: float,
    jitter: float = 0.0,
) -> WindowData:
    """One window; ``jitter``: the spread of each minute's own latency factor (log scale)."""
    requests = rng.poisson(rates * 60.0)
    errors = rng.binomial(requests, min(max(error_rate, 0.0), 1.0))
    factors = np.exp(rng.normal(0.0, jitter, len(requests))) if jitter else np.ones(len(requests))
    buckets = rng.multinomial(
        requests, bucket_probabilities(bounds, shape, median * factors, spread)
    )
    return WindowData(requests.astype(float), errors.astype(float), buckets.astype(float), bounds)


def _truth(
    rng: np.random.Generator, shape: str, rps: float, p99: tuple[float, float]
) -> NamespaceTruth:
    spread = float(rng.uniform(*SPREADS[shape]))
    target = float(math.exp(rng.uniform(math.log(p99[0]), math.log(p99[1]))))
    median = target / math.exp(spread * float(LATENCY_SHAPES[shape].ppf(0.99)))
    return NamespaceTruth(
        rps=rps,
        error_rate=float(math.exp(rng.uniform(math.log(0.001), math.log(0.008)))),
        latency_median_ms=median,
        latency_sigma=spread,
    )


def calibration_scenario(
    rng: np.random.Generator,
    index: int,
    layout: str,
    shape: str,
    level: float,
    earlier: np.random.Generator | None = None,
    earlier_steps: int = 0,
) -> Scenario:
    """One healthy restart on real-shaped data (see the module's docstring); with
    ``earlier``, ``earlier_steps`` minutes before each 10-minute before-window drawn from
    it after everything else (the rules' own before-windows)."""
    bounds = BUCKET_LAYOUTS[layout]
    drift = float(rng.uniform(0.5, 1.5))
    latency = float(rng.uniform(*LATENCY_DRIFT))
    model = DRIFT_MODELS[int(rng.integers(len(DRIFT_MODELS)))]
    shared_errors = float(rng.uniform(0.0, ADDITIVE_SHIFT_MAX))
    error_factor, _ = _load_effects(drift)

    def windows(truth: NamespaceTruth) -> tuple[WindowData, WindowData]:
        before_rates, after_rates = _rate_path(
            rng, truth.rps, drift, float(rng.uniform(0.95, 1.05))
        )
        median, spread = truth.latency_median_ms, truth.latency_sigma
        error_after = drifted_error_rate(truth.error_rate, model, error_factor, shared_errors)
        jitter = float(rng.uniform(*LATENCY_JITTER))
        kept.append((truth, jitter))
        return (
            _window(rng, before_rates, truth.error_rate, bounds, shape, median, spread, jitter),
            _window(rng, after_rates, error_after, bounds, shape, median * latency, spread, jitter),
        )

    kept: list[tuple[NamespaceTruth, float]] = []
    canary = _truth(rng, shape, level, CANARY_P99)
    before, after = windows(canary)
    controls_before, controls_after = {}, {}
    for number in range(CONTROLS_PER_SCENARIO):
        rps = float(math.exp(rng.uniform(*np.log(CONTROL_RPS))))
        name = f"control-{number}"
        controls_before[name], controls_after[name] = windows(_truth(rng, shape, rps, CONTROL_P99))
    first = {}
    if earlier is not None and earlier_steps > 0:
        names = ["canary", *controls_before]
        for name, (truth, jitter) in zip(names, kept, strict=True):
            first[name] = _window(
                earlier, earlier_rates(earlier, truth.rps, earlier_steps), truth.error_rate,
                bounds, shape, truth.latency_median_ms, truth.latency_sigma, jitter,
            )  # fmt: skip
    return Scenario(
        index=index,
        traffic=level,
        regression=None,
        drift=drift,
        drift_model=model,
        canary=canary,
        before=before,
        after=after,
        controls_before=controls_before,
        controls_after=controls_after,
        earlier=first,
    )


def _wilson(count: int, total: int) -> list[float] | None:
    if not total:
        return None
    found = stats.binomtest(count, total).proportion_ci(0.95, "wilson")
    return [float(found.low), float(found.high)]


@dataclass
class Cell:
    """False FAILs per rule (and for the namespace) in one layout × shape × traffic cell."""

    scenarios: int = 0
    fails: dict[str, int] = field(default_factory=dict)
    #: per rule: healthy restarts whose test of "no change at all" rejected at α — the
    #: honesty of the standard error itself, allowance aside (≈ α when it is honest)
    no_change: dict[str, int] = field(default_factory=dict)

    def to_dict(self, alphas: dict[str, float]) -> dict:
        rows = {}
        for name, alpha in alphas.items():
            count = self.fails.get(name, 0)
            rejected = self.no_change.get(name, 0)
            rows[name] = {
                "false_fail_rate": count / self.scenarios if self.scenarios else None,
                "false_fail_95ci": _wilson(count, self.scenarios),
                "alpha": alpha,
                "no_change_rejection_rate": rejected / self.scenarios if self.scenarios else None,
                "no_change_rejection_95ci": _wilson(rejected, self.scenarios),
            }
        count = self.fails.get("namespace", 0)
        return {
            "scenarios": self.scenarios,
            "rules": rows,
            "namespace_false_fail_rate": count / self.scenarios if self.scenarios else None,
            "namespace_false_fail_95ci": _wilson(count, self.scenarios),
        }


def calibration_cells(levels: Sequence[float] = CALIBRATION_LEVELS) -> int:
    """How many cells a calibration run has."""
    return len(BUCKET_LAYOUTS) * len(LATENCY_SHAPES) * len(levels)


def cell_key(layout: str, shape: str, level: float) -> str:
    return f"{layout}/{shape}/{level:g}rps"


def run_calibration(
    per_cell: int,
    seed: int,
    alpha: float | None = None,
    levels: Sequence[float] = CALIBRATION_LEVELS,
    progress: Callable[[int], None] | None = None,
    fail_when: str | None = None,
) -> dict:
    """``per_cell`` healthy real-shaped restarts per layout × shape × traffic level, judged
    by our judge rule by rule: the calibration table's data (JSON-ready)."""
    rules = judges.default_rules(fail_when)
    rng = np.random.default_rng(seed)
    # the rules' own before-windows: earlier minutes from a stream of their own
    earlier_steps = judges.longest_before(rules) - STEPS_PER_WINDOW
    earlier = np.random.default_rng(seed + EARLIER_STREAM)
    cells: dict[str, Cell] = {}
    totals: dict[str, int] = {}
    rejected: dict[str, int] = {}
    scenarios = 0
    for layout in BUCKET_LAYOUTS:
        for shape in LATENCY_SHAPES:
            for level in levels:
                cell = cells[cell_key(layout, shape, level)] = Cell()
                for index in range(per_cell):
                    scenario = calibration_scenario(
                        rng, index, layout, shape, level, earlier, earlier_steps
                    )
                    failed = False
                    for rule in rules:
                        result = judges.judge_scenario_rule(rule, scenario, alpha)
                        p_none = result.statistic.get("p_value_no_change")
                        if p_none is not None and p_none < result.statistic["alpha"]:
                            cell.no_change[rule.name] = cell.no_change.get(rule.name, 0) + 1
                            rejected[rule.name] = rejected.get(rule.name, 0) + 1
                        if result.verdict is Verdict.FAIL:
                            cell.fails[rule.name] = cell.fails.get(rule.name, 0) + 1
                            totals[rule.name] = totals.get(rule.name, 0) + 1
                            failed = failed or result.decides
                    if failed:
                        cell.fails["namespace"] = cell.fails.get("namespace", 0) + 1
                    cell.scenarios += 1
                    scenarios += 1
                    if progress:
                        progress(1)
    alphas = {
        rule.name: alpha if alpha is not None else 1.0 - rule.spec.judge.confidence
        for rule in rules
    }
    return {
        "scenarios_per_cell": per_cell,
        "seed": seed,
        "healthy_only": True,
        "latency_drift": list(LATENCY_DRIFT),
        "canary_p99_ms": list(CANARY_P99),
        "bucket_layouts": {
            name: [b for b in bounds if not math.isinf(b)]
            for name, bounds in BUCKET_LAYOUTS.items()
        },
        "cells": {key: cell.to_dict(alphas) for key, cell in cells.items()},
        "overall": {
            name: {
                "false_fail_rate": totals.get(name, 0) / scenarios if scenarios else None,
                "false_fail_95ci": _wilson(totals.get(name, 0), scenarios),
                "alpha": alpha_,
                "no_change_rejection_rate": rejected.get(name, 0) / scenarios
                if scenarios
                else None,
                "no_change_rejection_95ci": _wilson(rejected.get(name, 0), scenarios),
            }
            for name, alpha_ in alphas.items()
        },
    }
