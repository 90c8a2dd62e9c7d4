"""Runs every judge on the same seeded scenarios and scores them.

Scores (the ``bench judge`` output contract):

- ``false_rollback_rate``: FAIL among healthy scenarios (all traffic levels);
- ``inconclusive_rate``: INCONCLUSIVE among all scenarios;
- ``detection[kind]``: FAIL among scenarios with that regression and ≥ 10 rps
  (``detection_counts[kind]``: the FAILs and the scenarios, for intervals);
- ``by_traffic``: the same per canary traffic level, plus how many regressions each judge
  let through as PASS (the dangerous miss), and the physical limit beside them.

The physical limit is the power of an ideal one-sided two-proportion z test (α = 1 %) that
knows there is no drift, computed per scenario from its true error rate and expected
request counts, averaged over the ``errors+1pp`` scenarios of the traffic level. It is
given twice: the test's exact power (summed over every count the windows can show) and
the normal approximation of it. They agree from a few dozen errors per window; below
that the approximation promises power the test does not have (3 % at 0.05 rps, where the
test itself never rejects).

The main table has a few dozen ``errors+1pp`` scenarios per traffic level — too few to
read "within 0.9× of the limit" off it. The limit study (``run_limit_study``) judges a few
hundred more per level, healthy and ``errors+1pp`` in turn, with our judge only, and puts
its detection beside the limit on the same scenarios.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from scipy import stats

from analyzer.bench import judges
from analyzer.bench.allowance import run_allowance_study
from analyzer.bench.calibration import calibration_cells, run_calibration
from analyzer.bench.decisions import DECISION_CASES, run_time_to_decision
from analyzer.bench.scenarios import (
    REGRESSIONS,
    STEP_SECONDS,
    STEPS_PER_WINDOW,
    TRAFFIC_LEVELS,
    Scenario,
    best_unbiased_power,
    exact_ideal_power,
    generate,
    ideal_power,
    reference_limit,
)
from analyzer.core.multiplicity import night_alpha
from analyzer.core.verdicts import Verdict

JUDGE_NAMES = ("ours", "flagger", "kayenta", "naive")
DETECTION_MIN_RPS = 10.0
LIMIT_KIND = "errors+1pp"


@dataclass(frozen=True)
class BenchConfig:
    """How the judge benchmark runs."""

    scenarios: int = 2000
    seed: int = 1
    #: scenarios per traffic level in the limit study (0: no study)
    limit_scenarios: int = 0
    #: ours: the night's false-rollback budget and the namespaces it is spread over; None:
    #: each rule's own confidence (the default rules: 99 %, alpha 1 % per test)
    night_budget: float | None = None
    night_namespaces: int | None = None
    rules: int = 4
    #: healthy real-shaped restarts per calibration cell (layout × shape × traffic; 0: none)
    calibration_scenarios: int = 0
    #: restarts per regression kind in the time-to-decision study (0: none)
    decision_scenarios: int = 0
    #: ours: every rule's ``judge.failWhen`` (None: the rules as shipped)
    fail_when: str | None = None
    #: errors +0.5 pp (and as many healthy) against a +0.25 pp allowance (0: none)
    allowance_scenarios: int = 0

    @property
    def alpha(self) -> float | None:
        if self.night_budget is None or self.night_namespaces is None:
            return None
        return night_alpha(self.night_budget, self.night_namespaces, self.rules)


@dataclass
class Tally:
    """Counts of verdicts for one judge within one group of scenarios."""

    total: int = 0
    fail: int = 0
    inconclusive: int = 0
    passed: int = 0

    def add(self, verdict: Verdict) -> None:
        self.total += 1
        if verdict is Verdict.FAIL:
            self.fail += 1
        elif verdict is Verdict.PASS:
            self.passed += 1
        else:
            self.inconclusive += 1

    def share(self, what: str) -> float | None:
        return getattr(self, what) / self.total if self.total else None


@dataclass
class JudgeScores:
    """Everything the report needs about one judge."""

    healthy: Tally = field(default_factory=Tally)
    everything: Tally = field(default_factory=Tally)
    detection: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_level: dict[float, dict[str, Tally]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(Tally))
    )


@dataclass
class BenchResult:
    """Scores per judge, the physical limit per traffic level, and the configuration."""

    config: BenchConfig
    alpha: float | None
    scores: dict[str, JudgeScores]
    limit: dict[float, float]
    limit_normal: dict[float, float]
    reference: dict[float, float]
    counts: dict[str, int]
    limit_study: dict[float, LevelStudy] = field(default_factory=dict)
    calibration: dict | None = None
    time_to_decision: dict | None = None
    allowance_study: dict | None = None

    def to_dict(self) -> dict:
        judges_out = {}
        for name, s in self.scores.items():
            by_traffic = {}
            for level in TRAFFIC_LEVELS:
                groups = s.by_level.get(level, {})
                healthy = groups.get("healthy", Tally())
                everything = groups.get("all", Tally())
                by_traffic[_level_key(level)] = {
                    "false_rollback_rate": healthy.share("fail"),
                    "inconclusive_rate": everything.share("inconclusive"),
                    "detection": {k: groups.get(k, Tally()).share("fail") for k in REGRESSIONS},
                    "missed_as_pass": {
                        k: groups.get(k, Tally()).share("passed") for k in REGRESSIONS
                    },
                    "scenarios": everything.total,
                }
            judges_out[name] = {
                "false_rollback_rate": s.healthy.share("fail") or 0.0,
                "inconclusive_rate": s.everything.share("inconclusive") or 0.0,
                "detection": {k: s.detection[k].share("fail") or 0.0 for k in REGRESSIONS},
                "detection_counts": {
                    k: {"fail": s.detection[k].fail, "scenarios": s.detection[k].total}
                    for k in REGRESSIONS
                },
                "healthy_counts": {"fail": s.healthy.fail, "scenarios": s.healthy.total},
                "by_traffic": by_traffic,
            }
        return {
            "judges": judges_out,
            "physical_limit": {
                "kind": LIMIT_KIND,
                "alpha": 0.01,
                "test": "one-sided two-proportion z test, no drift",
                "by_traffic": {_level_key(k): v for k, v in self.limit.items()},
                "normal_approximation": {_level_key(k): v for k, v in self.limit_normal.items()},
                "reference_1pct_base": {_level_key(k): v for k, v in self.reference.items()},
            },
            "limit_study": {
                _level_key(level): study.to_dict() for level, study in self.limit_study.items()
            },
            "config": {
                "scenarios": self.config.scenarios,
                "seed": self.config.seed,
                "windows": {"before": "10m", "after": "10m", "step": "1m"},
                "drift": "traffic ×[0.5, 1.5] across the windows, every namespace alike",
                "ours_alpha_per_test": self.alpha if self.alpha is not None else 0.01,
                "night_budget": self.config.night_budget,
                "night_namespaces": self.config.night_namespaces,
                "detection_min_rps": DETECTION_MIN_RPS,
                "limit_scenarios_per_level": self.config.limit_scenarios,
                "calibration_scenarios_per_cell": self.config.calibration_scenarios,
                "decision_scenarios_per_case": self.config.decision_scenarios,
                "allowance_scenarios_per_kind": self.config.allowance_scenarios,
                "fail_when": self.config.fail_when or "as shipped (estimate-beyond)",
                "fail_rule": FAIL_RULES[self.config.fail_when or "estimate-beyond"],
            },
            "counts": self.counts,
            **({"calibration": self.calibration} if self.calibration is not None else {}),
            **(
                {"time_to_decision": self.time_to_decision}
                if self.time_to_decision is not None
                else {}
            ),
            **(
                {"allowance_study": self.allowance_study}
                if self.allowance_study is not None
                else {}
            ),
        }


#: How our judge calls a FAIL, per ``judge.failWhen`` (the JSON ``config.fail_rule``).
FAIL_RULES = {
    "estimate-beyond": "the change is significant against no change at the rule's confidence "
    "and its estimate is beyond the allowance",
    "beyond-allowance": "the change beyond the allowance is certain at the rule's confidence",
}


def _level_key(level: float) -> str:
    return f"{level:g}rps"


def judge_functions(
    alpha: float | None, fail_when: str | None = None
) -> dict[str, Callable[[Scenario], judges.JudgeOutcome]]:
    return {
        "ours": judges.ours(alpha, fail_when),
        "flagger": judges.flagger,
        "kayenta": judges.kayenta,
        "naive": judges.naive,
    }


def run(config: BenchConfig, progress: Callable[[int], None] | None = None) -> BenchResult:
    """Generate the scenarios and score every judge on them; then the limit study, if asked.
    ``progress`` is called once per scenario judged: ``total_scenarios(config)`` in all."""
    alpha = config.alpha
    functions = judge_functions(alpha, config.fail_when)
    scores = {name: JudgeScores() for name in functions}
    limits: dict[float, list[float]] = defaultdict(list)
    normal: dict[float, list[float]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    # the rules' own before-windows (the p99 rules' hour): minutes drawn before each
    # scenario's 10-minute before-window, from their own stream (``scenarios.generate``)
    earlier = judges.longest_before() - STEPS_PER_WINDOW
    for scenario in generate(config.scenarios, config.seed, earlier_steps=earlier):
        kind = scenario.regression or "healthy"
        counts[kind] += 1
        if scenario.regression == LIMIT_KIND:
            limits[scenario.traffic].append(scenario_limit(scenario))
            normal[scenario.traffic].append(scenario_limit(scenario, ideal_power))
        for name, function in functions.items():
            verdict = function(scenario).verdict
            record(scores[name], scenario, verdict)
        if progress:
            progress(1)
    study = (
        run_limit_study(config.limit_scenarios, config.seed, alpha, progress, config.fail_when)
        if config.limit_scenarios
        else {}
    )
    calibration = (
        run_calibration(
            config.calibration_scenarios,
            config.seed,
            alpha,
            progress=progress,
            fail_when=config.fail_when,
        )
        if config.calibration_scenarios
        else None
    )
    decisions = (
        run_time_to_decision(
            config.decision_scenarios, config.seed, progress=progress, fail_when=config.fail_when
        )
        if config.decision_scenarios
        else None
    )
    allowance = (
        run_allowance_study(
            config.allowance_scenarios, config.seed, progress=progress, fail_when=config.fail_when
        )
        if config.allowance_scenarios
        else None
    )
    return BenchResult(
        config=config,
        alpha=alpha,
        scores=scores,
        limit=_means(limits),
        limit_normal=_means(normal),
        reference={level: reference_limit(level) for level in TRAFFIC_LEVELS},
        counts=dict(counts),
        limit_study=study,
        calibration=calibration,
        time_to_decision=decisions,
        allowance_study=allowance,
    )


def total_scenarios(config: BenchConfig) -> int:
    return (
        config.scenarios
        + config.limit_scenarios * len(TRAFFIC_LEVELS)
        + config.calibration_scenarios * calibration_cells()
        + config.decision_scenarios * len(DECISION_CASES)
        + 2 * config.allowance_scenarios
    )


def _means(values: Mapping[float, list[float]]) -> dict[float, float]:
    return {key: sum(v) / len(v) for key, v in sorted(values.items()) if v}


def scenario_limit(
    scenario: Scenario, power: Callable[[float, float, int, int], float] = exact_ideal_power
) -> float:
    """An ideal test's power for +1 pp on this scenario's canary: its true error rate and
    expected request counts (the after window's scaled by the night's traffic drift)."""
    expected = scenario.traffic * STEPS_PER_WINDOW * STEP_SECONDS
    before, after = round(expected), round(expected * scenario.drift)
    return power(scenario.canary.error_rate, 0.01, before, after)


#: The ideal tests the limit study puts beside our detection, by their output key.
STUDY_POWERS: dict[str, Callable[[float, float, int, int], float]] = {
    "limit": exact_ideal_power,
    "limit_normal_approximation": ideal_power,
    "best_unbiased_test": best_unbiased_power,
}


#: Below this limit (the ideal test's power) the limit study gives no share of it.
SHARE_MIN_LIMIT = 0.01


@dataclass
class LevelStudy:
    """Our judge on many scenarios of one traffic level: ``errors+1pp`` detection next to
    the physical limit on the same scenarios, and false rollbacks on as many healthy ones."""

    regressions: Tally = field(default_factory=Tally)
    healthy: Tally = field(default_factory=Tally)
    everything: Tally = field(default_factory=Tally)
    #: per ideal test (STUDY_POWERS), its power summed over the errors+1pp scenarios
    powers: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STUDY_POWERS, 0.0))

    def add(self, scenario: Scenario, verdict: Verdict) -> None:
        self.everything.add(verdict)
        if scenario.regression is None:
            self.healthy.add(verdict)
            return
        self.regressions.add(verdict)
        for key, power in STUDY_POWERS.items():
            self.powers[key] += scenario_limit(scenario, power)

    def to_dict(self) -> dict:
        count = self.regressions.total
        means = {key: total / count if count else None for key, total in self.powers.items()}
        detection = self.regressions.share("fail")
        interval = (
            stats.binomtest(self.regressions.fail, count).proportion_ci(0.95, "wilson")
            if count
            else None
        )
        # a share of a limit near zero says nothing (no test can detect there)
        limit = means["limit"] if (means["limit"] or 0.0) >= SHARE_MIN_LIMIT else None
        return {
            "scenarios": self.everything.total,
            "detection": detection,
            "detection_95ci": [interval.low, interval.high] if interval else None,
            **means,
            "share_of_limit": _quotient(detection, limit),
            # the detection interval over the limit: at a few hundred scenarios per level the
            # share moves by ±30 % at 0.5 rps, so read it with its interval
            "share_of_limit_95ci": [_quotient(interval.low, limit), _quotient(interval.high, limit)]
            if interval and limit
            else None,
            "share_of_normal_limit": _quotient(detection, means["limit_normal_approximation"]),
            "false_rollback_rate": self.healthy.share("fail"),
            "inconclusive_rate": self.everything.share("inconclusive"),
        }


def _quotient(part: float | None, whole: float | None) -> float | None:
    return part / whole if part is not None and whole else None


def run_limit_study(
    per_level: int,
    seed: int,
    alpha: float | None = None,
    progress: Callable[[int], None] | None = None,
    fail_when: str | None = None,
) -> dict[float, LevelStudy]:
    """``per_level`` scenarios at every traffic level, healthy and ``errors+1pp`` in turn,
    judged by our judge only."""
    judge = judges.ours(alpha, fail_when)
    studies: dict[float, LevelStudy] = {}
    for offset, level in enumerate(TRAFFIC_LEVELS):
        study = studies[level] = LevelStudy()
        for scenario in generate(
            per_level, seed * 1000 + offset, levels=(level,), regressions=(LIMIT_KIND, None)
        ):
            study.add(scenario, judge(scenario).verdict)
            if progress:
                progress(1)
    return studies


def record(scores: JudgeScores, scenario: Scenario, verdict: Verdict) -> None:
    level = scores.by_level[scenario.traffic]
    scores.everything.add(verdict)
    level["all"].add(verdict)
    if scenario.regression is None:
        scores.healthy.add(verdict)
        level["healthy"].add(verdict)
        return
    level[scenario.regression].add(verdict)
    if scenario.traffic >= DETECTION_MIN_RPS:
        scores.detection[scenario.regression].add(verdict)


def summary(result: BenchResult) -> Mapping[str, dict]:
    """The JSON contract's ``judges`` part."""
    return result.to_dict()["judges"]
