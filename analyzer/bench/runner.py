"""Runs every judge on the same seeded scenarios and scores them.

Scores (the ``bench judge`` output contract):

- ``false_rollback_rate``: FAIL among healthy scenarios (all traffic levels);
- ``inconclusive_rate``: INCONCLUSIVE among all scenarios;
- ``detection[kind]``: FAIL among scenarios with that regression and ≥ 10 rps;
- ``by_traffic``: the same per canary traffic level, plus how many regressions each judge
  let through as PASS (the dangerous miss), and the physical limit beside them.

The physical limit is the power of an ideal one-sided two-proportion test (α = 1 %) that
knows there is no drift, computed per scenario from its true error rate and expected
request counts, averaged over the ``errors+1pp`` scenarios of the traffic level.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from analyzer.bench import judges
from analyzer.bench.scenarios import (
    REGRESSIONS,
    STEP_SECONDS,
    STEPS_PER_WINDOW,
    TRAFFIC_LEVELS,
    Scenario,
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
    #: ours: the night's false-rollback budget and the namespaces it is spread over; None:
    #: each rule's own confidence (the default rules: 99 %, alpha 1 % per test)
    night_budget: float | None = None
    night_namespaces: int | None = None
    rules: int = 4

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
    reference: dict[float, float]
    counts: dict[str, int]

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
                "by_traffic": by_traffic,
            }
        return {
            "judges": judges_out,
            "physical_limit": {
                "kind": LIMIT_KIND,
                "alpha": 0.01,
                "by_traffic": {_level_key(k): v for k, v in self.limit.items()},
                "reference_1pct_base": {_level_key(k): v for k, v in self.reference.items()},
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
            },
            "counts": self.counts,
        }


def _level_key(level: float) -> str:
    return f"{level:g}rps"


def judge_functions(alpha: float | None) -> dict[str, Callable[[Scenario], judges.JudgeOutcome]]:
    return {
        "ours": judges.ours(alpha),
        "flagger": judges.flagger,
        "kayenta": judges.kayenta,
        "naive": judges.naive,
    }


def run(config: BenchConfig, progress: Callable[[int], None] | None = None) -> BenchResult:
    """Generate the scenarios and score every judge on them."""
    alpha = config.alpha
    functions = judge_functions(alpha)
    scores = {name: JudgeScores() for name in functions}
    limits: dict[float, list[float]] = defaultdict(list)
    counts: dict[str, int] = defaultdict(int)
    for scenario in generate(config.scenarios, config.seed):
        kind = scenario.regression or "healthy"
        counts[kind] += 1
        if scenario.regression == LIMIT_KIND:
            expected = scenario.traffic * STEPS_PER_WINDOW * STEP_SECONDS
            limits[scenario.traffic].append(
                ideal_power(scenario.canary.error_rate, 0.01, expected, expected * scenario.drift)
            )
        for name, function in functions.items():
            verdict = function(scenario).verdict
            record(scores[name], scenario, verdict)
        if progress:
            progress(1)
    return BenchResult(
        config=config,
        alpha=alpha,
        scores=scores,
        limit={level: sum(v) / len(v) for level, v in sorted(limits.items()) if v},
        reference={level: reference_limit(level) for level in TRAFFIC_LEVELS},
        counts=dict(counts),
    )


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
