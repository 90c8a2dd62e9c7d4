"""A false-rollback budget for a whole night: how much alpha each test may spend.

One upgrade night judges N namespaces × M rules; a namespace rolls back when any of its
critical rules fails. Each test run at the rule's own confidence would let false rollbacks
add up with every namespace and rule. These pure functions split one budget — the chance
of at least one false rollback the operator accepts for the night — over the tests:

- ``night_alpha``: alpha spending with an even split over every test the night plans
  (Bonferroni: valid whatever the dependence between tests, and each test's alpha is known
  before its data arrives, so verdicts never wait for the rest of the night);
- ``holm``: Holm's step-down procedure, for when several namespaces are judged at once
  (a wave): same guarantee, never less power than the even split;
- ``holm_alphas``: the two together for one wave of judged rule results — each wave's
  share of the night (per-test alpha × its tests) spent by Holm's step-down, as the alpha
  each test is judged at. A wave's pooled quiet-namespace tests (``core.quiet``: one per
  pooling rule) are tests of the same family: they join the step-down (``pooled``) and
  share the wave's budget instead of adding to it.

An inconclusive wave is judged again on a longer after window (an extension): another look
at the same namespaces, which could fail on noise too. The budget counts looks: with
extensions allowed, the first look gets half of each test's share and the extensions split
the other half (``look_share``), so the guarantee holds per night, not per look.

``analyze_restart`` asks for each test's alpha and re-judges with it as ``RuleInput.alpha``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass

from analyzer.core.verdicts import RuleResult

#: A test of one wave: (namespace, rule name).
TestKey = tuple[str, str]


@dataclass(frozen=True)
class NightBudget:
    """The night's false-rollback budget and how many namespaces the whole plan judges."""

    budget: float
    namespaces: int
    #: which look at the wave this is (0: the first judgement, k: the k-th extension) and
    #: how many the plan allows (1 + max extensions)
    look: int = 0
    looks: int = 1
    #: judged at every step with anytime-valid bounds: every look together spends one
    #: look's share, so ``look`` and ``looks`` stay at 0 and 1
    anytime: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.budget < 1:
            raise ValueError(
                f"the night's false-rollback budget must be in (0, 1), got {self.budget}"
            )

    def per_test(self, rules: int) -> float:
        """The even split over ``namespaces × rules`` (``night_alpha``), times this look's
        share (``look_share``)."""
        return night_alpha(self.budget, self.namespaces, rules) * look_share(
            self.look, self.looks
        )

    def describe(self, rules: int) -> str:
        """``night budget 5% over 25 namespaces × 4 rules, Holm within the wave`` (and, with
        extensions allowed, ``, look 1 of 3``)."""
        namespaces = f"{self.namespaces} namespace{'s' if self.namespaces != 1 else ''}"
        rule_count = f"{rules} rule{'s' if rules != 1 else ''}"
        looks = f", look {self.look + 1} of {self.looks}" if self.looks > 1 else ""
        if self.anytime:
            looks = ", every step anytime-valid"
        return (
            f"night budget {self.budget * 100:.4g}% over {namespaces} × {rule_count}, "
            f"Holm within the wave{looks}"
        )


def look_share(look: int, looks: int) -> float:
    """The share of a test's alpha spent at ``look`` (0-based) of ``looks``: all of it with
    no extensions; else half on the first look, where most verdicts are reached, and the
    other half split evenly over the extensions. The shares add up to 1.

    >>> [look_share(k, 3) for k in range(3)]
    [0.5, 0.25, 0.25]
    """
    if looks < 1 or not 0 <= look < looks:
        raise ValueError(f"look {look} is not one of {looks} looks")
    if looks == 1:
        return 1.0
    return 0.5 if look == 0 else 0.5 / (looks - 1)


def night_alpha(budget: float, namespaces: int, rules: int, spent: float = 0.0) -> float:
    """Per-test alpha: the unspent budget split evenly over ``namespaces × rules`` tests.

    >>> round(night_alpha(0.05, 25, 4), 6)
    0.0005
    """
    if not 0 < budget < 1:
        raise ValueError(f"the night's false-rollback budget must be in (0, 1), got {budget}")
    tests = max(namespaces, 1) * max(rules, 1)
    return max(budget - spent, 0.0) / tests


def holm(p_values: Mapping[Hashable, float], budget: float) -> set[Hashable]:
    """Tests rejected (regressions called) by Holm's step-down at family-wise ``budget``."""
    ordered = sorted(p_values.items(), key=lambda item: item[1])
    rejected: set[Hashable] = set()
    count = len(ordered)
    for rank, (key, p_value) in enumerate(ordered):
        if p_value > budget / (count - rank):
            break
        rejected.add(key)
    return rejected


def takes_part(result: RuleResult) -> bool:
    """Whether a result spends the night's budget: critical, not dry-run, with a p-value."""
    p_value = result.statistic.get("p_value")
    return (
        result.decides
        and isinstance(p_value, int | float)
        and not isinstance(p_value, bool)
        and not math.isnan(p_value)
    )


def holm_alphas(
    results: Iterable[RuleResult], per_test_alpha: float, tests: int, pooled: int = 0
) -> dict[TestKey, float]:
    """Each test's alpha under Holm's step-down over one wave.

    The wave's family budget is ``per_test_alpha × tests`` (``tests``: namespaces × critical
    rules of the wave, so tests without a p-value count as never rejected). ``pooled`` more
    tests — the wave's pooled quiet-namespace tests, their results among ``results`` or not
    yet judged — share that budget: they count in the step-down (``tests + pooled`` in all)
    without enlarging it, so the night's family-wise guarantee holds with pools. Sorted by
    p-value, the k-th smallest (k from 0) gets ``budget / (tests + pooled − k)``; from the first test
    not rejected (p ≥ its alpha, as the judge decides) on, every later test gets the alpha
    at which the procedure stopped. Only results that ``takes_part`` are returned, keyed by
    ``(namespace, rule)``.

    >>> from analyzer.core.verdicts import RuleResult, Verdict
    >>> def r(ns, p):
    ...     return RuleResult("error-rate", ns, Verdict.FAIL, "", statistic={"p_value": p})
    >>> alphas = holm_alphas([r("a", 0.001), r("b", 0.003), r("c", 0.2)], 0.0025, 4)
    >>> {namespace: round(alpha, 5) for (namespace, _), alpha in alphas.items()}
    {'a': 0.0025, 'b': 0.00333, 'c': 0.005}
    >>> pooled = holm_alphas([r("a", 0.001), r("b", 0.003), r("c", 0.2)], 0.0025, 4, pooled=1)
    >>> {namespace: round(alpha, 5) for (namespace, _), alpha in pooled.items()}
    {'a': 0.002, 'b': 0.0025, 'c': 0.0025}
    """
    if not 0 < per_test_alpha < 1:
        raise ValueError(f"a per-test alpha must be in (0, 1), got {per_test_alpha}")
    if pooled < 0:
        raise ValueError(f"pooled tests cannot be negative, got {pooled}")
    taking_part = sorted(
        (r for r in results if takes_part(r)),
        key=lambda r: (r.statistic["p_value"], r.namespace, r.rule),
    )
    count = max(tests + pooled, len(taking_part))
    family = per_test_alpha * (count - pooled)
    alphas: dict[TestKey, float] = {}
    stopped: float | None = None
    for rank, result in enumerate(taking_part):
        alpha = stopped if stopped is not None else family / (count - rank)
        alphas[(result.namespace, result.rule)] = alpha
        if stopped is None and not result.statistic["p_value"] < alpha:
            stopped = alpha
    return alphas
