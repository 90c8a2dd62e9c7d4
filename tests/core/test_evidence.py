"""Planned namespaces too quiet to be judged: found from counts, before anything moves."""

from __future__ import annotations

from datetime import timedelta

from analyzer.core.evidence import ThinEvidence, needed_requests, thin_by_rule
from analyzer.core.rules import LoadedRule, RuleSet
from tests.fixtures.rules import make_rule

WINDOW = timedelta(minutes=10)


def rule_set(*rules) -> RuleSet:
    return RuleSet(tuple(LoadedRule(rule=rule, source="test", line=1) for rule in rules))


def test_the_most_any_deciding_rule_needs_is_what_a_namespace_must_serve():
    rules = rule_set(
        make_rule("ratio", name="errors", judge={"minEvidence": {"requests": 500}}),
        make_rule("volume", name="volume", judge={"minEvidence": {"requests": 200}}),
        make_rule("ratio", name="watching", critical=False, judge={"minEvidence": {"requests": 9000}}),
        make_rule("ratio", name="trying", dryRun=True, judge={"minEvidence": {"requests": 8000}}),
    )  # fmt: skip
    assert needed_requests(rules) == 500  # non-critical and dry-run rules decide nothing
    assert needed_requests(rule_set(make_rule("ratio", name="any"))) == 0


def test_namespaces_below_the_need_or_without_data_are_thin_in_plan_order():
    per_second = {name: served / WINDOW.total_seconds() for name, served in
                  {"busy": 42000.0, "quiet": 180.0, "edge": 500.0}.items()}  # fmt: skip
    needs_500 = rule_set(
        make_rule("ratio", name="errors", judge={"minEvidence": {"requests": 500}})
    )
    found = thin_by_rule(per_second, ["quiet", "busy", "absent", "edge"], needs_500, WINDOW, WINDOW)
    assert found == (
        ThinEvidence("quiet", 180.0, 500, WINDOW),
        ThinEvidence("absent", 0.0, 500, WINDOW),
    )
    needs_none = rule_set(make_rule("ratio", name="any"))
    assert (
        thin_by_rule({"quiet": 1.0}, ["quiet"], needs_none, WINDOW, WINDOW) == ()
    )  # none needs any


def test_the_warning_names_the_namespace_the_numbers_and_what_the_night_will_do():
    thin = ThinEvidence("quiet", 180.4, 500, WINDOW)
    held = thin.describe("hold")
    assert "namespace quiet served ~180 requests in the last 10m" in held
    assert "need ≥ 500 in each window" in held and "INCONCLUSIVE" in held
    assert "holds there for a person" in held and "upgrade.on_inconclusive=hold" in held
    assert "rolls back there" in thin.describe("rollback")


def test_under_a_quiet_policy_the_warning_says_what_judges_the_namespace_instead():
    thin = ThinEvidence("quiet", 180.0, 500, WINDOW)
    pooled = thin.describe("hold", "pool")
    assert "quiet policy (pool)" in pooled and "puts it last" in pooled
    assert "holds there for a person" not in pooled
    assert "holds there for a person" in thin.describe("hold", "hold")
