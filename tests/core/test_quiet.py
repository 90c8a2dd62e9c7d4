"""Quiet namespaces judged on what can be known: the plan's order by evidence, pooling,
inherited verdicts, volume-free health gates — and never a pass for a namespace whose own
data shows a regression, whatever the policy."""

from __future__ import annotations

import pytest

from analyzer.core.judge import RuleInput, judge_rule
from analyzer.core.observations import RatioCounts
from analyzer.core.plan_order import order_by_evidence
from analyzer.core.quiet import (
    DEFAULT_QUIET_POLICY,
    Evidence,
    HealthSignals,
    QuietPolicy,
    WaveContext,
    judge_wave,
    pool_input,
    pooled,
    thin,
)
from analyzer.core.verdicts import Verdict
from tests.fixtures.rules import SHIPPED_ERROR_RATE

ERRORS = SHIPPED_ERROR_RATE
#: controls: busy, healthy, the same over both windows
CONTROLS_BEFORE = {"busy-a": RatioCounts(bad=300, total=100_000), "busy-b": RatioCounts(bad=200, total=60_000)}  # fmt: skip
CONTROLS_AFTER = {"busy-a": RatioCounts(bad=310, total=101_000), "busy-b": RatioCounts(bad=190, total=59_000)}  # fmt: skip


#: a night budget's per-test alpha (5 % over 25 namespaces × 4 rules, Holm, last look)
NIGHT_ALPHA = 0.000125


def quiet_input(
    name: str, before: tuple[float, float], after: tuple[float, float], alpha: float | None = None
) -> RuleInput:
    """A namespace's (5xx, requests) over the 10-minute before-window and the 30-minute
    after-window (both extensions used)."""
    return RuleInput(
        rule=ERRORS,
        namespace=name,
        before=RatioCounts(bad=before[0], total=before[1]),
        after=RatioCounts(bad=after[0], total=after[1]),
        controls_before=CONTROLS_BEFORE,
        controls_after=CONTROLS_AFTER,
        alpha=alpha,
    )


def judged(inputs: dict[str, RuleInput], context: WaveContext, policy=None):
    per_rule = {name: [judge_rule(data)] for name, data in inputs.items()}
    keyed = {(name, data.rule.name): data for name, data in inputs.items()}
    policies = {ERRORS.name: policy} if policy else None
    return judge_wave(per_rule, keyed, [ERRORS], context, policies)


#: eight healthy quiet namespaces at ~0.2-0.7 rps, 0.3 % errors: too thin alone, enough pooled
HEALTHY = {
    f"quiet-{i}": quiet_input(f"quiet-{i}", (1, 120 + 40 * i), (2, 360 + 120 * i)) for i in range(8)
}


def test_the_plan_puts_namespaces_busy_enough_to_judge_first_and_quiet_ones_last():
    forecast = {"a": 90.0, "b": 60_000.0, "c": 4_000.0, "d": 499.0}
    assert order_by_evidence(["a", "b", "c", "d", "e"], forecast, 500) == ("b", "c", "d", "a", "e")
    # the operator's canary stays first whatever its traffic
    assert order_by_evidence(["a", "b", "c"], forecast, 500, canary="a") == ("a", "b", "c")


def test_a_namespace_under_the_rules_minimum_is_thin_and_a_silent_one_is_not():
    assert thin(quiet_input("q", (1, 120), (1, 360)))
    assert not thin(quiet_input("busy", (30, 10_000), (31, 10_000)))
    # served before the restart, nothing after: its silence is the evidence, not thinness
    silent = quiet_input("gone", (30, 10_000), (0, 0))
    assert not thin(silent)


def test_pooled_counts_add_up():
    assert pooled([RatioCounts(1, 100), RatioCounts(2, 300)]) == RatioCounts(3, 400)


def test_healthy_quiet_namespaces_pass_pooled_at_the_last_look_and_say_so():
    verdicts = judged(HEALTHY, WaveContext(final_look=True))
    assert DEFAULT_QUIET_POLICY is QuietPolicy.POOL
    for name, verdict in verdicts.items():
        assert verdict.verdict.verdict is Verdict.PASS, verdict.verdict.reason
        assert verdict.evidence is Evidence.POOL
        assert "pooled with" in verdict.verdict.rules[0].reason
        assert name not in verdict.verdict.rules[0].reason.split("pooled with")[1].split(":")[0]


def test_before_the_last_look_a_quiet_namespace_waits_for_more_of_its_own_data():
    verdicts = judged(HEALTHY, WaveContext(final_look=False))
    assert {v.verdict.verdict for v in verdicts.values()} == {Verdict.INCONCLUSIVE}


def test_hold_keeps_todays_behaviour():
    verdicts = judged(HEALTHY, WaveContext(passed_before=("busy-a",)), QuietPolicy.HOLD)
    assert {(v.verdict.verdict, v.evidence) for v in verdicts.values()} == {
        (Verdict.INCONCLUSIVE, Evidence.HELD)
    }


def test_inherit_needs_a_busier_namespace_the_revision_passed_before():
    alone = {"quiet-0": HEALTHY["quiet-0"]}
    held = judged(alone, WaveContext(), QuietPolicy.INHERIT)["quiet-0"]
    assert (held.verdict.verdict, held.evidence) == (Verdict.INCONCLUSIVE, Evidence.HELD)
    passed = judged(alone, WaveContext(passed_before=("busy-a",)), QuietPolicy.INHERIT)["quiet-0"]
    assert (passed.verdict.verdict, passed.evidence) == (Verdict.PASS, Evidence.INHERITED)
    assert "busy-a" in passed.verdict.rules[0].reason


def test_a_pool_too_thin_falls_back_on_the_revisions_verdicts_before_it():
    two = {n: quiet_input(n, (0, 60), (0, 180)) for n in ("q-1", "q-2")}  # 0.1 rps each
    verdicts = judged(two, WaveContext(passed_before=("busy-a", "busy-b")))
    assert {(v.verdict.verdict, v.evidence) for v in verdicts.values()} == {
        (Verdict.PASS, Evidence.INHERITED)
    }


def test_a_regression_confined_to_one_quiet_namespace_is_never_passed_whatever_the_policy():
    # errors +5 pp at 0.2 rps: 120 requests before, 360 after; pooled with healthy ones
    # the pool hardly moves, and the busy namespaces before it passed
    # at the rule's own alpha its own data fails it; at a night budget's alpha it does
    # not, and the screen and the 5xx cap refuse the pass
    for alpha, own in ((None, Verdict.FAIL), (NIGHT_ALPHA, Verdict.INCONCLUSIVE)):
        inputs = {**HEALTHY, "sick": quiet_input("sick", (0, 120), (19, 360), alpha)}
        for policy in QuietPolicy:
            sick = judged(inputs, WaveContext(passed_before=("busy-a",)), policy)["sick"]
            assert sick.verdict.verdict is own, (policy, sick.verdict.reason)
            reason = sick.verdict.rules[0].reason
            if own is Verdict.FAIL:
                assert sick.evidence is Evidence.OWN and reason.startswith("regression")
            elif policy is QuietPolicy.HOLD:
                assert sick.evidence is Evidence.HELD and reason.startswith("quiet: hold")
            else:
                assert sick.evidence is Evidence.HELD
                assert "not passed: its own data leans to a regression" in reason


def test_a_quiet_regression_its_own_empty_before_window_cannot_show_is_held_on_the_waves_rate():
    # errors +5 pp at 0.2 rps as the night benchmark drew it on the nights it slipped
    # through: no errors in 110 requests before, 9 in 300 after (3 %) — its own test
    # against "no change" gives p ≈ 0.02, under the cap (more than 10) — while the wave's
    # other namespaces served ~0.3 % errors before the restart
    sick = quiet_input("sick", (0, 110), (9, 300), NIGHT_ALPHA)
    inputs = {**HEALTHY, "sick": sick}
    own = judge_rule(sick)
    assert own.verdict is Verdict.INCONCLUSIVE
    assert own.statistic["p_value_no_change"] > 0.01  # the first screen alone lets it pass
    for policy in (QuietPolicy.POOL, QuietPolicy.INHERIT):
        verdict = judged(inputs, WaveContext(passed_before=("busy-a",)), policy)["sick"]
        assert (verdict.verdict.verdict, verdict.evidence) == (Verdict.INCONCLUSIVE, Evidence.HELD)
        assert "against the wave's before-rate" in verdict.verdict.rules[0].reason
    # the healthy ones around it still pass on the pool
    healthy = judged(inputs, WaveContext(passed_before=("busy-a",)))
    assert all(healthy[n].verdict.verdict is Verdict.PASS for n in HEALTHY)


def test_a_quiet_namespace_whose_errors_are_always_higher_than_the_waves_is_not_held_for_it():
    # 2 % errors before and after — ten times the wave's rate, but no change of its own
    steady = quiet_input("steady", (3, 150), (9, 450), NIGHT_ALPHA)
    verdict = judged({**HEALTHY, "steady": steady}, WaveContext(passed_before=("busy-a",)))
    assert (verdict["steady"].verdict.verdict, verdict["steady"].evidence) == (
        Verdict.PASS,
        Evidence.POOL,
    ), verdict["steady"].verdict.rules[0].reason


def test_the_5xx_cap_keeps_a_quiet_namespace_from_passing():
    # 12 of 360 (3.3 %) with a before-window that happened to hold as many: the screen sees
    # no change, the cap still refuses the pass
    inputs = {"q": quiet_input("q", (4, 120), (12, 360))}
    q = judged(inputs, WaveContext(passed_before=("busy-a",)), QuietPolicy.INHERIT)["q"]
    assert q.verdict.verdict is Verdict.INCONCLUSIVE
    assert "5xx responses of 360" in q.verdict.rules[0].reason


def test_a_crash_loop_fails_a_namespace_with_no_traffic_at_all():
    inputs = {"q": quiet_input("q", (0, 30), (0, 90))}
    health = {"q": HealthSignals(restarts=4, crash_looping=("q/app-0/app",))}
    q = judged(inputs, WaveContext(passed_before=("busy-a",), health=health))["q"]
    assert (q.verdict.verdict, q.evidence) == (Verdict.FAIL, Evidence.HEALTH)
    assert "crash loop" in q.verdict.reason and "q/app-0/app" in q.verdict.reason


def test_a_proxy_not_ready_fails_even_a_busy_namespace():
    inputs = {"busy": quiet_input("busy", (30, 10_000), (31, 10_000))}
    health = {"busy": HealthSignals(proxies_not_ready=("busy/web-1",))}
    verdict = judged(inputs, WaveContext(health=health))["busy"]
    assert verdict.verdict.verdict is Verdict.FAIL and "proxy not ready" in verdict.verdict.reason


def test_a_busy_namespace_keeps_its_own_verdict():
    inputs = {"busy": quiet_input("busy", (30, 10_000), (31, 10_000))}
    verdict = judged(inputs, WaveContext())["busy"]
    assert (verdict.verdict.verdict, verdict.evidence) == (Verdict.PASS, Evidence.OWN)


def test_a_pool_that_shows_a_regression_fails_every_quiet_namespace_in_it():
    # every quiet namespace a little worse (+1.5 pp): none shows it alone, the pool does
    inputs = {
        name: quiet_input(name, (1, data.before.total), (round(0.018 * data.after.total), data.after.total), NIGHT_ALPHA)  # type: ignore[union-attr]
        for name, data in HEALTHY.items()
    }  # fmt: skip
    verdicts = judged(inputs, WaveContext(passed_before=("busy-a",), final_look=False))
    assert {(v.verdict.verdict, v.evidence) for v in verdicts.values()} == {
        (Verdict.FAIL, Evidence.POOL)
    }


def test_an_undecided_busy_namespace_is_judged_by_policy_only_at_the_last_look():
    # 2 000 requests a window: enough for the rule, not to decide +0.25 pp (within 0.5 pp)
    undecided = {"mid": quiet_input("mid", (6, 2_000), (17, 2_000), NIGHT_ALPHA)}
    assert judge_rule(undecided["mid"]).verdict is Verdict.INCONCLUSIVE
    context = WaveContext(passed_before=("busy-a",))
    mid = judged(undecided, context)["mid"]
    assert (mid.verdict.verdict, mid.evidence) == (Verdict.PASS, Evidence.INHERITED)
    early = judged(undecided, WaveContext(passed_before=("busy-a",), final_look=False))["mid"]
    assert early.verdict.verdict is Verdict.INCONCLUSIVE
    # its estimate beyond the allowance (+0.9 pp): suspect, never passed — held
    suspect = {"mid": quiet_input("mid", (6, 2_000), (24, 2_000), NIGHT_ALPHA)}
    held = judged(suspect, context)["mid"]
    assert held.verdict.verdict is Verdict.INCONCLUSIVE
    assert held.evidence in (Evidence.OWN, Evidence.HELD)


def test_a_pool_whose_mix_shifted_shows_no_change_that_no_namespace_has():
    # two healthy namespaces, 0.1 % and 3 % errors; the noisy one is twice as busy after
    # the restart: summed as they are the pool's error rate rises ~+0.5 pp, standardised
    # to the before-window's mix it does not move
    mix = {
        "low": quiet_input("low", (0.4, 400), (0.4, 400), NIGHT_ALPHA),
        "high": quiet_input("high", (12, 400), (24, 800), NIGHT_ALPHA),
    }
    pool = pool_input(ERRORS, list(mix.values()))
    assert pool.before.ratio == pytest.approx(pool.after.ratio)  # type: ignore[union-attr]
    assert pool.after.total == pytest.approx(1200)  # type: ignore[union-attr]
    naive = pooled([m.after for m in mix.values() if m.after is not None])
    assert naive.ratio > pool.after.ratio + 0.004  # type: ignore[union-attr]
