"""Judging restarts: query once per rule per window, split by namespace, judge each.

Kept apart on purpose (Flagger's counter-example): this module looks up data and hands it
to the pure judge; it does not decide, record or act. The engine and ``analyze`` both use
it. One range query per rule per window covers every judged namespace and every control.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta

from analyzer.core.judge import RuleInput, error_result, judge_rule
from analyzer.core.observations import (
    Observation,
    control_band,
    extract_observations,
    rule_query,
)
from analyzer.core.ports import MetricsError, MetricsSource, MetricsUnreachableError
from analyzer.core.rules import RuleSet
from analyzer.core.verdicts import NamespaceVerdict, RuleResult, combine_rule_results
from analyzer.core.windows import RestartWindows, Window

log = logging.getLogger("canary_analyzer.analysis")


@dataclass(frozen=True)
class AnalysisRequest:
    """Which namespaces were restarted (judged), which serve as controls, and when."""

    judged: tuple[str, ...]
    controls: tuple[str, ...]
    windows: RestartWindows
    namespace_label: str = "destination_workload_namespace"


@dataclass
class AnalysisOutcome:
    """Verdicts per judged namespace, and how the data source behaved."""

    verdicts: dict[str, NamespaceVerdict]
    queries_sent: int = 0
    unreachable: list[str] = field(default_factory=list)

    @property
    def source_unreachable(self) -> bool:
        """True when the data source was unreachable for every query."""
        return bool(self.unreachable) and len(self.unreachable) == self.queries_sent


def _query_window(source: MetricsSource, query: str, window: Window, step: timedelta) -> list:
    """Points at ``start + step … end``: each covers the step ending at it, so together they
    cover ``[start, end)``."""
    return source.query_range(query, window.start + step, window.end, step)


def analyze_restart(
    source: MetricsSource, rules: RuleSet, request: AnalysisRequest
) -> AnalysisOutcome:
    """Judge every rule on every judged namespace of one restart."""
    windows = request.windows
    step = windows.step
    everyone = sorted(set(request.judged) | set(request.controls))
    per_rule: dict[str, list[RuleResult]] = {name: [] for name in request.judged}
    outcome = AnalysisOutcome(verdicts={})
    for rule in rules:
        query = rule_query(rule, request.namespace_label, everyone, step)
        try:
            observed: list[dict[str, Observation]] = []
            for window in (windows.before, windows.after):
                outcome.queries_sent += 1
                series = _query_window(source, query, window, step)
                observed.append(
                    extract_observations(
                        rule, series, request.namespace_label, window.length.total_seconds()
                    )
                )
        except MetricsError as error:
            if isinstance(error, MetricsUnreachableError):
                outcome.unreachable.append(rule.name)
            for namespace in request.judged:
                per_rule[namespace].append(error_result(rule, namespace, str(error), (query,)))
            continue
        before, after = observed
        controls_before = {n: before[n] for n in request.controls if n in before}
        controls_after = {n: after[n] for n in request.controls if n in after}
        chart_controls = {
            "controls_before": [list(p) for p in control_band(controls_before)],
            "controls_after": [list(p) for p in control_band(controls_after)],
        }
        for namespace in request.judged:
            result = judge_rule(
                RuleInput(
                    rule=rule,
                    namespace=namespace,
                    before=before.get(namespace),
                    after=after.get(namespace),
                    controls_before=controls_before,
                    controls_after=controls_after,
                    queries=(query,),
                )
            )
            result = replace(
                result,
                series=_chart_series(before.get(namespace), after.get(namespace), chart_controls),
            )
            per_rule[namespace].append(result)
            log.info(
                "rule judged",
                extra={
                    "fields": {
                        "namespace": namespace,
                        "rule": rule.name,
                        "verdict": result.verdict.value,
                        "reason": result.reason,
                    }
                },
            )
    outcome.verdicts = {
        namespace: combine_rule_results(namespace, tuple(results))
        for namespace, results in per_rule.items()
    }
    return outcome


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
