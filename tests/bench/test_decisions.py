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


def test_each_rule_reads_its_own_before_window_and_the_last_ten_minutes_are_the_same_draws():
    from analyzer.bench.decisions import _inputs, before_steps, longest_before
    from analyzer.bench.judges import default_rules

    minutes = {rule.name: before_steps(rule) for rule in default_rules()}
    assert minutes == {"error-rate": 10, "latency-p50": 10, "latency-p99": 60, "request-volume": 10}
    assert longest_before() == 60
    hour, _ = _restart(np.random.default_rng(4), "p99+25%", 10.0, np.random.default_rng(9))
    ten, _ = _restart(np.random.default_rng(4), "p99+25%", 10.0, before=STEPS_PER_WINDOW)
    for name, (before, after) in hour.items():
        assert len(before.requests) == 60
        assert np.array_equal(before.requests[-10:], ten[name][0].requests)
        assert np.array_equal(after.buckets, ten[name][1].buckets)
    by_rule = {data.rule.name: data for data in _inputs(hour, STEPS_PER_WINDOW)}
    p99, errors = by_rule["latency-p99"], by_rule["error-rate"]
    assert p99.before.total == hour["canary"][0].requests.sum()
    assert errors.before.total == hour["canary"][0].requests[-10:].sum()
    # the controls read the same window as the canary
    assert {n: b.total for n, b in p99.controls_before.items()} == {
        n: w[0].requests.sum() for n, w in hour.items() if n != "canary"
    }


def test_the_rules_hour_before_lifts_the_ceiling():
    rng = np.random.default_rng(5)
    restarts = [_restart(rng, "p99+25%", 10.0) for _ in range(20)]
    own = np.mean([quantile_ceiling(w, c, STEPS_PER_WINDOW) for w, c in restarts])
    ten = np.mean(
        [quantile_ceiling(w, c, STEPS_PER_WINDOW, before_minutes=10) for w, c in restarts]
    )
    assert own > ten


def test_the_main_and_calibration_scenarios_add_earlier_minutes_without_changing_the_rest():
    from analyzer.bench.calibration import calibration_scenario
    from analyzer.bench.judges import judge_scenario_rule
    from analyzer.bench.scenarios import generate

    plain, longer = generate(6, seed=2), generate(6, seed=2, earlier_steps=50)
    for a, b in zip(plain, longer, strict=True):
        assert np.array_equal(a.before.buckets, b.before.buckets)
        assert np.array_equal(a.controls_after["control-1"].requests,
                              b.controls_after["control-1"].requests)  # fmt: skip
        assert set(b.earlier) == {"canary", *b.controls_before} and not a.earlier
        hour = b.before_for("control-2", 60)
        assert len(hour.requests) == 60
        assert np.array_equal(hour.requests[-10:], b.controls_before["control-2"].requests)
    from analyzer.bench.judges import default_rules

    p99 = next(r for r in default_rules() if r.name == "latency-p99")
    result = judge_scenario_rule(p99, longer[1], None)
    assert result.evidence["before_requests"] == longer[1].before_for("canary", 60).requests.sum()
    shaped = calibration_scenario(
        np.random.default_rng(1), 0, "istio-default", "log-normal", 10.0,
        np.random.default_rng(2), 50,
    )  # fmt: skip
    assert len(shaped.before_for("canary", 60).requests) == 60
