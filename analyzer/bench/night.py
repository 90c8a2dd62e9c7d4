"""Whole nights, not single restarts: how often a healthy upgrade night ends rolled back or
held, with and without the night's false-rollback budget.

Why it exists: the per-restart benchmark measures one namespace at a time, but on-call is
woken by nights. A plan of N namespaces judges each of them on every deciding rule, once
per look (the first judgement and its extensions), so per-test false alarms add up with
N; the night budget (``rules.night_budget``) promises they do not. This module replays
seeded nights through the same pieces the engine uses — the waves the plan cuts
(``split_waves``), the controls it picks (every namespace not in the wave), the judge, the
budget's Holm step-down within the wave (``spend_night_budget``) and the namespace verdict
(``combine_rule_results``) — and counts how each night ends: promoted, rolled back (a
FAIL in some wave) or held (still inconclusive after the last extension).

The traffic is the per-restart benchmark's (Poisson counts, long-tailed latency, 10–200
rps per namespace by default, default windows, a night drift per wave that moves every namespace
alike); an extension lengthens the after-window by one window, as the engine does.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import stats

from analyzer.bench import judges
from analyzer.bench.scenarios import (
    ADDITIVE_SHIFT_MAX,
    DRIFT_MODELS,
    STEPS_PER_WINDOW,
    NamespaceTruth,
    WindowData,
    _load_effects,
    _namespace_truth,
    _rate_path,
    _window,
    drifted_error_rate,
    with_regression,
)
from analyzer.core.judge import RuleInput, judge_rule
from analyzer.core.multiplicity import NightBudget, night_alpha
from analyzer.core.observations import Observation
from analyzer.core.rules import Rule, RuleSet
from analyzer.core.sequential import judge_look, reference_error
from analyzer.core.upgrade import split_waves
from analyzer.core.verdicts import RuleResult, Verdict, combine_rule_results
from analyzer.service.analysis import spend_night_budget

#: Namespaces' request rates are drawn log-uniformly from this range (rps). Below ~5 rps
#: a default window holds too little evidence to pass (per restart: 94 % inconclusive at
#: 0.5 rps, 15 % at 5), so a night with such a namespace is held for a person by design.
NIGHT_TRAFFIC_RANGE = (10.0, 200.0)
#: How a night ends.
OUTCOMES = ("promoted", "rolled_back", "held")


@dataclass(frozen=True)
class NightConfig:
    """One kind of night: its size, waves, looks, budget and an optional bad canary."""

    namespaces: int = 25
    waves: tuple[int, ...] = (1, 2, 4)
    max_extensions: int = 2
    night_budget: float | None = None
    #: a key of ``REGRESSIONS`` injected into the canary (the first wave), or None
    canary_regression: str | None = None
    traffic: tuple[float, float] = NIGHT_TRAFFIC_RANGE
    #: judge with anytime-valid looks after every step (each rule's own α) instead of
    #: fixed windows and extensions
    anytime: bool = False


@dataclass
class NightTally:
    """How the nights of one configuration ended, and in which wave."""

    outcomes: Counter = field(default_factory=Counter)
    looks: int = 0  # judgements made, over all nights (each wave's first look and extensions)
    minutes: list[float] = field(default_factory=list)  # per night, restart of wave 1 to the end

    @property
    def nights(self) -> int:
        return sum(self.outcomes.values())

    def share(self, outcome: str) -> float:
        return self.outcomes[outcome] / self.nights if self.nights else 0.0

    def interval(self, outcome: str) -> list[float] | None:
        """The 95 % Wilson interval of ``outcome``'s share."""
        if not self.nights:
            return None
        found = stats.binomtest(self.outcomes[outcome], self.nights).proportion_ci(0.95, "wilson")
        return [float(found.low), float(found.high)]

    def to_dict(self) -> dict:
        return {
            "nights": self.nights,
            **{f"{outcome}_rate": self.share(outcome) for outcome in OUTCOMES},
            **{f"{outcome}_95ci": self.interval(outcome) for outcome in OUTCOMES},
            "looks_per_night": self.looks / self.nights if self.nights else 0.0,
            "minutes_median": float(np.median(self.minutes)) if self.minutes else None,
            "minutes_p90": float(np.percentile(self.minutes, 90)) if self.minutes else None,
        }


@dataclass(frozen=True)
class _Traffic:
    """One namespace over one wave: its before window and the longest after window."""

    before: WindowData
    after: WindowData

    def after_look(self, look: int) -> WindowData:
        """The after-window at ``look`` (0: the default length; k: k windows longer)."""
        return self.after_steps(STEPS_PER_WINDOW * (1 + look))

    def after_steps(self, steps: int) -> WindowData:
        """The after-window's first ``steps`` steps."""
        return WindowData(
            self.after.requests[:steps], self.after.errors[:steps], self.after.buckets[:steps]
        )


def _wave_traffic(
    rng: np.random.Generator,
    truths: dict[str, NamespaceTruth],
    max_extensions: int,
    regressed: dict[str, str],
) -> dict[str, _Traffic]:
    """Every namespace's windows around one wave's restart, under one night drift."""
    drift = float(rng.uniform(0.5, 1.5))
    model = DRIFT_MODELS[int(rng.integers(len(DRIFT_MODELS)))]
    shared_errors = float(rng.uniform(0.0, ADDITIVE_SHIFT_MAX))
    error_factor, latency_factor = _load_effects(drift)
    after_steps = STEPS_PER_WINDOW * (1 + max_extensions)
    traffic: dict[str, _Traffic] = {}
    for name, truth in truths.items():
        rates_before, rates_after = _rate_path(
            rng, truth.rps, drift, float(rng.uniform(0.95, 1.05)), after_steps
        )
        error_after = drifted_error_rate(truth.error_rate, model, error_factor, shared_errors)
        sigma_after = truth.latency_sigma
        if name in regressed:
            error_after, sigma_after, rates_after = with_regression(
                regressed[name], error_after, sigma_after, rates_after
            )
        traffic[name] = _Traffic(
            before=_window(
                rng, rates_before, truth.error_rate, truth.latency_median_ms, truth.latency_sigma
            ),
            after=_window(
                rng, rates_after, error_after, truth.latency_median_ms * latency_factor, sigma_after
            ),
        )
    return traffic


def _judge_wave(
    rules: RuleSet,
    wave: Sequence[str],
    traffic: dict[str, _Traffic],
    before_by_rule: dict[str, dict[str, Observation | None]],
    look: int,
    budget: NightBudget | None,
) -> dict[str, Verdict]:
    """One look at one wave: every rule on every namespace of the wave, the others as
    controls; with a budget, re-judged at the wave's Holm alphas as the engine does.
    ``before_by_rule`` holds the before-windows' observations, the same at every look."""
    controls = [name for name in traffic if name not in wave]
    per_rule: dict[str, list[RuleResult]] = {name: [] for name in wave}
    inputs: dict[tuple[str, str], RuleInput] = {}
    for rule in rules:
        before = before_by_rule[rule.name]
        after = {n: judges.observation(rule, t.after_look(look)) for n, t in traffic.items()}
        for name in wave:
            data = _rule_input(rule, name, before, after, controls)
            inputs[(name, rule.name)] = data
            per_rule[name].append(judge_rule(data))
    if budget is not None:
        per_rule = spend_night_budget(per_rule, inputs, rules, budget)
    return {
        name: combine_rule_results(name, tuple(results)).verdict
        for name, results in per_rule.items()
    }


#: Minutes between a wave's restart and the start of its after-window.
SETTLE_MINUTES = 2


def run_night(config: NightConfig, rng: np.random.Generator, rules: RuleSet) -> tuple[str, int]:
    """One night: how it ended (one of ``OUTCOMES``) and how many looks it took."""
    outcome, looks, _ = timed_night(config, rng, rules)
    return outcome, looks


def timed_night(
    config: NightConfig, rng: np.random.Generator, rules: RuleSet
) -> tuple[str, int, float]:
    """One night: how it ended, how many looks it took, and its minutes — each wave's settle
    time plus the after-window it was judged on, up to the wave's decision."""
    low, high = config.traffic
    names = [f"ns-{index:03d}" for index in range(config.namespaces)]
    truths = {
        name: _namespace_truth(rng, float(math.exp(rng.uniform(math.log(low), math.log(high)))))
        for name in names
    }
    regressed = {names[0]: config.canary_regression} if config.canary_regression else {}
    looks_taken, minutes = 0, 0.0
    for wave in split_waves(names, config.waves):
        traffic = _wave_traffic(rng, truths, config.max_extensions, regressed)
        before_by_rule = {
            rule.name: {n: judges.observation(rule, t.before) for n, t in traffic.items()}
            for rule in rules
        }
        decided = (
            _anytime_wave(
                rules,
                wave,
                traffic,
                before_by_rule,
                config.max_extensions,
                night_alpha(config.night_budget, config.namespaces, len(rules))
                if config.night_budget is not None
                else None,
            )
            if config.anytime
            else _fixed_wave(config, rules, wave, traffic, before_by_rule)
        )
        outcome, looks, steps = decided
        looks_taken += looks
        minutes += SETTLE_MINUTES + steps
        if outcome != "promoted":
            return outcome, looks_taken, minutes
    return "promoted", looks_taken, minutes


def _fixed_wave(config, rules, wave, traffic, before_by_rule) -> tuple[str, int, int]:
    """Judge at the default window, extend when inconclusive: (outcome, looks, steps)."""
    for look in range(config.max_extensions + 1):
        budget = (
            NightBudget(config.night_budget, config.namespaces, look, config.max_extensions + 1)
            if config.night_budget is not None
            else None
        )
        verdicts = _judge_wave(rules, wave, traffic, before_by_rule, look, budget).values()
        steps = STEPS_PER_WINDOW * (1 + look)
        if Verdict.FAIL in verdicts:
            return "rolled_back", look + 1, steps
        if all(verdict is Verdict.PASS for verdict in verdicts):
            return "promoted", look + 1, steps
    return "held", config.max_extensions + 1, STEPS_PER_WINDOW * (1 + config.max_extensions)


def _anytime_wave(
    rules, wave, traffic, before_by_rule, max_extensions, alpha: float | None
) -> tuple[str, int, int]:
    """A look after every step of the after-window and its extensions
    (``core.sequential.judge_look``), stopping at the first FAIL or at all PASS. ``alpha``:
    the night budget's even split over namespaces × rules — no share per look, since a
    confidence sequence covers them all (None: each rule's own α; never looser)."""
    controls = [name for name in traffic if name not in wave]
    references: dict[tuple[str, str], float | None] = {}
    last = STEPS_PER_WINDOW * (1 + max_extensions)
    for steps in range(1, last + 1):
        verdicts = []
        for name in wave:
            results = []
            for rule in rules:
                before = before_by_rule[rule.name]
                after = {
                    n: judges.observation(rule, traffic[n].after_steps(steps))
                    for n in (name, *controls)
                }
                own = 1.0 - rule.spec.judge.confidence
                data = _rule_input(
                    rule, name, before, after, controls,
                    alpha=min(alpha, own) if alpha is not None and rule.spec.critical else None,
                )  # fmt: skip
                key = (name, rule.name)
                if key not in references:
                    references[key] = reference_error(data)
                results.append(
                    judge_look(data, references[key], scheduled=steps % STEPS_PER_WINDOW == 0)
                )
            verdicts.append(combine_rule_results(name, tuple(results)).verdict)
        if Verdict.FAIL in verdicts:
            return "rolled_back", steps, steps
        if all(verdict is Verdict.PASS for verdict in verdicts):
            return "promoted", steps, steps
    return "held", last, last


def run_nights(
    config: NightConfig,
    nights: int,
    seed: int,
    progress: Callable[[int], None] | None = None,
) -> NightTally:
    """``nights`` seeded nights of one configuration."""
    rules = judges.default_rules()
    tally = NightTally()
    for night in range(nights):
        # each night from its own seed: every configuration judges the very same nights
        rng = np.random.default_rng([seed, night])
        outcome, looks, minutes = timed_night(config, rng, rules)
        tally.outcomes[outcome] += 1
        tally.looks += looks
        tally.minutes.append(minutes)
        if progress:
            progress(1)
    return tally


def night_study(
    config: NightConfig,
    nights: int,
    seed: int,
    progress: Callable[[int], None] | None = None,
) -> dict[str, NightTally]:
    """The same seeded nights judged at each rule's own alpha and, when the configuration
    has one, again with its night budget: ``{"rules_alpha": …, "night_budget": …}``."""
    runs = {"rules_alpha": replace(config, night_budget=None, anytime=False)}
    if config.night_budget is not None:
        runs["night_budget"] = replace(config, anytime=False)
    if config.anytime:
        runs["anytime"] = replace(config, night_budget=None)
        if config.night_budget is not None:
            runs["anytime_night_budget"] = config
    return {key: run_nights(each, nights, seed, progress) for key, each in runs.items()}


def _rule_input(
    rule: Rule,
    name: str,
    before: dict[str, Observation | None],
    after: dict[str, Observation | None],
    controls: Sequence[str],
    alpha: float | None = None,
) -> RuleInput:
    """One namespace's judge input, its controls being those with data in each window."""
    return RuleInput(
        rule=rule,
        namespace=name,
        before=before[name],
        after=after[name],
        controls_before={c: o for c in controls if (o := before[c]) is not None},
        controls_after={c: o for c in controls if (o := after[c]) is not None},
        alpha=alpha,
    )
