"""Quiet namespaces: how a namespace too quiet to be judged on its own traffic is judged
anyway, without ever passing one whose own data shows a regression.

Why it exists: nights are when traffic is lowest. Below a few requests per second a
namespace cannot reach a rule's ``minEvidence.requests`` in a window, every look at it is
INCONCLUSIVE and the night holds for a person however healthy the revision is. This module
decides, purely (results, observations and health signals in; verdicts out):

- **the plan's order** (``core.plan_order.order_by_evidence``): the canary and the early waves are the
  namespaces busy enough to be judged at their forecast traffic (the operator may pin the
  canary); quiet ones go last, after the revision has been judged on real traffic;
- **what judges a quiet namespace** (``judge_wave``), by each rule's ``quiet`` policy:
  ``pool`` (default) — the wave's quiet namespaces summed into one pooled observation and
  judged net of the same controls, so a revision that hurts each a little is still caught;
  when even the pool is too thin, as ``inherit``; ``inherit`` — the revision's verdicts on
  the busier namespaces before it this night; ``hold`` — the rule stays INCONCLUSIVE (the
  night holds, as before this policy existed);
- **volume-free health gates** (``core.health_gates``): container restarts and crash loops
  since the restart, proxies not ready (a FAIL: the namespace is broken whatever its
  traffic), and an absolute cap on 5xx responses in the after-window (never passed above
  it: held for a person). Rollout and readiness are already required by the upgrade
  before any judgement (``core.upgrade``: rollout deadline, proxy verification).

At a wave's last look the same policies (without a pool) also judge a namespace busy enough
for its rules that is still INCONCLUSIVE with its own estimate within the allowance
(``within_allowance``): undecided, not suspect; one whose estimate is beyond it stays held.

Whatever the policy, a namespace whose own data shows a regression is never passed: its
own FAIL stays a FAIL, and a pooled or inherited pass is refused when its own estimate is
beyond the rule's allowance with ``p < SCREEN_ALPHA`` (``own_data_leans_bad``), when its
estimate is beyond the allowance and its after-window, judged against the wave's pooled
before-rate net of the controls, is a regression beyond the allowance at ``SCREEN_ALPHA``
(``wave_refusal``: for error counts, whose quiet before-windows are nearly empty), or the
after-window's 5xx pass the cap. Every verdict this module gives names the evidence that
judged it (``Evidence``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from scipy import stats

from analyzer.core.health_gates import (
    HealthGates,
    HealthSignals,
    gate_problems,
)
from analyzer.core.judge import RuleInput, judge_rule
from analyzer.core.observations import BucketCounts, Observation, RatioCounts, VolumeCount
from analyzer.core.quiet_policy import DEFAULT_QUIET_POLICY, QuietPolicy
from analyzer.core.quiet_screens import (
    own_data_leans_bad,
    wave_refusal,
    wave_screen_text,
    within_allowance,
)
from analyzer.core.rules import Rule, RuleType
from analyzer.core.verdicts import NamespaceVerdict, RuleResult, Verdict, combine_rule_results

#: ``inherit`` needs at least this many namespaces the revision passed on their own
#: traffic earlier in the night (the canary at least).
INHERIT_MIN_PASSED = 1
#: ``thin``: a namespace a healthy revision would pass less often than this (one-sided
#: normal quantile of 0.95) cannot be judged on its own evidence
Z_POWER = float(stats.norm.ppf(0.95))


class Evidence(StrEnum):
    """Which evidence judged a namespace (the report's ``evidence`` column)."""

    OWN = "own"  # its own traffic, as every busy namespace
    POOL = "pool"  # pooled with the wave's other quiet namespaces
    INHERITED = "inherited"  # the revision's verdicts on busier namespaces before it
    HEALTH = "health"  # a volume-free health gate (crash loop, restarts, proxies, 5xx cap)
    HELD = "held"  # nothing allowed a decision: a person decides


# -- the plan --------------------------------------------------------------------------------


# -- pooling ---------------------------------------------------------------------------------


def requests_of(observation: Observation | None) -> float | None:
    """The requests an observation counts (None: not a count, e.g. a value series)."""
    if isinstance(observation, RatioCounts):
        return observation.total
    if isinstance(observation, BucketCounts):
        return observation.total
    if isinstance(observation, VolumeCount):
        return observation.count
    return None


def thin(data: RuleInput, result: RuleResult | None = None) -> bool:
    """Whether one namespace's evidence is too thin for the rule to decide on it: fewer
    requests than the rule needs in a window; the judge finding too little to estimate at
    all (e.g. too few requests in a latency tail); or a change so uncertain that even a
    healthy namespace would not be expected to pass (``(z_pass + z_0.95)·SE`` beyond the
    allowance). A namespace whose requests vanished after the restart is not thin: its
    silence is the evidence."""
    needed = max(data.rule.spec.judge.min_evidence.requests, 1)
    if data.rule.spec.type is RuleType.VALUE:
        return False
    before, after = requests_of(data.before), requests_of(data.after)
    if before is not None and before >= needed and not after:
        return False
    if before is None or after is None or before < needed or after < needed:
        return True
    if result is None:
        return False
    error = result.statistic.get("estimate_standard_error")
    allowance = result.statistic.get("estimate_allowance")
    if error is None or allowance is None:
        return "too little evidence" in result.reason
    z_pass = float(stats.norm.ppf(data.rule.spec.judge.pass_confidence))
    return (z_pass + Z_POWER) * error > allowance


def pooled(
    observations: Iterable[Observation], weights: Sequence[float] | None = None
) -> Observation | None:
    """Observations of several namespaces over one window summed into one (counts add;
    histograms add bucket by bucket; charts' points are dropped); ``weights`` scale each
    namespace's counts (ratio and histogram observations; default 1)."""
    items = list(observations)
    if not items:
        return None
    scale = list(weights) if weights is not None else [1.0] * len(items)
    first = items[0]
    if isinstance(first, RatioCounts):
        ratios = [(o, w) for o, w in zip(items, scale, strict=True) if isinstance(o, RatioCounts)]
        return RatioCounts(
            bad=sum(o.bad * w for o, w in ratios), total=sum(o.total * w for o, w in ratios)
        )
    if isinstance(first, BucketCounts):
        same = [
            (o, w)
            for o, w in zip(items, scale, strict=True)
            if isinstance(o, BucketCounts) and o.bounds == first.bounds
        ]
        cumulative = tuple(
            sum(value * w for value, w in zip(values, (w for _, w in same), strict=True))
            for values in zip(*(o.cumulative for o, _ in same), strict=True)
        )
        return BucketCounts(first.bounds, cumulative)
    if isinstance(first, VolumeCount):
        return VolumeCount(
            count=sum(o.count for o in items if isinstance(o, VolumeCount)), seconds=first.seconds
        )
    return None


def pool_input(rule: Rule, members: Sequence[RuleInput], alpha: float | None = None) -> RuleInput:
    """One rule's input for the pool of ``members`` (same rule, same controls): their
    windows summed, judged at the strictest of ``alpha`` and any member's alpha.

    Error rates and latencies differ from namespace to namespace, so a pool whose mix
    shifted between the windows (one namespace a little busier after the restart) would
    show a change no namespace has. The after-window is therefore standardised to the
    before-window's mix: each member's after counts are weighted by its share of the
    pooled before-window over its share of the pooled after-window (volume rules, which
    judge the total itself, are summed as they are). A member absent from either window
    is left out."""
    both = [m for m in members if m.before is not None and m.after is not None]
    before = [requests_of(m.before) or 0.0 for m in both]
    after = [requests_of(m.after) or 0.0 for m in both]
    weights = [1.0] * len(both)
    if rule.spec.type in (RuleType.RATIO, RuleType.HISTOGRAM) and sum(before) and sum(after):
        weights = [
            (b / sum(before)) / (a / sum(after)) if a > 0 else 0.0
            for b, a in zip(before, after, strict=True)
        ]
    alphas = [m.alpha for m in members if m.alpha is not None]
    if alpha is not None:
        alphas.append(alpha)
    return RuleInput(
        rule=rule,
        namespace="pool(" + ",".join(m.namespace for m in members) + ")",
        before=pooled([m.before for m in both if m.before is not None]),
        after=pooled([m.after for m in both if m.after is not None], weights),
        controls_before=members[0].controls_before,
        controls_after=members[0].controls_after,
        queries=members[0].queries,
        alpha=min(alphas) if alphas else None,
    )


def wave_reference(
    rule: Rule, names: Iterable[str], inputs: Mapping[tuple[str, str], RuleInput]
) -> Observation | None:
    """The wave's pooled before-window for a ratio rule: every judged namespace's before
    counts summed — the error rate a quiet namespace's nearly empty before-window cannot
    pin down on its own (None: not a ratio rule, or no before-window anywhere)."""
    if rule.spec.type is not RuleType.RATIO:
        return None
    befores = [
        data.before
        for name in names
        if (data := inputs.get((name, rule.name))) is not None
        and isinstance(data.before, RatioCounts)
    ]
    return pooled(befores) if befores else None


# -- the wave --------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuietVerdict:
    """A namespace's verdict and the evidence that judged it."""

    verdict: NamespaceVerdict
    evidence: Evidence
    detail: str


def explained(reason: str, quiet: QuietVerdict | None) -> str:
    """A namespace's reason, saying which evidence judged it when not its own traffic."""
    if quiet is None or quiet.evidence is Evidence.OWN:
        return reason
    return f"{reason} [evidence: {quiet.evidence.value} — {quiet.detail}]"


@dataclass(frozen=True)
class WaveContext:
    """What the wave's quiet namespaces may lean on."""

    #: namespaces the revision passed on their own traffic earlier in this night
    passed_before: tuple[str, ...] = ()
    #: health per judged namespace (absent: not known, no gate)
    health: Mapping[str, HealthSignals] | None = None
    gates: HealthGates = field(default_factory=HealthGates)
    #: the wave's last look (no extension left): only then may a policy pass a quiet
    #: namespace, on all the own data the night allows; a pooled FAIL acts at any look
    final_look: bool = True
    #: the per-test alpha a pool is judged at (the night budget's; None: each rule's own)
    alpha: float | None = None
    #: per rule: the alpha its pool was given as one more test of the wave's Holm family
    #: (``service.analysis.pool_alphas``); wins over ``alpha``
    pool_alphas: Mapping[str, float] | None = None


def judge_wave(
    per_rule: Mapping[str, Sequence[RuleResult]],
    inputs: Mapping[tuple[str, str], RuleInput],
    rules: Sequence[Rule],
    context: WaveContext,
    policies: Mapping[str, QuietPolicy] | None = None,
) -> dict[str, QuietVerdict]:
    """Every judged namespace's verdict once quiet rules are judged by their policy.

    ``per_rule``: each namespace's results as judged on its own data (after any night
    budget); ``inputs``: the inputs they were judged from; ``policies``: per rule name
    (missing: ``DEFAULT_QUIET_POLICY``). A busy namespace keeps its own verdict unless a
    health gate fails it."""
    policies = policies or {}
    thin_results = _thin_results(per_rule, inputs)
    undecided = (
        {
            (name, result.rule)
            for name, results in per_rule.items()
            for result in results
            if result.verdict is Verdict.INCONCLUSIVE
            and (name, result.rule) not in thin_results
            and within_allowance(result)
        }
        if context.final_look
        else set()
    )
    pools = _pools(per_rule, inputs, rules, thin_results, policies, context)
    references = {rule.name: wave_reference(rule, per_rule, inputs) for rule in rules}
    verdicts: dict[str, QuietVerdict] = {}
    for name, results in per_rule.items():
        signals = (context.health or {}).get(name)
        errors_after = _errors_after(name, inputs, rules)
        failures, holds = gate_problems(signals, errors_after, context.gates)
        judged: list[RuleResult] = []
        used: set[Evidence] = set()
        for result in results:
            key = (name, result.rule)
            if key not in thin_results and key not in undecided:
                judged.append(result)
                continue
            policy = policies.get(result.rule, DEFAULT_QUIET_POLICY)
            pool = pools.get(result.rule) if key in thin_results else None
            wave = (inputs[key], references.get(result.rule)) if key in inputs else None
            again, evidence = _by_policy(result, policy, pool, context, holds, wave)
            if again.verdict is Verdict.PASS and not context.final_look:
                again, evidence = result, Evidence.HELD  # not yet: its own data may grow
            judged.append(again)
            used.add(evidence)
        verdict = combine_rule_results(name, tuple(judged))
        if failures:
            reason = "health gate: " + "; ".join(failures)
            verdicts[name] = QuietVerdict(
                replace(verdict, verdict=Verdict.FAIL, reason=reason), Evidence.HEALTH, reason
            )
            continue
        evidence = _namespace_evidence(verdict.verdict, used)
        verdicts[name] = QuietVerdict(verdict, evidence, _detail(evidence, verdict, context))
    return verdicts


def _errors_after(
    name: str, inputs: Mapping[tuple[str, str], RuleInput], rules
) -> tuple[float, float] | None:
    """5xx in the after-window from the first ratio rule (the error rate), if any."""
    for rule in rules:
        if rule.spec.type is RuleType.RATIO:
            data = inputs.get((name, rule.name))
            if data is not None and isinstance(data.after, RatioCounts):
                return data.after.bad, data.after.total
    return None


@dataclass(frozen=True)
class _Pool:
    members: tuple[str, ...]
    result: RuleResult


def _thin_results(
    per_rule: Mapping[str, Sequence[RuleResult]], inputs: Mapping[tuple[str, str], RuleInput]
) -> set[tuple[str, str]]:
    """``(namespace, rule)`` of every result INCONCLUSIVE because its evidence is thin."""
    return {
        (name, result.rule)
        for name, results in per_rule.items()
        for result in results
        if result.verdict is Verdict.INCONCLUSIVE
        and (data := inputs.get((name, result.rule))) is not None
        and thin(data, result)
    }


def wave_pools(
    per_rule: Mapping[str, Sequence[RuleResult]],
    inputs: Mapping[tuple[str, str], RuleInput],
    rules: Sequence[Rule],
    policies: Mapping[str, QuietPolicy] | None = None,
    thin_results: set[tuple[str, str]] | None = None,
) -> dict[str, RuleInput]:
    """Per pooling rule: the pooled input of the wave's namespaces too thin for it alone
    (at least two, INCONCLUSIVE on their own), as ``judge_wave`` judges it — so its test
    can be counted in the wave's multiple-testing family before it is judged."""
    policies = policies or {}
    if thin_results is None:
        thin_results = _thin_results(per_rule, inputs)
    found: dict[str, RuleInput] = {}
    for rule in rules:
        if policies.get(rule.name, DEFAULT_QUIET_POLICY) is not QuietPolicy.POOL:
            continue
        members = [
            inputs[(name, rule.name)] for name in per_rule if (name, rule.name) in thin_results
        ]
        if len(members) >= 2:
            pooled_input = pool_input(rule, members)
            if pooled_input.before is not None and pooled_input.after is not None:
                found[rule.name] = pooled_input
    return found


def _pools(per_rule, inputs, rules, thin_results, policies, context) -> dict[str, _Pool]:
    """Per pooling rule: the pooled judgement of ``wave_pools``, at the strictest of the
    pool's alpha (its Holm alpha, else the context's) and its members'."""
    found: dict[str, _Pool] = {}
    for name, data in wave_pools(per_rule, inputs, rules, policies, thin_results).items():
        alpha = (context.pool_alphas or {}).get(name, context.alpha)
        if alpha is not None:
            data = replace(data, alpha=min(alpha, data.alpha) if data.alpha else alpha)
        members = tuple(n for n in per_rule if (n, name) in thin_results)
        found[name] = _Pool(members, judge_rule(data))
    return found


def _by_policy(
    result: RuleResult,
    policy: QuietPolicy,
    pool: _Pool | None,
    context: WaveContext,
    holds: tuple[str, ...],
    wave: tuple[RuleInput, Observation | None] | None = None,
) -> tuple[RuleResult, Evidence]:
    """One thin rule result judged by its policy (``wave``: its input and the wave's
    before-window, for ``wave_refusal``)."""
    if policy is QuietPolicy.HOLD:
        return _marked(result, result.verdict, "quiet: hold — ", Evidence.HELD), Evidence.HELD
    if policy is QuietPolicy.POOL and pool is not None:
        others = ", ".join(m for m in pool.members if m != result.namespace)
        pool_alpha = pool.result.statistic.get("alpha")
        if pool.result.verdict is Verdict.FAIL:
            why = f"pooled with {others}: {pool.result.reason}"
            failed = _marked(result, Verdict.FAIL, why, Evidence.POOL, replace_reason=True)
            return replace(
                failed, statistic={**failed.statistic, "pool_alpha": pool_alpha}
            ), Evidence.POOL
        if pool.result.verdict is Verdict.PASS:
            passed, evidence = _guarded(
                result, f"pooled with {others}: {pool.result.reason}", Evidence.POOL, holds, wave
            )
            return replace(
                passed, statistic={**passed.statistic, "pool_alpha": pool_alpha}
            ), evidence
    if len(context.passed_before) >= INHERIT_MIN_PASSED:
        shown = ", ".join(context.passed_before[:5]) + (
            f" and {len(context.passed_before) - 5} more" if len(context.passed_before) > 5 else ""
        )
        return _guarded(
            result,
            f"inherited: the revision passed on {shown} on their own traffic this night",
            Evidence.INHERITED,
            holds,
            wave,
        )
    why = "quiet: no pool to judge with and no busier namespace passed before it — "
    return _marked(result, result.verdict, why, Evidence.HELD), Evidence.HELD


def _guarded(
    result: RuleResult,
    why: str,
    evidence: Evidence,
    holds: tuple[str, ...],
    wave: tuple[RuleInput, Observation | None] | None = None,
) -> tuple[RuleResult, Evidence]:
    """A pooled or inherited PASS, unless the namespace's own data refuses it."""
    refusal = None
    if own_data_leans_bad(result):
        refusal = f"its own data leans to a regression — {result.reason}"
    elif wave is not None and (screen := wave_refusal(result, *wave)) is not None:
        refusal = f"{wave_screen_text(screen)} (own: {result.reason})"
    if refusal is not None:
        refused = f"{why}; not passed: {refusal}"
        return _marked(
            result, Verdict.INCONCLUSIVE, refused, Evidence.HELD, replace_reason=True
        ), Evidence.HELD
    if holds:
        refused = f"{why}; not passed: {'; '.join(holds)}"
        return _marked(
            result, Verdict.INCONCLUSIVE, refused, Evidence.HELD, replace_reason=True
        ), Evidence.HELD
    return _marked(
        result, Verdict.PASS, f"{why} (own: {result.reason})", evidence, replace_reason=True
    ), evidence


def _marked(
    result: RuleResult, verdict: Verdict, why: str, evidence: Evidence, replace_reason: bool = False
) -> RuleResult:
    reason = why if replace_reason else f"{why}{result.reason}"
    return replace(
        result,
        verdict=verdict,
        reason=reason,
        statistic={**result.statistic, "quiet_evidence": evidence.value},
    )


def _namespace_evidence(verdict: Verdict, used: set[Evidence]) -> Evidence:
    if Evidence.HELD in used and verdict is not Verdict.FAIL:
        return Evidence.HELD
    for evidence in (Evidence.POOL, Evidence.INHERITED):
        if evidence in used:
            return evidence
    return Evidence.OWN


def _detail(evidence: Evidence, verdict: NamespaceVerdict, context: WaveContext) -> str:
    return {
        Evidence.OWN: "judged on its own traffic",
        Evidence.POOL: "too quiet alone: judged pooled with the wave's other quiet namespaces",
        Evidence.INHERITED: "too quiet alone: judged on the revision's verdicts on "
        + ", ".join(context.passed_before[:5]),
        Evidence.HELD: "too quiet alone, and no policy allowed a decision: " + verdict.reason,
        Evidence.HEALTH: verdict.reason,
    }[evidence]
