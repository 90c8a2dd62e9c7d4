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

Quiet namespaces (``core.quiet``): per namespace a request rate drawn log-uniformly or from a
heavy-tailed mix (``TRAFFIC_MIXES``); the plan ordered by each namespace's forecast traffic
(its rate on previous nights, drawn around the truth) unless ``order="given"``; rules too thin
for a namespace judged by the quiet policy (pooled with the wave's other quiet namespaces,
the revision's verdicts on busier namespaces before it, or held); volume-free health gates
fed with per-namespace restart counts (a crash loop is a regression of its own kind). A
regression is injected into the canary, into every namespace on the new revision, or into
one quiet namespace only (``regression_in``).

Each rule reads its own before-window (``spec.judge.beforeWindow``: an hour for the p99
rules), as the service does: the minutes before the 10-minute window are drawn for every
namespace, and a namespace restarted inside a rule's window (an earlier wave, less than an
hour ago) is no control for that rule; when no control is left, the rule reads the
10-minute window (``service.analysis``'s fallback). ``rule_before_windows=False`` judges
every rule on 10 minutes, as the benchmark did before.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from scipy import stats

from analyzer.bench import judges
from analyzer.bench.judges import before_steps, longest_before
from analyzer.bench.scenarios import (
    ADDITIVE_SHIFT_MAX,
    DRIFT_MODELS,
    REGRESSIONS,
    STEPS_PER_WINDOW,
    NamespaceTruth,
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
from analyzer.core.multiplicity import NightBudget, night_alpha
from analyzer.core.observations import Observation
from analyzer.core.plan_order import order_by_evidence
from analyzer.core.quiet import (
    Evidence,
    HealthSignals,
    QuietPolicy,
    WaveContext,
)
from analyzer.core.rules import Rule, RuleSet
from analyzer.core.sequential import judge_look, reference_error
from analyzer.core.upgrade import split_waves
from analyzer.core.verdicts import RuleResult, Verdict, combine_rule_results
from analyzer.service.analysis import judge_quiet_wave, pool_slots, spend_night_budget
from analyzer.service.before_windows import lacks_controls

#: Namespaces' request rates are drawn log-uniformly from this range (rps). Below ~5 rps
#: a default window holds too little evidence to pass (per restart: 94 % inconclusive at
#: 0.5 rps, 15 % at 5), so a night with such a namespace is held for a person by design.
NIGHT_TRAFFIC_RANGE = (10.0, 200.0)
#: How a night ends.
OUTCOMES = ("promoted", "rolled_back", "held")
#: How namespaces' request rates are drawn within the traffic range: ``log-uniform``, or
#: ``heavy-tailed`` (a Pareto tail of shape 1 truncated to the range: most namespaces near
#: the low end, a few busy ones carry most of the traffic).
TRAFFIC_MIXES = ("log-uniform", "heavy-tailed")
#: Where an injected regression lives: the canary (the plan's first namespace), every
#: namespace on the new revision, or one quiet namespace alone (at ``quiet_rps``).
REGRESSION_SCOPES = ("canary", "all", "one-quiet")
#: A regression kind of its own: containers crash-looping after the restart (traffic as
#: before: at night a crash-looping pod may serve almost nothing).
CRASH_LOOP = "crash-loop"
#: Regressions only the night benchmark injects (a quiet namespace's own large regression).
NIGHT_REGRESSIONS = {"errors+5pp": 0.05}
#: Every regression ``NightConfig.regression`` accepts.
NIGHT_REGRESSION_KINDS = (*REGRESSIONS, *NIGHT_REGRESSIONS, CRASH_LOOP)
#: Previous nights' traffic in the same hours, relative to tonight's: log-normal spread.
FORECAST_SPREAD = 0.3


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
    #: how rates are drawn within ``traffic`` (one of ``TRAFFIC_MIXES``)
    traffic_mix: str = "log-uniform"
    #: the plan's order: ``evidence`` (busiest forecast first, quiet last) or ``given``
    order: str = "evidence"
    #: every rule's quiet policy (``core.quiet.QuietPolicy`` value)
    quiet: str = QuietPolicy.POOL.value
    #: a key of ``REGRESSIONS`` or ``CRASH_LOOP``, placed by ``regression_in``
    regression: str | None = None
    regression_in: str = "canary"
    #: ``regression_in="one-quiet"``: the regressed namespace's rate (rps)
    quiet_rps: float = 0.2
    #: each rule on its own before-window (``spec.judge.beforeWindow``), as the service
    #: judges; False: every rule on the 10-minute window
    rule_before_windows: bool = True


@dataclass
class NightTally:
    """How the nights of one configuration ended, and in which wave."""

    outcomes: Counter = field(default_factory=Counter)
    looks: int = 0  # judgements made, over all nights (each wave's first look and extensions)
    minutes: list[float] = field(default_factory=list)  # per night, restart of wave 1 to the end
    #: per rolled-back night with a regression: namespaces on the bad revision when the
    #: rollback started
    moved_at_rollback: list[int] = field(default_factory=list)
    #: which evidence judged each namespace of promoted nights
    evidence: Counter = field(default_factory=Counter)
    #: nights whose regressed namespace ended promoted (``regression_in="one-quiet"``)
    regressed_promoted: int = 0
    #: how the regressed quiet namespace's night ended, by the evidence that stopped it
    regressed_stopped_by: Counter = field(default_factory=Counter)

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
            "moved_at_rollback_median": float(np.median(self.moved_at_rollback))
            if self.moved_at_rollback
            else None,
            "evidence_per_namespace": dict(self.evidence),
            "regressed_namespace_promoted": self.regressed_promoted,
            "regressed_namespace_stopped_by": dict(self.regressed_stopped_by),
        }


@dataclass(frozen=True)
class _Traffic:
    """One namespace over one wave: its before window, the longest after window, and the
    minutes before the before window the rules' own before-windows reach (None: none)."""

    before: WindowData
    after: WindowData
    earlier: WindowData | None = None

    def before_steps(self, steps: int) -> WindowData:
        """The last ``steps`` minutes before the restart (at most what was drawn)."""
        if steps == len(self.before.requests) or self.earlier is None:
            return self.before
        return last_steps(joined(self.earlier, self.before), steps)

    def after_look(self, look: int) -> WindowData:
        """The after-window at ``look`` (0: the default length; k: k windows longer)."""
        return self.after_steps(STEPS_PER_WINDOW * (1 + look))

    def after_steps(self, steps: int) -> WindowData:
        """The after-window's first ``steps`` steps."""
        return WindowData(
            self.after.requests[:steps], self.after.errors[:steps], self.after.buckets[:steps]
        )


def _with_night_regression(kind: str, error_rate: float, sigma: float, rates: np.ndarray):
    """``scenarios.with_regression``, and the night benchmark's own error regressions."""
    if kind in NIGHT_REGRESSIONS:
        return error_rate + NIGHT_REGRESSIONS[kind], sigma, rates
    return with_regression(kind, error_rate, sigma, rates)


def _wave_traffic(
    rng: np.random.Generator,
    truths: dict[str, NamespaceTruth],
    max_extensions: int,
    regressed: dict[str, str],
    earlier: tuple[np.random.Generator, int] | None = None,
) -> dict[str, _Traffic]:
    """Every namespace's windows around one wave's restart, under one night drift.
    ``earlier``: a generator of its own and the minutes to draw before each before window
    (its own stream, so the nights' other draws stay what they were without it)."""
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
            error_after, sigma_after, rates_after = _with_night_regression(
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
    if earlier is not None:  # after the loop: the main stream's draws are untouched
        draws, steps = earlier
        for name, truth in truths.items():
            window = _window(draws, earlier_rates(draws, truth.rps, steps), truth.error_rate,
                             truth.latency_median_ms, truth.latency_sigma)  # fmt: skip
            traffic[name] = replace(traffic[name], earlier=window)
    return traffic


@dataclass(frozen=True)
class _Before:
    """A rule's before-window observations at a wave's restart: its own window's
    (controls restarted inside it left out), and the 10-minute window's with every control
    clean in it, which the service falls back on when the own window leaves the rule no
    usable control (None: the rule reads 10 minutes anyway)."""

    own: dict[str, Observation | None]
    short: dict[str, Observation | None] | None = None

    def chosen(self, rule: Rule, wave: Sequence[str], after, controls: Sequence[str]):
        """The observations the service judges ``wave`` on (``service.analysis``): the
        own window's, unless no result could use a control there and the 10-minute
        window's could."""
        if self.short is None:
            return self.own

        def results(before):
            return [judge_rule(_rule_input(rule, n, before, after, controls)) for n in wave]

        if not lacks_controls(rule, controls, results(self.own)):
            return self.own
        return self.own if lacks_controls(rule, controls, results(self.short)) else self.short


def _before_by_rule(
    rules: RuleSet,
    wave: Sequence[str],
    traffic: dict[str, _Traffic],
    restarted: dict[str, float],
    now: float,
    own_windows: bool,
) -> dict[str, _Before]:
    """Each rule's before-window observations at a wave's restart (``now``, minutes into
    the night): its own window when ``own_windows``, the controls restarted inside it left
    out (``service.analysis.AnalysisRequest.controls_for``), or the 10-minute window when no
    control is left (the service's fallback)."""

    def clean(steps: int) -> list[str]:  # the wave, and controls not restarted since
        return [n for n in traffic if n in wave or restarted.get(n, -math.inf) < now - steps]

    def observed(rule: Rule, steps: int, kept: list[str]) -> dict[str, Observation | None]:
        return {
            n: judges.observation(rule, t.before_steps(steps)) if n in kept else None
            for n, t in traffic.items()
        }

    found: dict[str, _Before] = {}
    for rule in rules:
        steps = before_steps(rule)
        if not own_windows or steps == STEPS_PER_WINDOW:  # as the benchmark judged before
            found[rule.name] = _Before(observed(rule, STEPS_PER_WINDOW, list(traffic)))
            continue
        short = observed(rule, STEPS_PER_WINDOW, clean(STEPS_PER_WINDOW))
        kept = clean(steps)
        if rule.spec.judge.use_controls and not any(n not in wave for n in kept):
            found[rule.name] = _Before(short)
        else:
            found[rule.name] = _Before(observed(rule, steps, kept), short)
    return found


@dataclass(frozen=True)
class _WaveVerdicts:
    """One look at one wave: each namespace's verdict and the evidence that judged it."""

    verdicts: dict[str, Verdict]
    evidence: dict[str, Evidence]


def _judge_wave(
    rules: RuleSet,
    wave: Sequence[str],
    traffic: dict[str, _Traffic],
    before_by_rule: dict[str, _Before],
    look: int,
    budget: NightBudget | None,
    quiet: WaveContext | None = None,
    policy: QuietPolicy = QuietPolicy.HOLD,
) -> _WaveVerdicts:
    """One look at one wave: every rule on every namespace of the wave, the others as
    controls; with a budget, re-judged at the wave's Holm alphas as the engine does; then
    the quiet namespaces' thin rules judged by ``policy`` (``core.quiet.judge_wave``).
    ``before_by_rule`` holds the before-windows' observations, the same at every look."""
    controls = [name for name in traffic if name not in wave]
    per_rule: dict[str, list[RuleResult]] = {name: [] for name in wave}
    inputs: dict[tuple[str, str], RuleInput] = {}
    for rule in rules:
        after = {n: judges.observation(rule, t.after_look(look)) for n, t in traffic.items()}
        before = before_by_rule[rule.name].chosen(rule, wave, after, controls)
        for name in wave:
            data = _rule_input(rule, name, before, after, controls)
            inputs[(name, rule.name)] = data
            per_rule[name].append(judge_rule(data))
    policies = {rule.name: policy for rule in rules}
    if budget is not None:  # a wave's pools are tests of its Holm family, as in the engine
        pooled = pool_slots(rules, len(per_rule), policies) if quiet is not None else 0
        per_rule = spend_night_budget(per_rule, inputs, rules, budget, pooled=pooled)
    if quiet is None:
        return _WaveVerdicts(
            {n: combine_rule_results(n, tuple(r)).verdict for n, r in per_rule.items()},
            dict.fromkeys(per_rule, Evidence.OWN),
        )
    judged = judge_quiet_wave(per_rule, inputs, rules, quiet, budget, policies)
    return _WaveVerdicts(
        {n: q.verdict.verdict for n, q in judged.items()},
        {n: q.evidence for n, q in judged.items()},
    )


#: Minutes between a wave's restart and the start of its after-window.
SETTLE_MINUTES = 2


@dataclass
class NightResult:
    """How one night ended, and what the tally records of it."""

    outcome: str
    looks: int
    minutes: float
    #: namespaces on the new revision when the night ended (at a rollback: those it moves back)
    moved: int = 0
    #: the evidence that judged each namespace the night decided
    evidence: dict[str, Evidence] = field(default_factory=dict)
    #: the regressed namespace (``regression_in="one-quiet"``), if any
    regressed: str | None = None


def run_night(config: NightConfig, rng: np.random.Generator, rules: RuleSet) -> tuple[str, int]:
    """One night: how it ended (one of ``OUTCOMES``) and how many looks it took."""
    night = quiet_night(config, rng, rules)
    return night.outcome, night.looks


def timed_night(
    config: NightConfig, rng: np.random.Generator, rules: RuleSet
) -> tuple[str, int, float]:
    """One night: how it ended, how many looks it took, and its minutes — each wave's settle
    time plus the after-window it was judged on, up to the wave's decision."""
    night = quiet_night(config, rng, rules)
    return night.outcome, night.looks, night.minutes


def draw_rate(rng: np.random.Generator, low: float, high: float, mix: str) -> float:
    """One namespace's request rate within ``[low, high]`` (``TRAFFIC_MIXES``)."""
    if mix == "heavy-tailed" and high > low:
        # inverse CDF of a Pareto tail of shape 1 truncated to [low, high]
        u = float(rng.uniform())
        return low / (1.0 - u * (1.0 - low / high))
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def plan_night(
    config: NightConfig, rng: np.random.Generator, rules: RuleSet
) -> tuple[list[str], dict[str, NamespaceTruth], dict[str, str], str | None]:
    """The night's namespaces in plan order, their truths, the regressed ones and the
    regressed quiet namespace (if any)."""
    low, high = config.traffic
    names = [f"ns-{index:03d}" for index in range(config.namespaces)]
    rates = {name: draw_rate(rng, low, high, config.traffic_mix) for name in names}
    regression = config.regression or config.canary_regression
    confined = None
    if regression and config.regression_in == "one-quiet":
        confined = names[-1]
        rates[confined] = config.quiet_rps
    truths = {name: _namespace_truth(rng, rate) for name, rate in rates.items()}
    if config.order == "evidence":
        seconds = STEPS_PER_WINDOW * 60.0
        forecast = {
            name: rate * seconds * float(rng.lognormal(0.0, FORECAST_SPREAD))
            for name, rate in rates.items()
        }
        needed = max((r.spec.judge.min_evidence.requests for r in rules), default=0)
        names = list(order_by_evidence(names, forecast, needed))
    regressed: dict[str, str] = {}
    if regression and config.regression_in == "canary":
        regressed = {names[0]: regression}
    elif regression and config.regression_in == "all":
        regressed = dict.fromkeys(names, regression)
    elif confined is not None and regression:
        regressed = {confined: regression}
    return names, truths, regressed, confined


def quiet_night(config: NightConfig, rng: np.random.Generator, rules: RuleSet) -> NightResult:
    """One night through the plan's order, the quiet policy and the health gates."""
    names, truths, regressed, confined = plan_night(config, rng, rules)
    traffic_regressed = {n: k for n, k in regressed.items() if k != CRASH_LOOP}
    looks_taken, minutes, moved = 0, 0.0, 0
    passed_own: list[str] = []
    restarted: dict[str, float] = {}  # minutes into the night each moved namespace restarted
    extra = longest_before(rules) - STEPS_PER_WINDOW if config.rule_before_windows else 0
    earlier = (rng.spawn(1)[0], extra) if extra > 0 else None
    evidence: dict[str, Evidence] = {}
    for wave in split_waves(names, config.waves):
        moved += len(wave)
        traffic = _wave_traffic(
            rng, truths, config.max_extensions,
            {n: k for n, k in traffic_regressed.items() if n in wave}, earlier,
        )  # fmt: skip
        health = {
            name: HealthSignals(crash_looping=(f"{name}/app-0/app",), restarts=4)
            if regressed.get(name) == CRASH_LOOP
            else HealthSignals(restarts=int(rng.poisson(0.02)))
            for name in wave
        }
        before_by_rule = _before_by_rule(
            rules, wave, traffic, restarted, minutes, config.rule_before_windows
        )
        restarted.update(dict.fromkeys(wave, minutes))
        if config.anytime:
            outcome, looks, steps = _anytime_wave(
                rules, wave, traffic, before_by_rule, config.max_extensions,
                night_alpha(config.night_budget, config.namespaces, len(rules))
                if config.night_budget is not None
                else None,
            )  # fmt: skip
            decided: dict[str, Evidence] = dict.fromkeys(wave, Evidence.OWN)
        else:
            context = WaveContext(passed_before=tuple(passed_own), health=health)
            outcome, looks, steps, decided = _fixed_wave(
                config, rules, wave, traffic, before_by_rule, context
            )
        looks_taken += looks
        minutes += SETTLE_MINUTES + steps
        evidence.update(decided)
        if outcome != "promoted":
            return NightResult(outcome, looks_taken, minutes, moved, evidence, confined)
        passed_own.extend(n for n in wave if decided.get(n) is Evidence.OWN)
    return NightResult("promoted", looks_taken, minutes, moved, evidence, confined)


def _fixed_wave(
    config: NightConfig, rules, wave, traffic, before_by_rule, context: WaveContext
) -> tuple[str, int, int, dict[str, Evidence]]:
    """Judge at the default window, extend when inconclusive: (outcome, looks, steps,
    evidence per namespace at the deciding look)."""
    policy = QuietPolicy(config.quiet)
    judged = _WaveVerdicts({}, {})
    for look in range(config.max_extensions + 1):
        budget = (
            NightBudget(config.night_budget, config.namespaces, look, config.max_extensions + 1)
            if config.night_budget is not None
            else None
        )
        at_look = replace(context, final_look=look == config.max_extensions)
        judged = _judge_wave(rules, wave, traffic, before_by_rule, look, budget, at_look, policy)
        verdicts = judged.verdicts.values()
        steps = STEPS_PER_WINDOW * (1 + look)
        if Verdict.FAIL in verdicts:
            return "rolled_back", look + 1, steps, judged.evidence
        if all(verdict is Verdict.PASS for verdict in verdicts):
            return "promoted", look + 1, steps, judged.evidence
    last = STEPS_PER_WINDOW * (1 + config.max_extensions)
    return "held", config.max_extensions + 1, last, judged.evidence


def _anytime_wave(
    rules, wave, traffic, before_by_rule, max_extensions, alpha: float | None
) -> tuple[str, int, int]:
    """A look after every step of the after-window and its extensions
    (``core.sequential.judge_look``), stopping at the first FAIL or at all PASS. ``alpha``:
    the night budget's even split over namespaces × rules — no share per look, since a
    confidence sequence covers them all (None: each rule's own α; never looser)."""
    controls = [name for name in traffic if name not in wave]
    references: dict[tuple[str, str, bool], float | None] = {}
    last = STEPS_PER_WINDOW * (1 + max_extensions)
    for steps in range(1, last + 1):
        verdicts = []
        for name in wave:
            results = []
            for rule in rules:
                after = {
                    n: judges.observation(rule, traffic[n].after_steps(steps))
                    for n in (name, *controls)
                }
                before = before_by_rule[rule.name].chosen(rule, (name,), after, controls)
                own = 1.0 - rule.spec.judge.confidence
                data = _rule_input(
                    rule, name, before, after, controls,
                    alpha=min(alpha, own) if alpha is not None and rule.spec.critical else None,
                )  # fmt: skip
                key = (name, rule.name, before is before_by_rule[rule.name].short)
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
        night_result = quiet_night(config, rng, rules)
        tally.outcomes[night_result.outcome] += 1
        tally.looks += night_result.looks
        tally.minutes.append(night_result.minutes)
        regression = config.regression or config.canary_regression
        if regression and night_result.outcome == "rolled_back":
            tally.moved_at_rollback.append(night_result.moved)
        if night_result.outcome == "promoted":
            tally.evidence.update(e.value for e in night_result.evidence.values())
        if night_result.regressed is not None:
            if night_result.outcome == "promoted":
                tally.regressed_promoted += 1
            else:
                stopped = night_result.evidence.get(night_result.regressed)
                tally.regressed_stopped_by[
                    f"{night_result.outcome}:{stopped.value if stopped else 'not reached'}"
                ] += 1
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
