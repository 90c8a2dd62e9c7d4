"""The night's plan as both ``upgrade`` and ``serve`` make it: ordered by evidence from the
forecast, the forecast kept in the plan, and the notes the timeline opens with.

Why it exists: the foreground command and the service must plan a night exactly alike —
the same order (busiest forecast first, quiet namespaces last, the pinned canary first of
all: ``core.plan_order``), the same forecast shown by ``upgrade --dry-run``, the status page
and the report. Both call ``plan_night`` with a ``NightOutlook``; what fetches the outlook
from Prometheus (``service.forecast.night_outlook``) loads the judge's statistics, so this
module stays light for a service that has not started an upgrade yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from analyzer.core.upgrade import NamespaceOutlook, Note, UpgradePlan
from analyzer.service.preflight import PreflightResult, UpgradeRequest, build_plan
from analyzer.settings import Settings

if TYPE_CHECKING:
    from analyzer.core.forecast import NamespaceForecast

#: Timeline reasons of the notes a night opens with.
THIN_EVIDENCE = "ThinEvidence"
FORECAST = "Forecast"
NO_FORECAST = "NoForecast"


@dataclass(frozen=True)
class NightOutlook:
    """What Prometheus told of the planned namespaces before the night: ``thin``, warnings
    for those that served too little over the last window-length; ``forecast``, each one's
    traffic in the same hours of previous nights and what its rules can see; ``unforecast``,
    why there is no forecast (Prometheus could not answer); ``needed``, the requests per
    window the deciding rules need (a namespace below it is quiet)."""

    thin: tuple[str, ...] = ()
    forecast: tuple[NamespaceForecast, ...] = ()
    unforecast: tuple[str, ...] = ()
    needed: int = 0

    @property
    def warnings(self) -> tuple[str, ...]:
        return (*self.thin, *self.unforecast)


@dataclass(frozen=True)
class PlannedNight:
    """The plan, and what the night's timeline opens with."""

    plan: UpgradePlan
    outlook: NightOutlook

    @property
    def forecast(self) -> tuple[NamespaceOutlook, ...]:
        return self.plan.forecast

    def notes(self) -> tuple[Note, ...]:
        """The timeline's first notes: each thin-evidence warning, why there is no forecast,
        and per quiet namespace which policy will judge it and what each rule can detect."""
        return (
            *(Note(message=w, reason=THIN_EVIDENCE, warning=True) for w in self.outlook.thin),
            *(Note(message=w, reason=NO_FORECAST, warning=True) for w in self.outlook.unforecast),
            *(
                Note(message=each.describe(), reason=FORECAST, namespace=each.namespace)
                for each in self.plan.forecast
                if each.quiet
            ),
        )


def forecast_requests(forecasts: Sequence[NamespaceForecast]) -> dict[str, float]:
    """Requests per window by namespace, for the plan's order."""
    return {f.namespace: f.requests for f in forecasts}


def plan_night(
    request: UpgradeRequest,
    checked: PreflightResult,
    settings: Settings,
    now: datetime,
    outlook: NightOutlook,
) -> PlannedNight:
    """The plan ``build_plan`` makes, ordered by the outlook's forecast (``upgrade.order``
    evidence; none: as preflight listed them, the pinned canary first), with the forecast
    kept in plan order so the state, ``/api/status``, the status page and the report show
    it for the whole night, after a restart too."""
    forecast = outlook.forecast
    plan = build_plan(
        request,
        checked,
        settings,
        now,
        forecast=forecast_requests(forecast) if forecast else None,
        needed=outlook.needed,
    )
    windows = settings.windows
    seconds = min(windows.before, windows.after).total_seconds()
    order = {name: index for index, name in enumerate(plan.namespaces)}
    kept = tuple(
        each.outlook(seconds)
        for each in sorted(forecast, key=lambda f: order.get(f.namespace, len(order)))
    )
    return PlannedNight(plan.model_copy(update={"forecast": kept}), outlook)
