"""The night's forecast: each planned namespace's traffic in the same hours of previous
nights, fetched from Prometheus, turned into what its rules will see (``core.forecast``).

Why it exists: the plan's order (busiest first, ``core.plan_order.order_by_evidence``) and the
forecast shown by ``upgrade --dry-run``, at the start of an upgrade (``upgrade`` and ``serve``
alike: ``night_outlook`` feeds ``service.night_plan.plan_night``), on the status page and in
the report all need the traffic the namespaces will serve while they are judged. Tonight's traffic is not known
yet; the same hours of the previous night (else the same time a week ago) are the best
guide. One range query per rule per night looked at, every namespace at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from analyzer.core.evidence import needed_requests
from analyzer.core.forecast import NamespaceForecast, namespace_forecast
from analyzer.core.multiplicity import night_alpha
from analyzer.core.observations import Observation, extract_observations, rule_query
from analyzer.core.ports import MetricsError, MetricsSource
from analyzer.core.rules import RuleSet, RuleType
from analyzer.service.analysis import planned_evidence_warnings
from analyzer.service.night_plan import NightOutlook
from analyzer.settings import Settings

log = logging.getLogger("canary_analyzer.forecast")

#: How far back the same hours are looked for: the previous night, else a week ago; a
#: namespace with neither (new, or a Prometheus keeping less) is judged by its last window.
NIGHTS_BACK = (timedelta(days=1), timedelta(days=7))


def history(
    source: MetricsSource,
    rules: RuleSet,
    namespaces: Sequence[str],
    window: timedelta,
    step: timedelta,
    at: datetime,
    namespace_label: str,
) -> dict[str, dict[str, Observation | None]]:
    """Per namespace, per rule: one ``window`` of traffic starting at ``at`` one night
    back (a week back for namespaces with no data then; else the ``window`` just before
    ``at``). ``MetricsError`` when Prometheus cannot answer."""
    found: dict[str, dict[str, Observation | None]] = {n: {} for n in namespaces}
    for rule in rules:
        if rule.spec.type is RuleType.VALUE:
            continue
        missing = list(namespaces)
        for start in (*(at - back for back in NIGHTS_BACK), at - window):
            if not missing:
                break
            query = rule_query(rule, namespace_label, missing, step)
            series = source.query_range(query, start + step, start + window, step)
            observed = extract_observations(rule, series, namespace_label, window.total_seconds())
            for name in list(missing):
                if name in observed:
                    found[name][rule.name] = observed[name]
                    missing.remove(name)
    return found


def plan_forecast(
    source: MetricsSource,
    rules: RuleSet,
    settings: Settings,
    namespaces: Sequence[str],
    now: datetime,
) -> tuple[tuple[NamespaceForecast, ...], tuple[str, ...]]:
    """``(forecasts, warnings)`` for the planned namespaces: every rule's smallest
    detectable regression at the night budget's per-test alpha (else each rule's own) in
    the configured after-window, with each rule's own before-window (``beforeWindow``). Advisory: when Prometheus cannot answer, no forecast and
    one warning."""
    windows = settings.windows
    window = min(windows.before, windows.after)
    try:
        seen = history(
            source, rules, namespaces, window, windows.step, now, settings.rules.namespace_label
        )
    except MetricsError as error:
        log.warning("no forecast: %s", error)
        return (), (f"no forecast of the planned namespaces' traffic: {error}",)
    deciding = sum(1 for r in rules if r.spec.critical and not r.spec.dry_run)
    budget = settings.rules.night_budget
    alpha = night_alpha(budget, len(namespaces), deciding) if budget and deciding else None
    shares = {
        rule.name: rule.spec.judge.before_window / window
        for rule in rules
        if rule.spec.judge.before_window is not None
    }
    found = tuple(
        namespace_forecast(n, seen[n], list(rules), alpha, shares) for n in namespaces
    )
    return found, ()


def night_outlook(
    source: MetricsSource,
    rules: RuleSet,
    settings: Settings,
    namespaces: Sequence[str],
    now: datetime,
) -> NightOutlook:
    """Everything Prometheus tells of the planned namespaces before the night, for
    ``service.night_plan.plan_night``: the thin-evidence warnings of the last window-length
    (``analysis.planned_evidence_warnings``) and the forecast (``plan_forecast``). Advisory:
    when Prometheus cannot answer, warnings and no forecast."""
    thin = planned_evidence_warnings(source, rules, settings, namespaces, now)
    forecast, unforecast = plan_forecast(source, rules, settings, namespaces, now)
    return NightOutlook(
        thin=tuple(thin), forecast=forecast, unforecast=unforecast, needed=needed_requests(rules)
    )
