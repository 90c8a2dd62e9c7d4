"""A rule's own before-window (``spec.judge.beforeWindow``) in the pure core: the rule file
field, the windows it gives, and what the night's evidence checks make of it.

Why: the shipped p99 rules look 60 minutes back while the after-window stays 10 minutes.
The thin-evidence warning must hold such a rule to the window that binds it (the shorter
one), and the forecast must credit the longer before-window with its extra requests.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from analyzer.core.evidence import evidence_window, thin_by_rule
from analyzer.core.forecast import rule_forecast
from analyzer.core.observations import BucketCounts
from analyzer.core.rules import LoadedRule, RuleSet
from analyzer.core.windows import RestartWindows, WindowError
from tests.fixtures.rules import make_rule

TEN = timedelta(minutes=10)
HOUR = timedelta(minutes=60)
LATENCY = {"quantile": 0.99, "allowedChange": {"relative": 0.2}, "minEvidence": {"requests": 500}}


def rule_set(*rules) -> RuleSet:
    return RuleSet(tuple(LoadedRule(rule=rule, source="test", line=1) for rule in rules))


def test_the_field_reads_a_duration_and_refuses_zero_and_bare_numbers():
    rule = make_rule("histogram", judge={**LATENCY, "beforeWindow": "1h"})
    assert rule.spec.judge.before_window == HOUR
    assert make_rule("histogram", judge=LATENCY).spec.judge.before_window is None
    for bad in ("0", "60", "an hour"):
        with pytest.raises(ValidationError, match=r"beforeWindow|duration"):
            make_rule("histogram", judge={**LATENCY, "beforeWindow": bad})


def test_with_before_ends_at_the_restart_and_keeps_the_after_window():
    restart = datetime(2026, 11, 27, 1, 30, tzinfo=UTC)
    windows = RestartWindows.around(restart, TEN, timedelta(minutes=2), TEN, timedelta(minutes=1))
    longer = windows.with_before(HOUR)
    assert (longer.before.start, longer.before.end) == (restart - HOUR, restart)
    assert longer.after == windows.after and longer.step == windows.step
    assert windows.with_before(None) is windows
    with pytest.raises(WindowError, match="step"):
        windows.with_before(timedelta(seconds=30))


def test_thin_evidence_holds_each_rule_to_the_shorter_of_its_windows():
    long_before = make_rule("histogram", name="p99", judge={**LATENCY, "beforeWindow": "60m"})
    short_before = make_rule("histogram", name="p50", judge={**LATENCY, "beforeWindow": "5m"})
    assert evidence_window(long_before, TEN, TEN) == TEN  # the after-window binds
    assert evidence_window(short_before, TEN, TEN) == timedelta(minutes=5)
    # 1.2 rps: 720 requests in 10 minutes (enough), 360 in 5 (not)
    rates = {"steady": 1.2, "busy": 5.0}
    assert thin_by_rule(rates, ["steady", "busy"], rule_set(long_before), TEN, TEN) == ()
    found = thin_by_rule(rates, ["steady", "busy"], rule_set(long_before, short_before), TEN, TEN)
    assert [(t.namespace, t.window, round(t.requests)) for t in found] == [
        ("steady", timedelta(minutes=5), 360)
    ]


def _history(requests: float) -> BucketCounts:
    shares = (0.5, 0.9, 0.985, 0.998, 1.0)
    return BucketCounts((10.0, 50.0, 100.0, 250.0, math.inf), tuple(requests * s for s in shares))


def test_the_forecast_credits_a_longer_before_window_with_its_requests():
    rule = make_rule("histogram", name="p99", judge={**LATENCY, "confidence": 0.99})
    history = _history(6000)  # 10 rps over 10 minutes
    equal = rule_forecast(rule, history, 0.01).detectable
    six_times = rule_forecast(rule, history, 0.01, before_share=6.0).detectable
    assert equal is not None and six_times is not None
    assert 0.2 < six_times < equal
    # a shorter before-window of its own than the window: fewer requests, and below the
    # minimum it cannot judge alone
    thin = rule_forecast(rule, _history(900), 0.01, before_share=0.5)
    assert thin.detectable is None and "~450 requests per window" in thin.text


def test_the_longest_before_window_is_how_far_back_restarts_spoil_controls():
    from analyzer.core.rules import longest_before_window

    hour = make_rule("histogram", name="p99", judge={**LATENCY, "beforeWindow": "60m"})
    errors = make_rule("ratio", name="errors")
    assert longest_before_window([errors], TEN) == TEN
    assert longest_before_window([errors, hour], TEN) == HOUR
    assert longest_before_window([hour], timedelta(hours=2)) == timedelta(hours=2)
