"""A rule's own before-window (``spec.judge.beforeWindow``) in ``analyze_restart``.

Why: a tail quantile needs many more requests before the restart than a 10-minute window
holds at low traffic, so the shipped p99 rules look 60 minutes back. The window must reach
the range query — one query, for the canary and its controls alike — while the other rules
keep ``windows.before``; a metrics source holding less history than the window is judged
on what it holds and the result says so; the soak keeps its own baseline. Metrics come from
an in-memory ``MetricsSource`` (the port the Prometheus adapter implements) that records
each range asked for and answers per minute from a start of history.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from analyzer.core.multiplicity import NightBudget
from analyzer.core.observations import ROLE_LABEL
from analyzer.core.ports import Series
from analyzer.core.rules import LoadedRule, RuleSet
from analyzer.core.verdicts import Verdict
from analyzer.core.windows import RestartWindows
from analyzer.service.analysis import AnalysisRequest, analyze_restart
from tests.fixtures.rules import QUERY, make_rule

LABEL = "destination_workload_namespace"
RESTARTED_AT = datetime(2026, 11, 27, 1, 30, tzinfo=UTC)
STEP = timedelta(minutes=1)
WINDOWS = RestartWindows.around(
    RESTARTED_AT, before=timedelta(minutes=10), settle=timedelta(minutes=2),
    after=timedelta(minutes=10), step=STEP,
)  # fmt: skip
BUCKETS_QUERY = QUERY.replace("x_total", "duration_bucket")
#: requests per minute: the canary and its two controls
PER_MINUTE = {"canary": 1000.0, "control-a": 600.0, "control-b": 300.0}
#: cumulative share of requests at or under each bound (ms)
SHARES = (("50", 0.9), ("100", 0.985), ("250", 0.998), ("+Inf", 1.0))
#: the controls' latency until 10 minutes before the restart: a slower tail (an earlier
#: wave, say), which only a longer before-window sees
SLOWER = (("50", 0.9), ("100", 0.97), ("250", 0.995), ("+Inf", 1.0))


@dataclass
class RecordingSource:
    """Answers bucket queries with per-minute histograms and ratio queries with per-minute
    counts, from ``history_start`` on (a Prometheus keeping less is empty before it);
    records every ``(query, start, end)`` asked for."""

    history_start: datetime = RESTARTED_AT - timedelta(days=1)
    asked: list[tuple[str, datetime, datetime]] = field(default_factory=list)
    per_minute: dict[str, float] = field(default_factory=lambda: dict(PER_MINUTE))

    def query_range(
        self, query: str, start: datetime, end: datetime, step: timedelta
    ) -> list[Series]:
        self.asked.append((query, start, end))
        times = []
        moment = start
        while moment <= end:
            if moment - step >= self.history_start:
                times.append(moment)
            moment += step
        recent = RESTARTED_AT - timedelta(minutes=10)
        series = []
        for namespace, rate in self.per_minute.items():
            if "duration_bucket" in query:
                for (bound, share), (_, slower) in zip(SHARES, SLOWER, strict=True):
                    points = tuple(
                        (t.timestamp(), rate * (slower if namespace != "canary" and t <= recent
                                                else share))
                        for t in times
                    )  # fmt: skip
                    series.append(Series({LABEL: namespace, "le": bound}, points))
            else:
                for role, value in (("numerator", rate * 0.01), ("denominator", rate)):
                    points = tuple((t.timestamp(), value) for t in times)
                    series.append(Series({LABEL: namespace, ROLE_LABEL: role}, points))
        return series


def rules(before_window: str | None = "60m") -> RuleSet:
    judge = {"quantile": 0.99, "allowedChange": {"relative": 0.2}, "minEvidence": {"requests": 100}}
    if before_window is not None:
        judge["beforeWindow"] = before_window
    latency = make_rule("histogram", name="latency-p99", judge=judge, buckets=BUCKETS_QUERY)
    errors = make_rule("ratio", name="error-rate", judge={"allowedChange": {"absolute": 0.01}})
    return RuleSet(
        rules=tuple(LoadedRule(rule=r, source="test", line=1) for r in (latency, errors))
    )


def analyze(
    source: RecordingSource,
    ruleset: RuleSet | None = None,
    controls: tuple[str, ...] = ("control-a", "control-b"),
    **request,
):
    asked = AnalysisRequest(
        judged=("canary",), controls=controls, windows=WINDOWS, namespace_label=LABEL,
        **request,
    )  # fmt: skip
    return analyze_restart(source, ruleset or rules(), asked)


def ranges(source: RecordingSource, kind: str) -> list[tuple[datetime, datetime]]:
    return [(start, end) for query, start, end in source.asked if kind in query]


def result(outcome, name: str):
    return next(r for r in outcome.verdicts["canary"].rules if r.rule == name)


def test_the_rules_own_before_window_reaches_the_range_query_for_canary_and_controls():
    source = RecordingSource()
    outcome = analyze(source)
    hour_before = RESTARTED_AT - timedelta(minutes=60)
    # the latency rule: 60 minutes before (points at start + step … end), its after as set
    assert ranges(source, "duration_bucket") == [
        (hour_before + STEP, RESTARTED_AT),
        (WINDOWS.after.start + STEP, WINDOWS.after.end),
    ]
    # the one query covers the canary and both controls
    bucket_query = next(query for query, *_ in source.asked if "duration_bucket" in query)
    assert all(name in bucket_query for name in PER_MINUTE)
    # the error rule keeps windows.before
    assert ranges(source, "x_total")[0] == (WINDOWS.before.start + STEP, RESTARTED_AT)
    latency = result(outcome, "latency-p99")
    assert latency.evidence["before_requests"] == 60 * PER_MINUTE["canary"]
    assert latency.evidence["after_requests"] == 10 * PER_MINUTE["canary"]
    # the controls' before is the same hour: their slower tail until 10 minutes before
    # the restart is in it, so their p99 came down; with windows.before it is unchanged
    controls = latency.controls or {}
    assert controls["namespaces"] == ["control-a", "control-b"]
    assert controls["quantile_change_relative"] < -0.05
    shorter = result(analyze(RecordingSource(), rules(before_window=None)), "latency-p99")
    assert abs((shorter.controls or {})["quantile_change_relative"]) < 1e-9
    assert latency.evidence["before_window"] == {
        "start": hour_before.isoformat(), "end": RESTARTED_AT.isoformat(), "length": "1h",
    }  # fmt: skip
    assert "before-window partial" not in latency.reason
    assert "before_window" not in result(outcome, "error-rate").evidence


def test_less_history_than_the_window_is_judged_on_what_is_there_and_said():
    source = RecordingSource(history_start=RESTARTED_AT - timedelta(minutes=25))
    latency = result(analyze(source, controls=()), "latency-p99")
    assert latency.verdict is Verdict.PASS
    assert latency.evidence["before_requests"] == 25 * PER_MINUTE["canary"]
    window = latency.evidence["before_window"]
    assert window["covered_start"] == source.history_start.isoformat()
    assert window["covered"] == "25m"
    assert "[before-window partial: 25m of the rule's 1h in the metrics source" in latency.reason
    # no history at all before the restart: no data, never a crash or a PASS
    empty = RecordingSource(history_start=RESTARTED_AT)
    assert result(analyze(empty, controls=()), "latency-p99").verdict is Verdict.INCONCLUSIVE


def test_a_before_window_shorter_than_the_step_is_an_error_of_that_rule_alone():
    outcome = analyze(RecordingSource(), rules(before_window="30s"))
    latency = result(outcome, "latency-p99")
    assert latency.verdict is Verdict.ERROR
    assert "spec.judge.beforeWindow" in latency.reason and "longer than" in latency.reason
    assert result(outcome, "error-rate").verdict is not Verdict.ERROR


def test_the_soak_keeps_its_baseline_window_for_every_rule():
    source = RecordingSource()
    analyze(source, rule_before_windows=False)
    assert ranges(source, "duration_bucket")[0] == (WINDOWS.before.start + STEP, RESTARTED_AT)


def test_controls_restarted_inside_the_rules_window_count_for_the_other_rules_only():
    moved = {"control-a": RESTARTED_AT - timedelta(minutes=30)}
    outcome = analyze(RecordingSource(), control_restarts=moved)
    assert (result(outcome, "latency-p99").controls or {})["namespaces"] == ["control-b"]
    assert (result(outcome, "error-rate").controls or {})["namespaces"] == [
        "control-a", "control-b",
    ]  # fmt: skip


def test_with_every_control_restarted_inside_it_the_rule_reads_windows_before():
    # the last wave of a short night: every control was moved within the hour; without
    # controls the night's drift would not be netted out, so windows.before it is
    source = RecordingSource()
    moved = {name: RESTARTED_AT - timedelta(minutes=30) for name in ("control-a", "control-b")}
    latency = result(analyze(source, control_restarts=moved), "latency-p99")
    assert ranges(source, "duration_bucket")[0] == (WINDOWS.before.start + STEP, RESTARTED_AT)
    assert "every control was restarted inside it" in latency.reason
    assert latency.evidence["before_window"]["length"] == "10m"
    assert "not the rule's own 1h" in latency.evidence["before_window"]["fallback"]
    assert (latency.controls or {})["namespaces"] == ["control-a", "control-b"]


def test_the_fallback_note_survives_the_night_budgets_re_judging():
    moved = {name: RESTARTED_AT - timedelta(minutes=30) for name in ("control-a", "control-b")}
    asked = AnalysisRequest(
        judged=("canary",), controls=("control-a", "control-b"), windows=WINDOWS,
        namespace_label=LABEL, control_restarts=moved,
    )  # fmt: skip
    outcome = analyze_restart(RecordingSource(), rules(), asked, budget=NightBudget(0.05, 25))
    latency = result(outcome, "latency-p99")
    assert "night budget" in latency.reason
    assert "every control was restarted inside it" in latency.reason


def test_with_only_quiet_controls_outside_it_the_rule_reads_windows_before_with_every_control():
    # late in a night the busy controls were restarted inside the hour and those left are
    # too quiet for a tail quantile: the hour would be judged without netting out the
    # night's drift, so the rule reads windows.before, where the busy ones are clean
    source = RecordingSource(per_minute={**PER_MINUTE, "control-q": 0.5})
    moved = {name: RESTARTED_AT - timedelta(minutes=30) for name in ("control-a", "control-b")}
    latency = result(
        analyze(source, controls=("control-a", "control-b", "control-q"), control_restarts=moved),
        "latency-p99",
    )
    assert [r[0] for r in ranges(source, "duration_bucket")] == [
        RESTARTED_AT - timedelta(minutes=60) + STEP, WINDOWS.after.start + STEP,  # the hour
        WINDOWS.before.start + STEP, WINDOWS.after.start + STEP,  # then windows.before
    ]  # fmt: skip
    assert "no control left outside it had enough requests" in latency.reason
    assert latency.evidence["before_window"]["length"] == "10m"
    assert (latency.controls or {})["namespaces"] == ["control-a", "control-b"]


def test_when_ten_minutes_give_no_usable_control_either_the_rule_keeps_its_own_window():
    source = RecordingSource(per_minute={"canary": 1000.0, "control-q": 0.5})
    latency = result(analyze(source, controls=("control-q",)), "latency-p99")
    assert len(ranges(source, "duration_bucket")) == 4  # the hour, then ten minutes tried
    assert latency.evidence["before_window"]["length"] == "1h"
    assert "fallback" not in latency.evidence["before_window"]
    assert latency.controls is None


def test_a_canary_too_quiet_for_the_rule_costs_no_second_look():
    # too thin in the hour is thinner still in ten minutes: one query per window, as ever
    source = RecordingSource(per_minute={"canary": 0.5, "control-q": 0.5})
    latency = result(analyze(source, controls=("control-q",)), "latency-p99")
    assert len(ranges(source, "duration_bucket")) == 2
    assert latency.verdict is Verdict.INCONCLUSIVE
