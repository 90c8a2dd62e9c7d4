"""A false-rollback budget for a whole night: how much alpha each test may spend.

One upgrade night judges N namespaces × M rules; a namespace rolls back when any of its
critical rules fails. Each test run at the rule's own confidence would let false rollbacks
add up with every namespace and rule. These pure functions split one budget — the chance
of at least one false rollback the operator accepts for the night — over the tests:

- ``night_alpha``: alpha spending with an even split over every test the night plans
  (Bonferroni: valid whatever the dependence between tests, and each test's alpha is known
  before its data arrives, so verdicts never wait for the rest of the night);
- ``holm``: Holm's step-down procedure, for when several namespaces are judged at once
  (a wave): same guarantee, never less power than the even split.

The engine asks for the per-test alpha and passes it as ``RuleInput.alpha``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping


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
