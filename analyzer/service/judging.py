"""Judging over Prometheus: the ``Judging`` the engine is given in production.

Why a module of its own: the engine applies actions whatever judges them (scripted in
tests, dry runs, Prometheus here). This turns a ``Judge`` action into windows, the night
budget's share and the quiet namespaces' context, asks ``service.analysis`` (loaded at the
first judgement, with the statistics) and hands typed judgements back to the state machine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from analyzer.core.health_gates import HealthSignals
from analyzer.core.multiplicity import NightBudget
from analyzer.core.ports import ClusterError, MetricsSource
from analyzer.core.rules import RuleSet
from analyzer.core.upgrade import Judge, Judged, NamespaceJudgement
from analyzer.core.windows import RestartWindows

if TYPE_CHECKING:
    from analyzer.core.quiet import WaveContext
    from analyzer.service.analysis import AnalysisOutcome

log = logging.getLogger("canary_analyzer.engine")


class PrometheusJudging:
    """Judging through ``analyze_restart``: one query per rule per window for all namespaces.

    With ``night_budget`` (the ``rules.night_budget`` setting) each wave spends its share of
    the night's false-rollback budget, split over every namespace the plan judges and over
    the looks at the wave (the first judgement and its extensions)."""

    def __init__(
        self,
        source: MetricsSource,
        rules: RuleSet | Callable[[], RuleSet],
        namespace_label: str,
        on_outcome: Callable[[AnalysisOutcome], None] | None = None,
        night_budget: float | None = None,
        health: Callable[[Judge], Mapping[str, HealthSignals]] | None = None,
    ) -> None:
        self._source = source
        # a callable gives the rules in force at each judgement (hot reload in the service)
        self._rules = rules if callable(rules) else (lambda: rules)
        self._label = namespace_label
        self._on_outcome = on_outcome
        self._night_budget = night_budget
        # volume-free health of the judged namespaces (quiet namespaces' gates); None: none
        self._health = health

    def judge(self, action: Judge) -> Judged:
        # the statistics (numpy, scipy) load at the first judgement, not with the service
        from analyzer.core.quiet import explained
        from analyzer.service.analysis import AnalysisRequest, analyze_restart

        windows = RestartWindows.around(
            action.restarted_at,
            before=action.before,
            settle=action.settle,
            after=action.after,
            step=action.step,
            rolled_out_at=action.rolled_out_at,
        )
        budget = None
        if self._night_budget is not None:
            # a state saved before the plan's size was recorded: the wave and its controls
            # (the plan's other namespaces, less any with stray proxies) stand in for it
            planned = action.plan_namespaces or len(action.judged) + len(action.controls)
            if action.anytime:  # anytime-valid: every look together spends one look's share
                budget = NightBudget(self._night_budget, planned, anytime=True)
            else:
                looks = max(action.looks, action.look + 1)
                budget = NightBudget(self._night_budget, planned, look=action.look, looks=looks)
        outcome = analyze_restart(
            self._source,
            self._rules(),
            AnalysisRequest(
                judged=action.judged,
                controls=action.controls,
                windows=windows,
                namespace_label=self._label,
                anytime=action.anytime,
                scheduled=action.scheduled,
                control_restarts=action.control_restarts,
            ),
            budget=budget,
            quiet=quiet_context(action, self._health),
        )
        if self._on_outcome is not None:
            self._on_outcome(outcome)
        return Judged(
            verdicts={
                name: NamespaceJudgement(
                    verdict=verdict.verdict,
                    reason=explained(verdict.reason, quiet := outcome.evidence.get(name)),
                    rules=verdict.rules,
                    evidence=quiet.evidence.value if quiet else "own",
                )
                for name, verdict in outcome.verdicts.items()
            }
        )


def quiet_context(
    action: Judge, health: Callable[[Judge], Mapping[str, HealthSignals]] | None
) -> WaveContext:
    """What the wave's quiet namespaces may lean on: the namespaces passed on their own
    traffic before, whether this is the wave's last look, and (when a source is given)
    the judged namespaces' health; a health source that fails gives no gate, logged."""
    from analyzer.core.quiet import WaveContext  # with the judge's statistics, when judging
    signals: Mapping[str, HealthSignals] | None = None
    if health is not None:
        try:
            signals = health(action)
        except ClusterError as error:
            log.warning("no health gates: %s", error)
    return WaveContext(
        passed_before=action.passed_before,
        health=signals,
        final_look=action.look + 1 >= action.looks,
    )
