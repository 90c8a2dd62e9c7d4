"""``whenAbsent``: what a namespace with no series at all means for a rule.

Why: the client-side rules read the namespace's own outbound calls, and some namespaces
make none. With the default (no data is not evidence of health) such a namespace would hold
every night; ``whenAbsent: skip`` lets the rule stand aside for it, and only when both
windows are empty: outbound series that vanish after the restart still hold the wave.
"""

from __future__ import annotations

from analyzer.adapters.rule_files import default_rules_path, load_rules
from analyzer.core.judge import RuleInput, judge_rule
from analyzer.core.observations import RatioCounts
from analyzer.core.rules import AbsentPolicy
from analyzer.core.verdicts import RuleResult, Verdict, combine_rule_results
from tests.fixtures.rules import make_rule


def _judge(rule, before, after):
    return judge_rule(RuleInput(rule=rule, namespace="quiet", before=before, after=after,
                                controls_before={}, controls_after={}))


def test_a_skip_rule_does_not_decide_for_a_namespace_with_no_series_in_either_window():
    rule = make_rule("ratio", whenAbsent="skip")
    absent = _judge(rule, None, None)
    assert absent.verdict is Verdict.INCONCLUSIVE
    assert not absent.applies and not absent.decides
    assert "in either window" in absent.reason
    assert absent.to_dict()["applies"] is False
    server_side = RuleResult(rule="error-rate", namespace="quiet", verdict=Verdict.PASS,
                             reason="within the allowance")
    assert combine_rule_results("quiet", (server_side, absent)).verdict is Verdict.PASS


def test_series_in_one_window_only_still_hold_a_skip_rule():
    rule = make_rule("ratio", whenAbsent="skip")
    for before, after in ((RatioCounts(3, 4000), None), (None, RatioCounts(3, 4000))):
        result = _judge(rule, before, after)
        assert result.verdict is Verdict.INCONCLUSIVE and result.decides


def test_by_default_no_data_is_inconclusive_and_decides():
    result = _judge(make_rule("ratio"), None, None)
    assert result.verdict is Verdict.INCONCLUSIVE and result.decides


def test_only_the_shipped_client_side_rules_skip_absent_namespaces():
    rules = load_rules([default_rules_path(None)])
    skipping = {r.name for r in rules if r.spec.when_absent is AbsentPolicy.SKIP}
    assert skipping == {"client-error-rate", "client-latency-p99"}
