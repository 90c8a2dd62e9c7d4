"""Before the night: each planned namespace's smallest detectable regression per rule,
and the policy that will judge it when it is too quiet to be judged alone."""

from __future__ import annotations

from analyzer.core.forecast import namespace_forecast, rule_forecast
from analyzer.core.observations import RatioCounts, VolumeCount
from tests.fixtures.rules import make_rule

ERRORS = make_rule(
    "ratio",
    name="error-rate",
    judge={"allowedChange": {"absolute": 0.005, "relative": 0.5}, "minEvidence": {"requests": 500}},
)
VOLUME = make_rule(
    "volume",
    name="request-volume",
    judge={
        "direction": "decrease",
        "allowedChange": {"relative": 0.5},
        "minEvidence": {"requests": 500},
    },
)


def test_busier_traffic_detects_smaller_regressions_never_below_the_allowance():
    busy = rule_forecast(ERRORS, RatioCounts(bad=300, total=120_000), 0.01)
    middling = rule_forecast(ERRORS, RatioCounts(bad=20, total=3_000), 0.01)
    assert busy.detectable is not None and middling.detectable is not None
    assert 0.005 <= busy.detectable < middling.detectable
    assert busy.text.startswith("detects +") and busy.text.endswith(" pp")
    # a night budget's smaller alpha needs a larger regression
    strict = rule_forecast(ERRORS, RatioCounts(bad=20, total=3_000), 0.0005)
    assert strict.detectable is not None and strict.detectable > middling.detectable


def test_a_namespace_below_the_minimum_cannot_be_judged_alone_and_says_by_what_policy():
    history = {"error-rate": RatioCounts(bad=0, total=60), "request-volume": VolumeCount(60, 600)}
    quiet = namespace_forecast("quiet", history, [ERRORS, VOLUME])
    assert quiet.quiet and quiet.policy == "pool"
    assert quiet.rules[0].detectable is None and "cannot judge it alone" in quiet.rules[0].text
    assert "too quiet alone: judged by quiet policy pool" in quiet.describe()
    held = make_rule("ratio", name="held-errors", judge={"minEvidence": {"requests": 500}})
    held = held.model_copy(update={"quiet": "hold"})
    assert namespace_forecast("quiet", {}, [held]).policy == "hold"
    busy = {
        "error-rate": RatioCounts(bad=300, total=120_000),
        "request-volume": VolumeCount(120_000, 600),
    }
    found = namespace_forecast("busy", busy, [ERRORS, VOLUME])
    assert not found.quiet and found.policy == "own" and found.requests == 120_000
    assert found.to_dict()["rules"][1]["rule"] == "request-volume"
