"""The plan's order by evidence: busiest forecast first, quiet namespaces last, the pinned
canary first of all; ``upgrade.order=given`` keeps the order as listed."""

from __future__ import annotations

from datetime import UTC, datetime

from analyzer.service.preflight import PreflightResult, build_plan
from analyzer.settings import Settings
from tests.fixtures.sim_fixtures import upgrade_request

CHECKED = PreflightResult(from_revision="1-14-6", namespaces=("a", "b", "c", "d"))
FORECAST = {"a": 120.0, "b": 90_000.0, "c": 6_000.0, "d": 40.0}
NOW = datetime(2026, 11, 30, 1, 0, tzinfo=UTC)


def test_waves_are_cut_from_the_busiest_down_with_the_quiet_ones_last():
    plan = build_plan(upgrade_request(), CHECKED, Settings(), NOW, forecast=FORECAST, needed=500)
    assert plan.waves == (("b",), ("c", "a"), ("d",))


def test_the_operator_pins_the_canary_or_keeps_the_given_order():
    pinned = Settings(upgrade={"canary": "d"})
    plan = build_plan(upgrade_request(), CHECKED, pinned, NOW, forecast=FORECAST, needed=500)
    # d is too quiet to be judged alone: the busiest joins it, to pool with
    assert plan.waves == (("d", "b"), ("c", "a"))
    given = Settings(upgrade={"order": "given"})
    plan = build_plan(upgrade_request(), CHECKED, given, NOW, forecast=FORECAST, needed=500)
    assert plan.waves == (("a",), ("b", "c"), ("d",))
    # no forecast (Prometheus could not answer): as listed
    assert build_plan(upgrade_request(), CHECKED, Settings(), NOW).waves[0] == ("a",)


def test_a_canary_too_quiet_to_be_judged_alone_gets_company_to_pool_with():
    quiet = {"a": 300.0, "b": 480.0, "c": 450.0, "d": 200.0}  # none reaches 500
    plan = build_plan(upgrade_request(), CHECKED, Settings(), NOW, forecast=quiet, needed=500)
    # b, c, a, d by traffic; the canary's wave grows towards 4 × 500 requests: all of them
    assert plan.waves == (("b", "c", "a", "d"),)
    busy = {**quiet, "c": 2_500.0}
    plan = build_plan(upgrade_request(), CHECKED, Settings(), NOW, forecast=busy, needed=500)
    assert plan.waves[0] == ("c",)  # a canary busy enough alone stays alone
