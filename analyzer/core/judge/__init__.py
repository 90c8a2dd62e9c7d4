"""The judge: one rule, one namespace, before vs after — PASS, FAIL or INCONCLUSIVE.

Pure functions over observations (see ``observations``). Principles:

- Counts, not averaged ratios: error rates by a two-proportion test on request counts,
  latency by tail counts from histogram buckets, volume as a Poisson rate.
- Controls: namespaces not yet upgraded, over the same windows, are the concurrent control;
  the canary's change is judged net of theirs (difference in differences), which cancels
  night-time drift that hits everyone.
- A FAIL needs both statistical confidence (``confidence``) and a change beyond what the
  rule allows (``allowedChange``), with or without controls; ``failWhen`` says how:
  ``estimate-beyond`` (default) — the change is significant against "no change" (net of
  controls) and its point estimate is beyond the allowance; ``beyond-allowance`` — the
  change beyond the allowance is itself significant (fewer FAILs near the allowance,
  slower, more INCONCLUSIVE). Either way significant-but-allowed (say +14 % against +20 %
  allowed) is not a regression. ``statistic.p_value`` is the test that decided (what the
  night budget spends); ``p_value_no_change`` and ``p_value_beyond_allowance`` are both
  reported.
- A PASS needs evidence that the change is within what is allowed (``passConfidence``);
  too little evidence is INCONCLUSIVE, never a pass.

Layout (the way pydantic-settings' ``sources`` package grew out of one module):
``common`` holds what every rule type shares (the input, the ERROR outcome, the decision),
and each rule type has its module — ``ratio``, ``histogram``, ``volume``, ``values``. This
package dispatches on the rule's type; ``analyzer.core.judge`` keeps its public names.
"""

from __future__ import annotations

from analyzer.core.formatting import P_VALUE_FLOOR
from analyzer.core.judge.common import ALTERNATIVE, RuleInput, _result, error_result
from analyzer.core.judge.histogram import MIN_TAIL_EVENTS, _judge_histogram
from analyzer.core.judge.ratio import (
    UNCONDITIONAL_TEST_MAX_EVENTS,
    DriftModel,
    NullDrift,
    _judge_ratio,
)
from analyzer.core.judge.values import _judge_values
from analyzer.core.judge.volume import MIN_DISPERSION_STEPS, _judge_volume, count_dispersion
from analyzer.core.rules import AbsentPolicy, RuleType
from analyzer.core.verdicts import RuleResult, Verdict

__all__ = [
    "ALTERNATIVE",
    "MIN_DISPERSION_STEPS",
    "MIN_TAIL_EVENTS",
    "P_VALUE_FLOOR",
    "UNCONDITIONAL_TEST_MAX_EVENTS",
    "DriftModel",
    "NullDrift",
    "RuleInput",
    "count_dispersion",
    "error_result",
    "judge_rule",
]


def judge_rule(data: RuleInput) -> RuleResult:
    """Judge one rule on one namespace."""
    spec = data.rule.spec
    if data.before is None and data.after is None and spec.when_absent is AbsentPolicy.SKIP:
        return _result(
            data,
            Verdict.INCONCLUSIVE,
            f"no series for {data.namespace} in either window: it has none of what this rule "
            "measures (whenAbsent: skip), so the rule does not decide for it",
            applies=False,
        )
    if data.before is None or data.after is None:
        missing = [
            name for name, obs in (("before", data.before), ("after", data.after)) if obs is None
        ]
        return _result(
            data,
            Verdict.INCONCLUSIVE,
            f"no data for {data.namespace} in the {' and '.join(missing)} window "
            "(empty query result: not evidence of health)",
        )
    judge = {
        RuleType.RATIO: _judge_ratio,
        RuleType.HISTOGRAM: _judge_histogram,
        RuleType.VOLUME: _judge_volume,
        RuleType.VALUE: _judge_values,
    }[spec.type]
    return judge(data)
