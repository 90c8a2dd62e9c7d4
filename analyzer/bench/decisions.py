"""Time to decision: minutes from a restart to its verdict, fixed windows against
anytime-valid looks, on the same seeded restarts.

Why: a gross regression should not wait for the whole after-window, and a healthy busy
namespace should not either. Each restart here has the main scenarios' traffic (Poisson
counts, per-minute overdispersion, night drift shared with five controls, each rule's
before-window below) and an after-window of 30 one-minute steps — the default window and the
engine's two extensions. Two ways to judge it, each rule at its own α:

- **fixed windows** (the engine today): judge at 10 minutes of after-window; when
  inconclusive, extend by a window and judge again (20, then 30 minutes);
- **anytime-valid** (``core.sequential.judge_look``): judge after every step, stop at the
  first PASS or FAIL.

Each rule reads its own before-window, as the service does (``spec.judge.beforeWindow``;
the shipped p99 rules: 60 minutes, the others the 10-minute ``windows.before``): a restart
here has as many before-minutes as the longest of them. The minutes before the 10-minute
window come from a generator of their own, drawn after everything else, so the last 10
before-minutes and the after-window are the same draws whatever the longest window is — a
10-minute and a 60-minute before-window are compared on the same restarts. Those earlier
minutes have the namespace's own traffic, error rate and latency (the night's drift starts
at the 10-minute window; a real hour before a restart may hold more, which the controls
share: docs/rules.md).

Minutes are counted from the restart: the settle time (2 minutes) plus the after-window
judged. Reported per case: the share that FAILed and that PASSed within 30 minutes, and the
median and 90th percentile of minutes to that verdict (FAIL for a regression, PASS for a
healthy namespace), with 95 % intervals for the shares.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import stats

from analyzer.bench import judges
from analyzer.bench.judges import before_steps, longest_before
from analyzer.bench.scenarios import (
    ADDITIVE_SHIFT_MAX,
    CONTROLS_PER_SCENARIO,
    DRIFT_MODELS,
    EARLIER_STREAM,
    REGRESSIONS,
    STEPS_PER_WINDOW,
    WindowData,
    _load_effects,
    _namespace_truth,
    _rate_path,
    _window,
    drifted_error_rate,
    earlier_rates,
    joined,
    last_steps,
    with_regression,
)
from analyzer.core.judge import RuleInput, judge_rule
from analyzer.core.sequential import judge_look, reference_error
from analyzer.core.verdicts import Verdict, combine_rule_results

#: (case name, regression or None, canary rps, the verdict whose time is measured)
DECISION_CASES: tuple[tuple[str, str | None, float, Verdict], ...] = (
    ("errors+2pp at 10 rps", "errors+2pp", 10.0, Verdict.FAIL),
    ("p99+50% at 10 rps", "p99+50%", 10.0, Verdict.FAIL),
    # just beyond the allowance (+0.5 pp): what waiting longer buys
    ("errors+1pp at 10 rps", "errors+1pp", 10.0, Verdict.FAIL),
    # just beyond the p99 rule's +20 % allowance: what the ceiling below allows
    ("p99+25% at 10 rps", "p99+25%", 10.0, Verdict.FAIL),
    ("p99+25% at 20 rps", "p99+25%", 20.0, Verdict.FAIL),
    # exactly at the allowance: how often a change the rule allows is called a regression
    ("p99+20% at 10 rps", "p99+20%", 10.0, Verdict.FAIL),
    ("healthy at 50 rps", None, 50.0, Verdict.PASS),
    ("healthy at 10 rps", None, 10.0, Verdict.PASS),
)
#: The main scenarios' regressions and one at the p99 rule's allowance (+20 %).
DECISION_REGRESSIONS: dict[str, tuple[str, float]] = {**REGRESSIONS, "p99+20%": ("p99", 0.20)}
SETTLE_MINUTES = 2
EXTENSIONS = 2
AFTER_STEPS = STEPS_PER_WINDOW * (1 + EXTENSIONS)


def _restart(
    rng: np.random.Generator,
    regression: str | None,
    rps: float,
    earlier: np.random.Generator | None = None,
    before: int | None = None,
):
    """Canary and controls: before windows of ``before`` steps (default: the shipped rules'
    longest) and 30-step after windows, and the canary's truth (its latency spread before
    and after). The steps before the last ``STEPS_PER_WINDOW`` are drawn from ``earlier``
    (default: ``rng``) after everything else."""
    drift = float(rng.uniform(0.5, 1.5))
    model = DRIFT_MODELS[int(rng.integers(len(DRIFT_MODELS)))]
    shared = float(rng.uniform(0.0, ADDITIVE_SHIFT_MAX))
    error_factor, latency_factor = _load_effects(drift)
    names = ["canary", *(f"control-{n}" for n in range(CONTROLS_PER_SCENARIO))]
    windows = {}
    truths = {}
    for name in names:
        level = (
            rps if name == "canary" else float(math.exp(rng.uniform(math.log(0.5), math.log(100))))
        )
        truth = _namespace_truth(rng, level)
        before_rates, after_rates = _rate_path(
            rng, level, drift, float(rng.uniform(0.95, 1.05)), AFTER_STEPS
        )
        error_after = drifted_error_rate(truth.error_rate, model, error_factor, shared)
        sigma_after = truth.latency_sigma
        if name == "canary" and regression is not None:
            error_after, sigma_after, after_rates = with_regression(
                regression, error_after, sigma_after, after_rates, DECISION_REGRESSIONS
            )
        median = truth.latency_median_ms
        if name == "canary":
            canary = (median, truth.latency_sigma, sigma_after)
        windows[name] = (
            _window(rng, before_rates, truth.error_rate, median, truth.latency_sigma),
            _window(rng, after_rates, error_after, median * latency_factor, sigma_after),
        )
        truths[name] = (level, truth)
    extra = (longest_before() if before is None else before) - STEPS_PER_WINDOW
    if extra > 0:
        draw = earlier if earlier is not None else rng
        for name, (level, truth) in truths.items():
            rates = earlier_rates(draw, level, extra)
            first = _window(
                draw, rates, truth.error_rate, truth.latency_median_ms, truth.latency_sigma
            )
            windows[name] = (joined(first, windows[name][0]), windows[name][1])
    return windows, canary


def quantile_ceiling(
    windows,
    canary: tuple[float, float, float],
    steps: int,
    quantile: float = 0.99,
    before_minutes: int | None = None,
) -> float:
    """The most any judge honouring the p99 rule's allowance can detect of this restart's
    change at one look of ``steps`` after-minutes: the chance that the change of the
    canary's sample p99 — of the raw latencies, not their buckets, with the night's shared
    drift known exactly (no controls needed) — lands beyond the allowance. A judge that
    calls FAIL below that point fails changes at the allowance more than half the time.
    The sample quantile's log has variance ``q(1 − q) / (n · f²)`` with ``f`` the density
    of log latency at the quantile (``φ(z_q) / σ`` for a log-normal); the allowance is the
    rule's (+20 % and +5 ms, the larger). The before-window is the rule's own
    (``before_minutes`` steps instead, when given)."""
    rule = next(
        r
        for r in judges.default_rules()
        if r.spec.type.value == "histogram" and (r.spec.judge.quantile or 0.99) == quantile
    )
    judging = rule.spec.judge
    before, after = windows["canary"]
    z = float(stats.norm.ppf(quantile))
    density = float(stats.norm.pdf(z))
    median, *spreads = canary
    looked = before_steps(rule) if before_minutes is None else before_minutes
    requests = (before.requests[-looked:].sum(), after.requests[:steps].sum())
    variance = sum(
        quantile * (1 - quantile) / (n * (density / sigma) ** 2)
        for n, sigma in zip(requests, spreads, strict=True)
        if n > 0
    )
    change = z * (spreads[1] - spreads[0])  # log p99 after ÷ before, drift aside
    p99_before = median * math.exp(z * spreads[0])
    allowance = max(
        math.log1p(judging.allowed_change.relative or 0.0),
        math.log1p((judging.allowed_change.absolute or 0.0) / p99_before),
    )
    return float(stats.norm.cdf((change - allowance) / math.sqrt(variance)))


def _first(window: WindowData, steps: int) -> WindowData:
    return WindowData(
        window.requests[:steps], window.errors[:steps], window.buckets[:steps], window.bounds
    )


def _inputs(windows, steps: int, fail_when: str | None = None) -> list[RuleInput]:
    inputs = []
    for rule in judges.default_rules(fail_when):
        looked = before_steps(rule)
        observe = {
            n: (
                judges.observation(rule, last_steps(b, looked)),
                judges.observation(rule, _first(a, steps)),
            )
            for n, (b, a) in windows.items()
        }
        controls = {n: o for n, o in observe.items() if n != "canary"}
        inputs.append(
            RuleInput(
                rule=rule,
                namespace="canary",
                before=observe["canary"][0],
                after=observe["canary"][1],
                controls_before={n: b for n, (b, _) in controls.items() if b is not None},
                controls_after={n: a for n, (_, a) in controls.items() if a is not None},
            )
        )
    return inputs


def _verdict(results) -> Verdict:
    return combine_rule_results("canary", tuple(results)).verdict


def fixed_windows(windows, fail_when: str | None = None) -> tuple[Verdict, int]:
    """The engine today: verdict and minutes from the restart."""
    verdict = Verdict.INCONCLUSIVE
    for extension in range(EXTENSIONS + 1):
        steps = STEPS_PER_WINDOW * (1 + extension)
        verdict = _verdict(judge_rule(data) for data in _inputs(windows, steps, fail_when))
        if verdict is not Verdict.INCONCLUSIVE:
            return verdict, SETTLE_MINUTES + steps
    return verdict, SETTLE_MINUTES + AFTER_STEPS


def anytime(windows, fail_when: str | None = None) -> tuple[Verdict, int]:
    """A look after every step: verdict and minutes from the restart."""
    references = None
    verdict = Verdict.INCONCLUSIVE
    for steps in range(1, AFTER_STEPS + 1):
        inputs = _inputs(windows, steps, fail_when)
        if references is None:
            references = [reference_error(data) for data in inputs]
        verdict = _verdict(
            judge_look(data, reference, scheduled=steps % STEPS_PER_WINDOW == 0)
            for data, reference in zip(inputs, references, strict=True)
        )
        if verdict is not Verdict.INCONCLUSIVE:
            return verdict, SETTLE_MINUTES + steps
    return verdict, SETTLE_MINUTES + AFTER_STEPS


def _summary(outcomes: list[tuple[Verdict, int]], wanted: Verdict) -> dict:
    count = len(outcomes)
    minutes = sorted(m for v, m in outcomes if v is wanted)

    def share(verdict: Verdict) -> tuple[float | None, list[float] | None]:
        hits = sum(v is verdict for v, _ in outcomes)
        if not count:
            return None, None
        found = stats.binomtest(hits, count).proportion_ci(0.95, "wilson")
        return hits / count, [float(found.low), float(found.high)]

    fail, fail_ci = share(Verdict.FAIL)
    passed, pass_ci = share(Verdict.PASS)
    return {
        "restarts": count,
        "fail_rate": fail,
        "fail_95ci": fail_ci,
        "pass_rate": passed,
        "pass_95ci": pass_ci,
        "minutes_median": float(np.median(minutes)) if minutes else None,
        "minutes_p90": float(np.percentile(minutes, 90)) if minutes else None,
        "decided": wanted.value,
    }


def run_time_to_decision(
    per_case: int,
    seed: int,
    progress: Callable[[int], None] | None = None,
    fail_when: str | None = None,
    only: tuple[str, ...] | None = None,
) -> dict:
    """``per_case`` seeded restarts per case, judged both ways on the same data; ``only``:
    these cases alone (each keeps its own seed, so the figures match a run of all)."""
    cases = {}
    for offset, (name, regression, rps, wanted) in enumerate(DECISION_CASES):
        if only is not None and name not in only:
            continue
        rng = np.random.default_rng(seed * 7919 + offset)
        # the minutes before the last 10: their own draws (see the module's docstring)
        earlier = np.random.default_rng(seed * 7919 + offset + EARLIER_STREAM)
        fixed, sequential = [], []
        longest = longest_before()
        ceilings: dict[int, list[float]] = {STEPS_PER_WINDOW: [], AFTER_STEPS: []}
        short: dict[int, list[float]] = {STEPS_PER_WINDOW: [], AFTER_STEPS: []}
        for _ in range(per_case):
            windows, canary = _restart(rng, regression, rps, earlier, longest)
            fixed.append(fixed_windows(windows, fail_when))
            sequential.append(anytime(windows, fail_when))
            if regression is not None and regression.startswith("p99"):
                for steps, values in ceilings.items():
                    values.append(quantile_ceiling(windows, canary, steps))
                    short[steps].append(
                        quantile_ceiling(windows, canary, steps, before_minutes=STEPS_PER_WINDOW)
                    )
            if progress:
                progress(1)
        cases[name] = {
            "regression": regression,
            "rps": rps,
            "fixed_windows": _summary(fixed, wanted),
            "anytime_valid": _summary(sequential, wanted),
        }
        if ceilings[STEPS_PER_WINDOW]:
            # the most a judge honouring the allowance detects at one look (quantile_ceiling),
            # with the p99 rule's own before-window, and with a 10-minute one for comparison
            cases[name]["allowance_ceiling"] = {
                f"{steps}min": float(np.mean(values)) for steps, values in ceilings.items()
            }
            cases[name]["allowance_ceiling_10min_before"] = {
                f"{steps}min": float(np.mean(values)) for steps, values in short.items()
            }
    return {
        "restarts_per_case": per_case,
        "seed": seed,
        "settle_minutes": SETTLE_MINUTES,
        "after_minutes_max": AFTER_STEPS,
        "alpha": "each rule's own (1 %)",
        "before_minutes": {rule.name: before_steps(rule) for rule in judges.default_rules()},
        "cases": cases,
    }
