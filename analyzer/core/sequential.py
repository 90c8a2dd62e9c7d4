"""Anytime-valid looks: judge at every step of the after-window, and of its extensions,
without spending more false-rollback budget than one look.

Why: a fixed window makes a gross regression wait for the whole after-window, and every
extension is another look that could fail on noise. A confidence sequence holds at every
look at once, so the service may judge after each step and stop as soon as the answer is
certain either way: FAIL as soon as the rule's ``failWhen`` holds at every look (a change
significant against no change with its estimate beyond the allowance, or a change beyond
the allowance certain), PASS as soon as the worst plausible change is inside it.

The statistic. Every judge estimates a change ``Δ`` (net of the controls) with a standard
error ``SE`` (``RuleResult.statistic["estimate"]``, ``["estimate_standard_error"]`` and the
allowance ``["estimate_allowance"]``, on the rule's own scale: points of error rate, log
quantile, log request rate). As the after-window grows, ``Δ`` is the before-window part
(fixed at every look) minus an after-window average; with information ``I = 1 / SE²``,
``S = I·(Δ − δ)`` is then, to the normal approximation the fixed-window judge uses too, a
Brownian motion in ``I``: ``Cov(Δ_s, Δ_t) = Var(Δ_t)`` for s < t, which is Brownian
motion's own covariance read as an average. Controls enter the same way (before part fixed,
after part growing), so they keep carrying the shared, time-varying rate of the night.

The boundary. Robbins' normal-mixture martingale (Howard, Ramdas, McAuliffe and Sekhon,
"Time-uniform, nonparametric, nonasymptotic confidence sequences", 2021; for asymptotic
statistics like ours, Waudby-Smith et al., "Time-uniform central limit theory and
asymptotic confidence sequences"), one-sided, mixing over positive drifts with a half-normal
of precision ``ρ``::

    M = 2·√(ρ / (I + ρ)) · exp(S² / (2(I + ρ))) · Φ(S / √(I + ρ))

is a nonnegative supermartingale with ``M = 1`` at the start whenever the true change is
at most ``δ``; by Ville's inequality it ever reaches ``1/α`` with chance at most ``α``,
however often it is looked at. ``1/M`` (its running minimum) is the always-valid p-value.
``ρ`` sets where the boundary is tightest: a tenth of the information a default
after-window as long as the before-window would give (known from the before-window alone:
the judge's standard error of the before-window against itself), so from the first full
window on the boundary is z ≈ 3.4 at α = 1 % against 2.33 for one fixed look — the price of
looking at every step, paid once instead of per look.

Why closed forms and not a library: PyPI's ``confseq`` (alpha, 0.0.11) builds a C++
extension and needs matplotlib, pandas and pytest at run time; ``savvi`` (0.3.1) brings
cvxpy, and its multinomial and Poisson-process tests (Lindon and Malek, 2022) take one event
at a time, where we have per-step counts with a fixed before-window; ``expectation`` is not
available from the package index this project installs from. The mixture above is a few
lines and is the boundary those libraries implement for this case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from scipy import optimize

from analyzer.core.judge import RuleInput, judge_rule
from analyzer.core.rules import Direction, FailWhen
from analyzer.core.verdicts import RuleResult, Verdict

#: ``ρ`` = the reference information ÷ this: the boundary (in z) is flattest and lowest for
#: information 4–30× ``ρ`` — 3.4 at α = 1 % from there (2.33 for one fixed look), 4.2 at
#: 0.05 % (3.3) — and an after-window from its first step to forever, against a fixed
#: before-window, spans about ⅕ to 2× the reference information.
REFERENCE_SPREAD = 10.0


def mixture_log_martingale(excess: float, standard_error: float, reference: float) -> float:
    """``log M`` for an estimated excess ``Δ − δ`` with standard error ``standard_error``;
    ``reference``: the standard error at which the boundary is tightest (``ρ = 1/reference²``)."""
    information = 1.0 / standard_error**2
    rho = 1.0 / (REFERENCE_SPREAD * reference**2)
    total = information + rho
    s = excess * information
    return (
        math.log(2.0)
        + 0.5 * math.log(rho / total)
        + s * s / (2.0 * total)
        + _log_normal_cdf(s / math.sqrt(total))
    )


def _log_normal_cdf(x: float) -> float:
    """``log Φ(x)`` for one number, without scipy's per-call overhead (looks are many)."""
    if x > -30:
        return math.log(0.5 * math.erfc(-x / math.sqrt(2.0)))
    # Mills ratio: Φ(x) ≈ φ(x)/|x|·(1 − 1/x² + 3/x⁴) far in the lower tail
    return (
        -0.5 * x * x
        - math.log(-x)
        - 0.5 * math.log(2 * math.pi)
        + math.log1p(-1 / (x * x) + 3 / x**4)
    )


def always_valid_p_value(excess: float, standard_error: float, reference: float) -> float:
    """``min(1, 1/M)``: valid at every look at once (reject when ≤ α at any look)."""
    if standard_error <= 0:
        return 0.0 if excess > 0 else 1.0
    return min(1.0, math.exp(-mixture_log_martingale(excess, standard_error, reference)))


def lower_bound(estimate: float, standard_error: float, reference: float, alpha: float) -> float:
    """The one-sided (1 − α) confidence-sequence lower bound of the change: the smallest
    ``δ`` not rejected at this look."""
    if standard_error <= 0:
        return estimate

    def crossing(delta: float) -> float:
        return mixture_log_martingale(estimate - delta, standard_error, reference) - math.log(
            1 / alpha
        )

    if crossing(estimate) >= 0:  # cannot happen (M(0) ≤ 2·√(ρ/(I+ρ))·½ < 1/α); be safe
        return estimate
    low = estimate - 8 * standard_error
    while crossing(low) < 0:
        low -= 8 * standard_error
    return float(optimize.brentq(crossing, low, estimate, xtol=1e-6 * standard_error))


@dataclass(frozen=True)
class Look:
    """One look's anytime-valid figures for a rule (all in the bad direction)."""

    p_value: float  # always-valid p-value of "the change is within the allowance"
    p_value_within: float  # always-valid p-value of "the change is beyond the allowance"
    lower: float  # confidence-sequence bound at 1 − α (FAIL when above the allowance)
    upper: float  # confidence-sequence bound at passConfidence (PASS when within)
    p_value_no_change: float = 1.0  # always-valid p-value of "no change" (``estimate-beyond``)


def look(
    change: float,
    standard_error: float,
    allowance: float,
    reference: float,
    alpha: float,
    pass_confidence: float,
    direction: Direction,
    error_at_allowance: float | None = None,
) -> Look:
    """The anytime-valid figures for one rule at one look, from the judge's change (signed,
    raw), its standard error and the allowance (on the same scale). ``both``: each side at
    half the error. ``error_at_allowance``: the standard error under the FAIL test's null
    (the change at the allowance), for that test and its bound; default ``standard_error``."""
    fail_error = error_at_allowance or standard_error
    sides = 2 if direction is Direction.BOTH else 1
    candidates = []
    signs = (
        (1.0, -1.0)
        if direction is Direction.BOTH
        else ((-1.0,) if direction is Direction.DECREASE else (1.0,))
    )
    for sign in signs:
        worse = sign * change
        beyond = always_valid_p_value(worse - allowance, fail_error, reference)
        within = always_valid_p_value(allowance - worse, standard_error, reference)
        none = always_valid_p_value(worse, standard_error, reference)
        low = lower_bound(worse, fail_error, reference, alpha / sides)
        high = -lower_bound(-worse, standard_error, reference, (1 - pass_confidence) / sides)
        candidates.append(
            (min(1.0, sides * beyond), min(1.0, sides * within), low, high, min(1.0, sides * none))
        )
    return Look(
        p_value=min(c[0] for c in candidates),
        p_value_within=max(c[1] for c in candidates),
        lower=max(c[2] for c in candidates),
        upper=max(c[3] for c in candidates),
        p_value_no_change=min(c[4] for c in candidates),
    )


def reference_error(data: RuleInput) -> float | None:
    """The standard error a default after-window like the before-window would give: the
    judge's before-window against itself (controls too). Depends on the before-window only,
    so it is fixed before the first look. None when that cannot be judged."""
    same = replace(data, after=data.before, controls_after=data.controls_before)
    return judge_rule(same).statistic.get("estimate_standard_error") or None


def judge_look(
    data: RuleInput, reference: float | None = None, *, scheduled: bool = False
) -> RuleResult:
    """Judge one rule at one look of a growing after-window, anytime-valid.

    ``data`` is what ``judge_rule`` takes, its after-windows (canary and controls) running
    from the end of the settle time to this look; ``reference``: ``reference_error(data)``,
    computed once per restart (it is recomputed when not given). The fixed-window judge
    gives the change and its standard error; the verdict then comes from the confidence
    sequence, following the rule's ``failWhen``: FAIL when the always-valid test of no
    change is below α and the estimate is beyond the allowance (``estimate-beyond``), or
    when the (1 − α) lower bound is beyond the allowance (``beyond-allowance``); PASS when its ``passConfidence`` upper bound is within, else INCONCLUSIVE.
    Checks that need no statistics keep the fixed judge's verdict: too little evidence
    (never PASS), no data, a ceiling or floor breached (FAIL). ``scheduled``: this look is
    one the engine takes anyway (the end of the default after-window or of an extension):
    there the fixed look's PASS stands too, so judging every minute never holds a
    namespace that fixed windows would pass (a FAIL still needs the sequence's bound)."""
    fixed = judge_rule(data)
    statistic = fixed.statistic
    if "estimate" not in statistic or fixed.verdict is Verdict.ERROR:
        return fixed
    judging = data.rule.spec.judge
    alpha = statistic["alpha"]
    change, error = statistic["estimate"], statistic["estimate_standard_error"]
    allowance = statistic["estimate_allowance"]
    if reference is None:
        reference = reference_error(data) or error
    seen = look(
        change,
        error,
        allowance,
        reference,
        alpha,
        judging.pass_confidence,
        judging.direction,
        statistic.get("estimate_standard_error_at_allowance"),
    )
    fixed_fail = fixed.verdict is Verdict.FAIL and not statistic["p_value"] < alpha
    short = fixed.verdict is Verdict.INCONCLUSIVE and fixed.reason.startswith("too little")
    if judging.fail_when is FailWhen.BEYOND_ALLOWANCE:
        p_value = seen.p_value
        certain = p_value < alpha
    else:  # significant against no change at every look, estimate beyond the allowance
        p_value = seen.p_value_no_change
        worse = -change if judging.direction is Direction.DECREASE else change
        if judging.direction is Direction.BOTH:
            worse = abs(change)
        certain = p_value < alpha and worse > allowance
    if fixed_fail or certain:  # fixed_fail: a ceiling or floor, not the statistic
        verdict = Verdict.FAIL
    elif (seen.upper <= allowance or (scheduled and fixed.verdict is Verdict.PASS)) and not short:
        verdict = Verdict.PASS
    else:
        verdict = Verdict.INCONCLUSIVE
    sequential = {
        "always_valid_p_value": p_value,
        "always_valid_p_value_beyond_allowance": seen.p_value,
        "always_valid_p_value_no_change": seen.p_value_no_change,
        "always_valid_p_value_within": seen.p_value_within,
        "lower_bound": seen.lower,
        "upper_bound": seen.upper,
        "reference_standard_error": reference,
        "boundary": "normal mixture (Robbins), one-sided, anytime-valid",
    }
    reason = fixed.reason
    if verdict is not fixed.verdict:
        what = {
            Verdict.FAIL: "regression certain at every look",
            Verdict.PASS: "within the allowance at every look",
            Verdict.INCONCLUSIVE: "not yet certain at every look",
        }[verdict]
        reason = f"{what}: {fixed.reason.split(': ', 1)[-1]}"
    return replace(
        fixed,
        verdict=verdict,
        reason=reason,
        statistic={**statistic, "p_value": p_value, "sequential": sequential},
    )
