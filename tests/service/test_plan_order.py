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
    assert plan.waves == (("d",), ("b", "c"), ("a",))
    given = Settings(upgrade={"order": "given"})
    plan = build_plan(upgrade_request(), CHECKED, given, NOW, forecast=FORECAST, needed=500)
    assert plan.waves == (("a",), ("b", "c"), ("d",))
    # no forecast (Prometheus could not answer): as listed
    assert build_plan(upgrade_request(), CHECKED, Settings(), NOW).waves[0] == ("a",)
