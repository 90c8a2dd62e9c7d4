"""Judging restarts: query once per rule per window, split by namespace, judge each.

Kept apart on purpose (Flagger's counter-example): this module looks up data and hands it
to the pure judge; it does not decide, record or act. The engine and ``analyze`` both use
it. One range query per rule per window covers every judged namespace and every control;
a rule with its own before-window (``spec.judge.beforeWindow``) queries that window, for the
canary and the controls alike, and judges on the part a short-lived metrics source holds.
With a night budget (``core.multiplicity``) the judged namespaces are one wave: judged once
for their p-values, then re-judged at each test's Holm alpha from the same observations.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from analyzer.core.evidence import ThinEvidence, needed_requests, thin_by_rule
from analyzer.core.judge import RuleInput, error_result, judge_rule
from analyzer.core.multiplicity import NightBudget, holm_alphas
from analyzer.core.observations import (
    Observation,
    VolumeCount,
    control_band,
    extract_observations,
    rule_query,
)
from analyzer.core.ports import MetricsError, MetricsSource, MetricsUnreachableError
from analyzer.core.quiet import QuietVerdict, WaveContext, judge_wave, wave_pools
from analyzer.core.quiet_policy import QuietPolicy
from analyzer.core.rules import Rule, RuleSet, RuleType
from analyzer.core.sequential import judge_look
from analyzer.core.verdicts import NamespaceVerdict, RuleResult, combine_rule_results
from analyzer.core.windows import RestartWindows, Window, WindowError
from analyzer.service.before_windows import (
    fallback_window,
    lacks_controls,
    own_before_window,
    with_window,
)
from analyzer.settings import Settings

log = logging.getLogger("canary_analyzer.analysis")


@dataclass(frozen=True)
class AnalysisRequest:
    """Which namespaces were restarted (judged), which serve as controls, and when."""

    judged: tuple[str, ...]
    controls: tuple[str, ...]
    windows: RestartWindows
    namespace_label: str = "destination_workload_namespace"
    #: judge with anytime-valid bounds (``core/sequential.py``): one look of many at a
    #: growing after-window; ``scheduled``: a look at the end of the after-window or of an
    #: extension, where the fixed judge's PASS stands too
    anytime: bool = False
    scheduled: bool = True
    #: judge a rule with its own ``spec.judge.beforeWindow`` (ending at the restart, for the
    #: canary and its controls); False: ``windows.before`` for every rule (the soak, whose
    #: baseline is the same hours of an earlier night)
    rule_before_windows: bool = True
    #: when controls were restarted (moved earlier this night): a rule with a longer
    #: before-window of its own leaves out the controls restarted inside it
    control_restarts: Mapping[str, datetime] = field(default_factory=dict)

    def controls_for(self, before: Window) -> tuple[str, ...]:
        """The controls whose proxies did not change during ``before`` (or since)."""
        return tuple(
            name
            for name in self.controls
            if (at := self.control_restarts.get(name)) is None or at < before.start
        )

    def judge(self, data: RuleInput) -> RuleResult:
        """The judge this request asks for, on one rule's data."""
        if self.anytime:
            return judge_look(data, scheduled=self.scheduled)
        return judge_rule(data)


@dataclass
class AnalysisOutcome:
    """Verdicts per judged namespace, and how the data source behaved."""

    verdicts: dict[str, NamespaceVerdict]
    queries_sent: int = 0
    unreachable: list[str] = field(default_factory=list)
    #: with a quiet context: which evidence judged each namespace (``core.quiet``)
    evidence: dict[str, QuietVerdict] = field(default_factory=dict)

    @property
    def source_unreachable(self) -> bool:
        """True when the data source was unreachable for every query."""
        return bool(self.unreachable) and len(self.unreachable) == self.queries_sent


def _query_window(source: MetricsSource, query: str, window: Window, step: timedelta) -> list:
    """Points at ``start + step … end``: each covers the step ending at it, so together they
    cover ``[start, end)``."""
    return source.query_range(query, window.start + step, window.end, step)


def analyze_restart(
    source: MetricsSource,
    rules: RuleSet,
    request: AnalysisRequest,
    budget: NightBudget | None = None,
    quiet: WaveContext | None = None,
) -> AnalysisOutcome:
    """Judge every rule on every judged namespace of one restart.

    With ``budget`` the judged namespaces are one wave of the night: each critical,
    non-dry-run test is re-judged at its Holm alpha (``spend_night_budget``). With
    ``quiet`` the rules too thin for a namespace are judged by each rule's ``quiet``
    policy (``core.quiet.judge_wave``) and ``evidence`` says what judged each."""
    windows = request.windows
    step = windows.step
    everyone = sorted(set(request.judged) | set(request.controls))
    per_rule: dict[str, list[RuleResult]] = {name: [] for name in request.judged}
    inputs: dict[tuple[str, str], RuleInput] = {}
    outcome = AnalysisOutcome(verdicts={})
    for rule in rules:
        query = rule_query(rule, request.namespace_label, everyone, step)
        own = rule.spec.judge.before_window if request.rule_before_windows else None
        try:
            judged = windows.with_before(own)
        except WindowError as error:
            for namespace in request.judged:
                per_rule[namespace].append(
                    error_result(rule, namespace, f"spec.judge.beforeWindow: {error}", (query,))
                )
            continue
        shown: dict[str, str] | None = None
        if own is not None and _no_clean_controls(rule, request, judged.before):
            # every control changed its proxies inside the rule's window: without them the
            # night's drift is not netted out, so the rule reads windows.before instead
            shown = fallback_window(windows, own, "every control was restarted inside it")
            judged, own = windows, None
        try:
            found = _judge_on(source, rule, request, query, judged, own, outcome)
            if own is not None and lacks_controls(rule, request.controls, found.results.values()):
                # the controls left are too quiet to net out the night's drift on this rule
                # (late in a night, the busy ones were restarted inside the hour): the
                # rule reads windows.before, with every control, when that gives it some
                short = _judge_on(source, rule, request, query, windows, None, outcome)
                if not lacks_controls(rule, request.controls, short.results.values()):
                    found = replace(short, shown=fallback_window(
                        windows, own, "no control left outside it had enough requests"))  # fmt: skip
        except MetricsError as error:
            if isinstance(error, MetricsUnreachableError):
                outcome.unreachable.append(rule.name)
            for namespace in request.judged:
                per_rule[namespace].append(error_result(rule, namespace, str(error), (query,)))
            continue
        for namespace, data in found.inputs.items():
            inputs[(namespace, rule.name)] = data
            per_rule[namespace].append(with_window(found.results[namespace], found.shown or shown))
    if budget is not None:
        pooled = pool_slots(rules, len(per_rule)) if quiet is not None else 0
        per_rule = spend_night_budget(per_rule, inputs, rules, budget, request.judge, pooled)
    for namespace, results in per_rule.items():
        for result in results:
            log.info(
                "rule judged",
                extra={
                    "fields": {
                        "namespace": namespace,
                        "rule": result.rule,
                        "verdict": result.verdict.value,
                        "reason": result.reason,
                        **(
                            {"alpha": result.statistic["alpha"]}
                            if "alpha_source" in result.statistic
                            else {}
                        ),
                    }
                },
            )
    if quiet is not None:
        outcome.evidence = judge_quiet_wave(per_rule, inputs, rules, quiet, budget)
        outcome.verdicts = {name: q.verdict for name, q in outcome.evidence.items()}
        return outcome
    outcome.verdicts = {
        namespace: combine_rule_results(namespace, tuple(results))
        for namespace, results in per_rule.items()
    }
    return outcome


def judge_quiet_wave(
    per_rule: dict[str, list[RuleResult]],
    inputs: dict[tuple[str, str], RuleInput],
    rules: RuleSet,
    quiet: WaveContext,
    budget: NightBudget | None = None,
    policies: Mapping[str, QuietPolicy] | None = None,
) -> dict[str, QuietVerdict]:
    """``core.quiet.judge_wave`` with each rule's own ``quiet`` policy (or ``policies``); a
    pool is judged at the strictest alpha its members were given (after any night budget)
    and, with ``budget``, at its own alpha as one more test of the wave's Holm family
    (``pool_alphas``; ``per_rule`` re-judged by ``spend_night_budget`` with the same
    ``pool_slots``)."""
    at_alpha = {
        key: replace(data, alpha=result.statistic.get("alpha", data.alpha))
        for name, results in per_rule.items()
        for result in results
        if (data := inputs.get(key := (name, result.rule))) is not None
    }
    if policies is None:
        policies = {rule.name: rule.quiet for rule in rules}
    if budget is not None and quiet.pool_alphas is None:
        found = pool_alphas(per_rule, at_alpha, rules, budget, policies)
        quiet = replace(quiet, pool_alphas=found)
    return judge_wave(per_rule, at_alpha, list(rules), quiet, policies)


def _deciding(rules: Iterable[Rule]) -> list[Rule]:
    return [rule for rule in rules if rule.spec.critical and not rule.spec.dry_run]


def pool_slots(
    rules: RuleSet, judged: int, policies: Mapping[str, QuietPolicy] | None = None
) -> int:
    """How many pooled tests a wave of ``judged`` namespaces may add to its Holm family: one
    per deciding rule whose quiet policy pools, when there are two namespaces to pool. They
    are counted before anyone knows which namespaces will be too thin, so every own test's
    alpha already leaves room for them."""
    if judged < 2:
        return 0
    policies = policies or {}
    return sum(
        1
        for rule in _deciding(rules)
        if policies.get(rule.name, rule.quiet) is QuietPolicy.POOL
    )


def pool_alphas(
    per_rule: Mapping[str, Sequence[RuleResult]],
    inputs: Mapping[tuple[str, str], RuleInput],
    rules: RuleSet,
    budget: NightBudget,
    policies: Mapping[str, QuietPolicy] | None = None,
) -> dict[str, float]:
    """Per pooling rule: the alpha its pool is judged at — its place in Holm's step-down
    over the wave's own tests and its pools together, within the wave's share of the night
    (``holm_alphas`` with ``pooled``). The own tests were judged with the same count
    (``pool_slots``) but with the pools not yet known, as if never rejected; Holm gives
    every test at least as much with the pools' real p-values, so the verdicts stay within
    the family-wise budget. A pool without a p-value gets the even split of the family."""
    deciding = _deciding(rules)
    pools = wave_pools(per_rule, inputs, list(rules), policies)
    if not deciding or not pools:
        return {}
    judged_pools = [judge_rule(data) for data in pools.values()]
    tests = len(per_rule) * len(deciding)
    slots = max(pool_slots(rules, len(per_rule), policies), len(pools))
    per_test = budget.per_test(len(deciding))
    alphas = holm_alphas(
        [*(r for results in per_rule.values() for r in results), *judged_pools],
        per_test,
        tests,
        pooled=slots,
    )
    even = per_test * tests / (tests + slots)
    return {
        name: alphas.get((data.namespace, name), even) for name, data in pools.items()
    }


def spend_night_budget(
    per_rule: dict[str, list[RuleResult]],
    inputs: dict[tuple[str, str], RuleInput],
    rules: RuleSet,
    budget: NightBudget,
    judge: Callable[[RuleInput], RuleResult] = judge_rule,
    pooled: int = 0,
) -> dict[str, list[RuleResult]]:
    """Re-judge one wave's results at their Holm alphas from the night's budget.

    The per-test alpha splits the budget over the plan's namespaces × the critical,
    non-dry-run rules; the wave spends that alpha × its own tests by Holm's step-down,
    ``pooled`` tests of quiet-namespace pools (``pool_slots``) counted with them. A
    rule is never judged looser than its own confidence: where the Holm alpha is larger,
    the rule's own alpha stays (and the result says so). The judge is pure: re-judging
    reuses the observations already fetched, no query is sent again."""
    deciding = sum(1 for rule in rules if rule.spec.critical and not rule.spec.dry_run)
    if deciding == 0:
        return per_rule
    per_test = budget.per_test(deciding)
    alphas = holm_alphas(
        (r for results in per_rule.values() for r in results),
        per_test,
        len(per_rule) * deciding,
        pooled=pooled,
    )
    source = budget.describe(deciding)
    if pooled:  # the wave's pooled tests share its budget
        source += f" with {pooled} pooled test{'s' if pooled != 1 else ''} counted"
    rejudged: dict[str, list[RuleResult]] = {}
    for namespace, results in per_rule.items():
        rejudged[namespace] = []
        for result in results:
            key = (namespace, result.rule)
            if key not in alphas:
                rejudged[namespace].append(result)
                continue
            data = inputs[key]
            own = 1.0 - data.rule.spec.judge.confidence
            night = alphas[key]
            alpha = min(night, own)
            if night <= own:
                why = f"α {_percent(alpha)} from the {source}"
            else:
                why = (
                    f"α {_percent(alpha)} from the rule's own confidence, stricter than "
                    f"{_percent(night)} from the {source}"
                )
            again = with_window(
                judge(replace(data, alpha=alpha)), result.evidence.get("before_window")
            )
            rejudged[namespace].append(
                replace(
                    again,
                    reason=f"{again.reason} [{why}]",
                    statistic={**again.statistic, "night_alpha": night, "alpha_source": why},
                    series=result.series,
                )
            )
    return rejudged


def _no_clean_controls(rule: Rule, request: AnalysisRequest, before: Window) -> bool:
    """True when ``rule`` judges against controls, there are some, and every one of them
    was restarted inside ``before`` (a rule's own, longer before-window)."""
    return (
        rule.spec.judge.use_controls
        and bool(request.controls)
        and not request.controls_for(before)
    )


def _percent(share: float) -> str:
    return f"{share * 100:.3g}%"


@dataclass(frozen=True)
class _RuleJudged:
    """One rule judged on two windows: per judged namespace its input and result; the
    rule's own before-window as results show it (None: ``windows.before``)."""

    inputs: dict[str, RuleInput]
    results: dict[str, RuleResult]
    shown: dict[str, str] | None


def _judge_on(
    source: MetricsSource,
    rule: Rule,
    request: AnalysisRequest,
    query: str,
    judged: RestartWindows,
    own: timedelta | None,
    outcome: AnalysisOutcome,
) -> _RuleJudged:
    """Query ``rule`` over ``judged``'s windows (``own``: its before-window is the rule's
    own) and judge every judged namespace against the controls clean in that window.
    ``MetricsError`` when the source cannot answer."""
    step = judged.step
    shown: dict[str, str] | None = None
    observed: list[dict[str, Observation]] = []
    for window in (judged.before, judged.after):
        outcome.queries_sent += 1
        series = _query_window(source, query, window, step)
        seconds = window.length.total_seconds()
        if own is not None and window is judged.before:
            shown, seconds = own_before_window(series, window, step)
        observed.append(extract_observations(rule, series, request.namespace_label, seconds))
    before, after = observed
    clean = request.controls_for(judged.before)
    controls_before = {n: before[n] for n in clean if n in before}
    controls_after = {n: after[n] for n in clean if n in after}
    chart_controls = {
        "controls_before": [list(p) for p in control_band(controls_before)],
        "controls_after": [list(p) for p in control_band(controls_after)],
    }
    inputs: dict[str, RuleInput] = {}
    results: dict[str, RuleResult] = {}
    for namespace in request.judged:
        data = RuleInput(
            rule=rule,
            namespace=namespace,
            before=before.get(namespace),
            after=after.get(namespace),
            controls_before=controls_before,
            controls_after=controls_after,
            queries=(query,),
        )
        inputs[namespace] = data
        results[namespace] = replace(
            request.judge(data),
            series=_chart_series(before.get(namespace), after.get(namespace), chart_controls),
        )
    return _RuleJudged(inputs, results, shown)


def _chart_series(
    before: Observation | None, after: Observation | None, controls: dict[str, list]
) -> dict[str, list]:
    return {
        "before": [list(p) for p in before.points] if before else [],
        "after": [list(p) for p in after.points] if after else [],
        **controls,
    }


def parse_namespace_list(text: str | None) -> tuple[str, ...]:
    """``a,b, c`` → ``('a', 'b', 'c')``; empty or None → ``()``."""
    if not text:
        return ()
    return tuple(part.strip() for part in text.split(",") if part.strip())


def discover_namespaces(
    source: MetricsSource,
    windows: RestartWindows,
    namespace_label: str,
    metric_selector: str = 'istio_requests_total{reporter="destination"}',
) -> list[str]:
    """Namespaces that served traffic in the before window (for ``--controls auto``)."""
    query = f"sum by ({namespace_label}) (increase({metric_selector}[{int(windows.step.total_seconds())}s]))"
    series = _query_window(source, query, windows.before, windows.step)
    return sorted({s.labels[namespace_label] for s in series if s.labels.get(namespace_label)})


def controls_excluding(candidates: Iterable[str], judged: Sequence[str]) -> tuple[str, ...]:
    """Control candidates minus the judged namespaces."""
    return tuple(sorted(set(candidates) - set(judged)))


def forecast_thin_evidence(
    source: MetricsSource,
    rules: RuleSet,
    namespaces: Sequence[str],
    window: timedelta,
    step: timedelta,
    at: datetime,
    namespace_label: str = "destination_workload_namespace",
    after: timedelta | None = None,
) -> tuple[ThinEvidence, ...]:
    """The planned namespaces whose traffic over ``[at - window, at)`` is below what the
    deciding rules need per window: one query, with the first request-volume rule's own
    PromQL (none: nothing is forecast). Each rule is held to its own binding window
    (``core.evidence.evidence_window``: ``window`` is the before setting, ``after`` the
    after-window, ``window`` when not given). ``MetricsError`` when Prometheus cannot
    answer."""
    needed = needed_requests(rules)
    volume = next((rule for rule in rules if rule.spec.type is RuleType.VOLUME), None)
    if needed <= 0 or volume is None or not namespaces:
        return ()
    after = window if after is None else after
    looked = min(window, after)
    query = rule_query(volume, namespace_label, namespaces, step)
    series = _query_window(source, query, Window(at - looked, at), step)
    observed = extract_observations(volume, series, namespace_label, looked.total_seconds())
    requests = {
        name: observation.count
        for name, observation in observed.items()
        if isinstance(observation, VolumeCount)
    }
    rates = {name: count / looked.total_seconds() for name, count in requests.items()}
    return thin_by_rule(rates, namespaces, rules, window, after)


def planned_evidence_warnings(
    source: MetricsSource,
    rules: RuleSet,
    settings: Settings,
    namespaces: Sequence[str],
    now: datetime,
) -> tuple[str, ...]:
    """Warnings for the planned namespaces too quiet to be judged in the configured windows
    (``forecast_thin_evidence`` over the last window-length, each rule held to its own
    binding window). Advisory: when Prometheus
    cannot answer, one warning says the check was skipped and nothing else changes."""
    windows, upgrade = settings.windows, settings.upgrade
    try:
        found = forecast_thin_evidence(
            source, rules, namespaces, windows.before, windows.step, now,
            settings.rules.namespace_label, after=windows.after,
        )  # fmt: skip
    except MetricsError as error:
        log.warning("could not check the planned namespaces' traffic", exc_info=False,
                    extra={"fields": {"error": str(error)}})  # fmt: skip
        return (f"could not check whether the planned namespaces serve enough traffic to be "
                f"judged: {error}",)  # fmt: skip
    policies = {rule.quiet.value for rule in rules if rule.spec.critical and not rule.spec.dry_run}
    policy = "hold" if policies <= {"hold"} else " / ".join(sorted(policies))
    return tuple(thin.describe(upgrade.on_inconclusive, policy) for thin in found)
