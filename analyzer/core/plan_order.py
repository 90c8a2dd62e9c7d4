"""The plan's order by evidence: the canary and early waves are the namespaces busy enough to
be judged on their own traffic, the quiet ones go last, after the revision has been judged on
real traffic.

Why a module of its own: building a plan needs only this ordering, not the quiet judge's
statistics (``core.quiet``), so the service loads it without numpy and scipy. Pure:
forecast requests in, an order out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def order_by_evidence(
    namespaces: Sequence[str],
    forecast: Mapping[str, float],
    needed: int,
    canary: str | None = None,
) -> tuple[str, ...]:
    """The plan's order: busiest first by forecast requests per window (``forecast``; a
    namespace with no forecast counts as 0), every namespace that reaches ``needed`` before
    every one that does not; ``canary`` (pinned by the operator) first whatever its traffic.
    Ties keep the given order."""
    given = {name: index for index, name in enumerate(namespaces)}

    def key(name: str) -> tuple[bool, float, int]:
        volume = forecast.get(name, 0.0)
        return (volume < needed, -volume, given[name])

    ordered = sorted(namespaces, key=key)
    if canary is not None and canary in given:
        ordered.remove(canary)
        ordered.insert(0, canary)
    return tuple(ordered)


def is_quiet(forecast_requests: float, needed: int) -> bool:
    """Whether a namespace's forecast requests per window fall short of ``needed``."""
    return needed > 0 and forecast_requests < needed
