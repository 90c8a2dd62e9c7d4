"""The night's false-rollback budget in ``analyze_restart`` and the engine's judging.

Why: with ``rules.night_budget`` set, a wave's critical rules are re-judged at their Holm
alphas. A borderline regression (p between the budget's split and the rule's own 1 %) must
stop failing, a strong one must keep failing, nothing is queried twice, and a verdict says
where its alpha came from. Metrics come from an in-memory ``MetricsSource`` (the port the
Prometheus adapter implements) holding fixed request and error counts per namespace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from analyzer.core.multiplicity import NightBudget
from analyzer.core.observations import ROLE_LABEL, RatioCounts
from analyzer.core.ports import Series
from analyzer.core.rules import LoadedRule, RuleSet
from analyzer.core.upgrade import Judge
from analyzer.core.verdicts import Verdict
from analyzer.core.windows import RestartWindows
from analyzer.service.analysis import AnalysisRequest, analyze_restart
from analyzer.service.judging import PrometheusJudging
from tests.fixtures.rules import make_rule

LABEL = "destination_workload_namespace"
RESTARTED_AT = datetime(2026, 11, 27, 1, 30, tzinfo=UTC)
#: (before, after) counts per namespace. p-values (the test that decides under the default
#: failWhen, estimate-beyond: of no change; both estimates beyond the rule's allowance, here
#: 0.75 pp) with the rule below, no controls: borderline ≈ 0.008 (a FAIL at the rule's own
#: alpha 0.01), strong ≈ 1e-20.
TRAFFIC = {
    "borderline": (RatioCounts(45, 3000), RatioCounts(72, 3000)),
    "strong": (RatioCounts(30, 3000), RatioCounts(150, 3000)),
}


def ratio_rule(name: str, **spec) -> LoadedRule:
    judge = {
        "allowedChange": {"absolute": 0.005, "relative": 0.5},
        "minEvidence": {"requests": 500},
        "confidence": 0.99,
    }
    return LoadedRule(rule=make_rule("ratio", name=name, judge=judge, **spec), source="test", line=1)


RULES = RuleSet(rules=(ratio_rule("error-rate"), ratio_rule("error-rate-trial", dryRun=True)))


@dataclass
class CountsSource:
    """Answers every ratio query with ``TRAFFIC``: before counts for windows that start
    before the restart, after counts otherwise, spread evenly over the window's points."""

    traffic: dict[str, tuple[RatioCounts, RatioCounts]]
    queries: list[str] = field(default_factory=list)

    def query_range(
        self, query: str, start: datetime, end: datetime, step: timedelta
    ) -> list[Series]:
        self.queries.append(query)
        times = []
        moment = start
        while moment <= end:
            times.append(moment.timestamp())
            moment += step
        phase = 0 if start < RESTARTED_AT else 1
        series = []
        for namespace, counts in self.traffic.items():
            observed = counts[phase]
            for role, total in (("numerator", observed.bad), ("denominator", observed.total)):
                points = tuple((t, total / len(times)) for t in times)
                series.append(Series({LABEL: namespace, ROLE_LABEL: role}, points))
        return series


WINDOWS = RestartWindows.around(
    RESTARTED_AT,
    before=timedelta(minutes=10),
    settle=timedelta(minutes=2),
    after=timedelta(minutes=10),
    step=timedelta(minutes=1),
)


def analyze(budget: NightBudget | None, source: CountsSource | None = None):
    source = source or CountsSource(TRAFFIC)
    request = AnalysisRequest(judged=tuple(TRAFFIC), controls=(), windows=WINDOWS)
    return analyze_restart(source, RULES, request, budget=budget)


def rule_of(outcome, namespace: str, rule: str = "error-rate"):
    return next(r for r in outcome.verdicts[namespace].rules if r.rule == rule)


def test_without_a_budget_both_regressions_fail_at_the_rules_own_alpha():
    outcome = analyze(None)
    for namespace in TRAFFIC:
        judged = rule_of(outcome, namespace)
        assert judged.verdict is Verdict.FAIL
        assert judged.statistic["alpha"] == pytest.approx(0.01)
        assert "alpha_source" not in judged.statistic
    assert 0.004 < rule_of(outcome, "borderline").statistic["p_value"] < 0.01


def test_the_budget_turns_a_borderline_fail_into_no_fail_and_keeps_a_strong_fail():
    # 5 % over 25 namespaces × 1 critical rule: 0.2 % per test; this wave of two spends
    # 0.4 %: the strongest p-value is tested at 0.2 %, the next at 0.4 %
    source = CountsSource(TRAFFIC)
    outcome = analyze(NightBudget(0.05, 25), source)
    strong, borderline = rule_of(outcome, "strong"), rule_of(outcome, "borderline")
    assert strong.verdict is Verdict.FAIL
    assert outcome.verdicts["strong"].verdict is Verdict.FAIL
    assert strong.statistic["alpha"] == pytest.approx(0.002)
    assert borderline.verdict is not Verdict.FAIL
    assert outcome.verdicts["borderline"].verdict is not Verdict.FAIL
    assert borderline.statistic["alpha"] == pytest.approx(0.004)
    assert borderline.statistic["p_value"] > borderline.statistic["alpha"]
    # judged once from the data: two windows per rule, no query sent again
    assert len(source.queries) == outcome.queries_sent == 2 * len(RULES)


def test_a_verdict_says_its_alpha_came_from_the_night_budget():
    outcome = analyze(NightBudget(0.05, 25))
    strong = rule_of(outcome, "strong")
    source = strong.statistic["alpha_source"]
    assert "night budget 5% over 25 namespaces × 1 rule, Holm within the wave" in source
    assert strong.statistic["night_alpha"] == pytest.approx(0.002)
    assert source in strong.reason
    assert strong.to_dict()["statistic"]["alpha_source"] == source
    assert strong.series["before"] and strong.series["after"]  # the charts' points stay


def test_dry_run_rules_do_not_spend_the_budget_and_keep_their_own_alpha():
    outcome = analyze(NightBudget(0.05, 25))
    trial = rule_of(outcome, "borderline", "error-rate-trial")
    assert trial.verdict is Verdict.FAIL  # reported as it would judge on its own
    assert trial.statistic["alpha"] == pytest.approx(0.01)
    assert "alpha_source" not in trial.statistic


def test_a_budget_never_judges_a_rule_looser_than_its_own_confidence():
    # one namespace's worth of budget (as `analyze` uses it): Holm would allow 5 % and 10 %
    outcome = analyze(NightBudget(0.05, 1))
    borderline = rule_of(outcome, "borderline")
    assert borderline.verdict is Verdict.FAIL
    assert borderline.statistic["alpha"] == pytest.approx(0.01)
    assert borderline.statistic["night_alpha"] == pytest.approx(0.1)
    assert "rule's own confidence" in borderline.statistic["alpha_source"]


def judge_action(plan_namespaces: int) -> Judge:
    return Judge(
        judged=tuple(TRAFFIC),
        controls=(),
        restarted_at=RESTARTED_AT,
        before=timedelta(minutes=10),
        settle=timedelta(minutes=2),
        after=timedelta(minutes=10),
        step=timedelta(minutes=1),
        plan_namespaces=plan_namespaces,
    )


def test_the_engines_judging_splits_the_budget_over_the_whole_plan():
    judging = PrometheusJudging(CountsSource(TRAFFIC), RULES, LABEL, night_budget=0.05)
    judged = judging.judge(judge_action(plan_namespaces=25)).verdicts
    assert judged["strong"].verdict is Verdict.FAIL
    assert judged["borderline"].verdict is not Verdict.FAIL
    (rule,) = [r for r in judged["borderline"].rules if r.rule == "error-rate"]
    assert "over 25 namespaces" in rule.statistic["alpha_source"]


def test_the_engines_judging_without_a_budget_keeps_each_rules_confidence():
    judging = PrometheusJudging(CountsSource(TRAFFIC), RULES, LABEL)
    judged = judging.judge(judge_action(plan_namespaces=25)).verdicts
    assert judged["borderline"].verdict is Verdict.FAIL
