"""Whole-night benchmark in a small configuration: seeded nights through waves, controls,
extensions and the night budget end as the engine would end them, and the command's JSON
has every outcome with its interval for both alphas."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from analyzer.bench import judges
from analyzer.bench.judges import default_rules
from analyzer.bench.night import (
    NightConfig,
    draw_rate,
    night_study,
    plan_night,
    quiet_night,
    run_night,
    run_nights,
)
from analyzer.bench.scenarios import REGRESSIONS
from analyzer.cli import main
from analyzer.commands.bench import REGRESSION_KINDS

BUSY = (100.0, 200.0)  # rps: a default window resolves every rule


def test_the_commands_regression_choices_are_the_benchmarks():
    assert tuple(REGRESSIONS) == REGRESSION_KINDS


def test_a_bad_canary_ends_the_night_in_its_first_wave():
    rules = default_rules()
    rng = np.random.default_rng(5)
    config = NightConfig(namespaces=6, canary_regression="errors+2pp", traffic=BUSY)
    for _ in range(4):  # the canary is judged first: one look, rolled back
        assert run_night(config, rng, rules) == ("rolled_back", 1)


def test_a_night_with_a_namespace_too_quiet_to_judge_is_held_after_every_extension():
    rules = default_rules()
    rng = np.random.default_rng(5)
    config = NightConfig(namespaces=3, waves=(3,), max_extensions=2, traffic=(0.05, 0.05))
    assert run_night(config, rng, rules) == ("held", 3)  # first look + 2 extensions


def test_busy_healthy_nights_promote_through_every_wave():
    rules = default_rules()
    rng = np.random.default_rng(5)
    config = NightConfig(namespaces=7, waves=(1, 2, 4), night_budget=0.05, traffic=BUSY)
    outcomes = [run_night(config, rng, rules) for _ in range(3)]
    assert outcomes == [("promoted", 3)] * 3  # three waves, each passed at its first look


def test_both_alphas_judge_the_same_nights():
    config = NightConfig(namespaces=4, night_budget=0.05, canary_regression="errors+2pp",
                         traffic=BUSY)  # fmt: skip
    study = night_study(config, nights=3, seed=2)
    assert set(study) == {"rules_alpha", "night_budget"}
    for tally in study.values():
        assert tally.nights == 3 and tally.outcomes["rolled_back"] == 3


def test_bench_night_json_has_every_outcome_for_both_alphas(capsys):
    arguments = ["bench", "night", "--namespaces", "4", "--nights", "3", "--seed", "2",
                 "--night-budget", "0.05", "--output", "json"]  # fmt: skip
    assert main(arguments) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["config"]["namespaces"] == 4 and result["nights"] == 3
    assert set(result["runs"]) == {"rules_alpha", "night_budget"}
    for row in result["runs"].values():
        rates = [row[f"{outcome}_rate"] for outcome in ("promoted", "rolled_back", "held")]
        assert sum(rates) == pytest.approx(1.0)
        for outcome in ("promoted", "rolled_back", "held"):
            low, high = row[f"{outcome}_95ci"]
            assert low <= row[f"{outcome}_rate"] <= high
        assert row["looks_per_night"] >= 1


def test_bench_night_table_and_bad_flags(capsys):
    assert main(["bench", "night", "--namespaces", "3", "--nights", "2"]) == 0
    assert "Whole nights" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "night", "--traffic", "200,10"])
    assert exit_info.value.code == 2
    assert "need 0 < LOW <= HIGH" in capsys.readouterr().err


def test_anytime_looks_end_busy_nights_sooner_with_the_same_outcome():
    healthy = NightConfig(namespaces=4, waves=(1, 3), traffic=BUSY, anytime=True)
    study = night_study(healthy, nights=2, seed=3)
    assert set(study) == {"rules_alpha", "anytime"}
    fixed, anytime = study["rules_alpha"], study["anytime"]
    assert fixed.outcomes["promoted"] == anytime.outcomes["promoted"] == 2
    assert fixed.minutes == [24.0, 24.0]  # two waves, each 2 min settle + a 10-min window
    assert all(a < f for a, f in zip(anytime.minutes, fixed.minutes, strict=True))
    bad = night_study(
        NightConfig(namespaces=4, canary_regression="errors+2pp", traffic=BUSY, anytime=True),
        nights=2,
        seed=3,
    )
    assert bad["anytime"].outcomes["rolled_back"] == 2
    assert max(bad["anytime"].minutes) < min(bad["rules_alpha"].minutes)


def test_bench_night_json_gives_minutes_per_night(capsys):
    arguments = ["bench", "night", "--namespaces", "3", "--nights", "1", "--anytime",
                 "--traffic", "100,200", "--output", "json"]  # fmt: skip
    assert main(arguments) == 0
    runs = json.loads(capsys.readouterr().out)["runs"]
    assert set(runs) == {"rules_alpha", "anytime"}
    for row in runs.values():
        assert row["minutes_median"] <= row["minutes_p90"]


# -- quiet namespaces (issue 16) ------------------------------------------------------------

QUIET_MIX = (0.05, 200.0)


def test_traffic_mixes_stay_in_range_and_the_heavy_tail_is_mostly_quiet():
    rng = np.random.default_rng(9)
    heavy = [draw_rate(rng, 0.05, 200.0, "heavy-tailed") for _ in range(2000)]
    flat = [draw_rate(rng, 0.05, 200.0, "log-uniform") for _ in range(2000)]
    assert all(0.05 <= r <= 200.0 for r in heavy + flat)
    assert np.median(heavy) < 0.2 < np.median(flat)


def test_the_plan_puts_the_busiest_namespace_first_unless_given():
    rules = default_rules()
    config = NightConfig(namespaces=8, traffic=QUIET_MIX)
    names, truths, _, _ = plan_night(config, np.random.default_rng(4), rules)
    assert truths[names[0]].rps == max(t.rps for t in truths.values())
    given, _, _, _ = plan_night(replace(config, order="given"), np.random.default_rng(4), rules)
    assert given == sorted(given)


def test_a_healthy_night_with_quiet_namespaces_is_promoted_and_holds_without_a_policy():
    rules = default_rules()
    config = NightConfig(namespaces=6, waves=(1, 2), traffic=(0.1, 200.0), night_budget=0.05)
    night = quiet_night(
        replace(config, traffic_mix="log-uniform"), np.random.default_rng([3, 1]), rules
    )
    assert night.outcome == "promoted", night
    assert {e.value for e in night.evidence.values()} >= {"own"}
    quiet_ones = [n for n, e in night.evidence.items() if e.value in ("pool", "inherited")]
    assert quiet_ones, night.evidence  # at least one namespace judged by the policy
    held = quiet_night(replace(config, quiet="hold"), np.random.default_rng([3, 1]), rules)
    assert held.outcome == "held"


@pytest.mark.parametrize(("kind", "rps"), [("errors+5pp", 0.2), ("crash-loop", 0.05)])
def test_a_regression_confined_to_one_quiet_namespace_is_never_promoted(kind, rps):
    config = NightConfig(
        namespaces=6, waves=(1, 2), traffic=(1.0, 200.0), night_budget=0.05,
        regression=kind, regression_in="one-quiet", quiet_rps=rps,
    )  # fmt: skip
    tally = run_nights(config, nights=2, seed=11)
    assert tally.regressed_promoted == 0
    stopped = tally.to_dict()["regressed_namespace_stopped_by"]
    assert sum(stopped.values()) == 2
    if kind == "crash-loop":
        assert stopped == {"rolled_back:health": 2}
    else:
        assert set(stopped) <= {"held:held", "rolled_back:own", "rolled_back:pool"}


def test_bench_night_json_says_how_namespaces_were_judged(capsys):
    arguments = ["bench", "night", "--namespaces", "4", "--nights", "1", "--seed", "2",
                 "--traffic", "100,200", "--regression", "errors+2pp", "--regression-in", "all",
                 "--output", "json"]  # fmt: skip
    assert main(arguments) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["config"]["regression_in"] == "all" and result["config"]["quiet"] == "pool"
    row = result["runs"]["rules_alpha"]
    assert row["rolled_back_rate"] == 1.0 and row["moved_at_rollback_median"] == 1.0


def _wave_windows(rng_seed: int = 3):
    """One wave's traffic for four busy namespaces, with the hour before drawn."""
    from analyzer.bench.judges import longest_before
    from analyzer.bench.night import _wave_traffic
    from analyzer.bench.scenarios import STEPS_PER_WINDOW, _namespace_truth

    rng = np.random.default_rng(rng_seed)
    truths = {n: _namespace_truth(rng, 150.0) for n in ("a", "b", "c", "d")}
    extra = longest_before(default_rules()) - STEPS_PER_WINDOW
    return _wave_traffic(rng, truths, 0, {}, (rng.spawn(1)[0], extra))


def test_each_rule_reads_its_own_before_window_without_controls_restarted_inside_it():
    """As the service judges (``service.analysis``): the p99 rules read the hour before the
    restart, and a control restarted in that hour is no control for them; the 10-minute
    rules keep it. The hour holds about six times the 10-minute window's requests."""
    from analyzer.bench.night import _before_by_rule

    rules = default_rules()
    traffic = _wave_windows()
    restarted = {"b": 25.0, "c": 5.0}  # minutes into the night; the wave restarts at 40
    found = _before_by_rule(rules, ("a",), traffic, restarted, 40.0, own_windows=True)
    p99, errors = found["latency-p99"].own, found["error-rate"].own
    assert found["latency-p99"].short is not None and found["error-rate"].short is None
    assert p99["b"] is None and p99["c"] is None and p99["d"] is not None
    assert all(errors[n] is not None for n in "abcd")  # restarted before the 10 minutes
    assert 5.0 < p99["a"].total / errors["a"].total < 7.0
    fixed = _before_by_rule(rules, ("a",), traffic, restarted, 40.0, own_windows=False)
    assert fixed["latency-p99"].own["a"].total == errors["a"].total
    assert fixed["latency-p99"].own["b"] is not None


def test_a_rule_whose_every_control_was_restarted_inside_its_window_reads_ten_minutes():
    from analyzer.bench.night import _before_by_rule

    rules = default_rules()
    traffic = _wave_windows()
    restarted = {"b": 20.0, "c": 20.0, "d": 20.0}  # the wave restarts at 40: all inside
    found = _before_by_rule(rules, ("a",), traffic, restarted, 40.0, own_windows=True)
    p99 = found["latency-p99"].own
    assert all(p99[n] is not None for n in "bcd")
    assert p99["a"].total == found["error-rate"].own["a"].total


def test_own_before_windows_leave_the_nights_other_draws_as_they_were():
    """The hour before is drawn from a stream of its own: a night whose rules all read 10
    minutes is the same night with or without it."""
    ten_minutes = default_rules()
    config = NightConfig(namespaces=6, traffic=BUSY, night_budget=0.05)
    own = quiet_night(config, np.random.default_rng([9, 1]), ten_minutes)
    fixed = quiet_night(replace(config, rule_before_windows=False),
                        np.random.default_rng([9, 1]), ten_minutes)  # fmt: skip
    assert (own.outcome, own.moved) == (fixed.outcome, fixed.moved)


def test_bench_night_json_says_which_before_windows_judged(capsys):
    code = main(["bench", "night", "--namespaces", "3", "--nights", "1", "--traffic", "100,200",
                 "--before-windows", "fixed", "-o", "json"])  # fmt: skip
    assert code == 0
    assert json.loads(capsys.readouterr().out)["config"]["before_windows"] == "fixed"


def test_a_rule_whose_controls_left_are_too_quiet_reads_ten_minutes_with_every_control():
    """The service's second fallback (``service.before_windows.lacks_controls``): the busy
    controls were restarted inside the hour and the one left is too quiet for a p99."""
    from analyzer.bench.night import _before_by_rule, _Traffic

    rules = default_rules()
    traffic = _wave_windows()
    def silent(window):  # no request in any step: no evidence at all
        zero = window.requests * 0
        return replace(window, requests=zero, errors=zero, buckets=window.buckets * 0)

    a = traffic["a"]
    traffic["d"] = _Traffic(silent(a.before), silent(a.after), silent(a.earlier))
    restarted = {"b": 20.0, "c": 20.0}  # inside the hour, outside the ten minutes
    found = _before_by_rule(rules, ("a",), traffic, restarted, 40.0, own_windows=True)
    rule = next(r for r in rules if r.name == "latency-p99")
    after = {n: judges.observation(rule, t.after_look(0)) for n, t in traffic.items()}
    chosen = found[rule.name].chosen(rule, ("a",), after, ["b", "c", "d"])
    assert chosen is found[rule.name].short
    assert chosen["b"] is not None and chosen["c"] is not None
