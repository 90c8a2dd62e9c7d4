"""The time-to-decision study's ceiling for p99 cases (``bench.decisions.quantile_ceiling``):
the chance that the raw sample p99's change lands beyond the rule's allowance. It must be a
half for a change exactly at the allowance, and grow with the evidence and the change."""

from __future__ import annotations

import numpy as np

from analyzer.bench.decisions import AFTER_STEPS, STEPS_PER_WINDOW, _restart, quantile_ceiling
from analyzer.bench.scenarios import Z99


def _ceilings(regression: str, rps: float, steps: int) -> float:
    rng = np.random.default_rng(5)
    values = [quantile_ceiling(*_restart(rng, regression, rps), steps) for _ in range(20)]
    return float(np.mean(values))


def test_a_change_at_the_allowance_lands_beyond_it_half_the_time():
    windows, canary = _restart(np.random.default_rng(3), "p99+20%", 10.0)
    median, before, after = canary
    assert abs(after - before - np.log(1.2) / Z99) < 1e-12  # p99 × 1.2, the median kept
    assert median * np.exp(Z99 * before) * 0.2 >= 5  # +20 % is the larger allowance here
    assert abs(quantile_ceiling(windows, canary, STEPS_PER_WINDOW) - 0.5) < 1e-9


def test_the_ceiling_grows_with_traffic_window_and_change():
    at_10 = _ceilings("p99+25%", 10.0, STEPS_PER_WINDOW)
    assert 0.5 < at_10 < 1.0
    assert _ceilings("p99+25%", 10.0, AFTER_STEPS) > at_10  # a longer after-window
    assert _ceilings("p99+25%", 50.0, STEPS_PER_WINDOW) > at_10  # more traffic
    assert _ceilings("p99+50%", 10.0, STEPS_PER_WINDOW) > at_10  # a larger change
