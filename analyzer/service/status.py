"""What ``/api/status`` and ``/readyz`` say: the service's phase, the upgrade's progress,
the maintenance hours, requests, verdicts, the timeline, rules and reports.

Why a module of its own: the status document is the service's promise to on-call and to
the status page; its fields (see docs/cli.md) are built in one place from the shared
context, and never change name.
"""

from __future__ import annotations

from typing import Any

from analyzer.core.upgrade import summary
from analyzer.service.context import ServiceContext


def readiness(context: ServiceContext) -> tuple[bool, str]:
    """Ready unless the engine failed unexpectedly (a bug, not a data source)."""
    view = context.view
    if view.worker_error:
        return False, f"engine failed: {view.worker_error}"
    return True, f"{view.phase}: {view.message}"


def status_document(context: ServiceContext) -> dict[str, Any]:
    """The ``/api/status`` document."""
    view, memory, leadership = context.view, context.memory, context.leadership
    rules = context.judging.rules
    state = view.state
    upgrade = None
    if state is not None:
        upgrade = {
            **summary(state),
            "stage": state.stage.value,
            "step": state.step.value,
            "wave": state.wave + 1,
            "waves": [list(w) for w in state.plan.waves],
            "namespaces_total": len(state.plan.namespaces),
            "namespaces_done": sum(1 for r in state.namespaces if r.state == "promoted"),
            "updated_at": state.updated_at.isoformat(),
            "report": context.reports.name(state.plan.upgrade_id),
        }
    hours = view.hours or context.hours.state(context.clock.now())
    return {
        "phase": view.phase,
        "message": view.message,
        "paused": memory.paused,
        "leader": leadership.holder or leadership.identity,
        "is_leader": leadership.leads(context.clock.now()),
        "window": {**hours.to_dict(), "schedule": context.hours.describe()},
        "upgrade": upgrade,
        "pending_request": memory.request,
        "refused_request": memory.refused,
        "queued_requests": list(view.queued_requests),
        "last_verdicts": [v.to_status_item() for v in view.last_verdicts],
        "timeline": [
            {
                **item,
                "at": item["at"].isoformat() if hasattr(item["at"], "isoformat") else item["at"],
            }
            for item in context.timeline.items[-100:]
        ],
        "rules": {"names": rules.rules.names(), "invalid": rules.invalid},
        "reports": context.reports.listed(),
        # additive: "act" runs upgrades; "shadow" judges restarts and acts on nothing
        "mode": context.settings.service.mode,
        "shadow": context.shadow.status() if context.shadow is not None else None,
        "prune": context.prune_path.offer_json() if context.prune_path is not None else None,
        "revisions": context.prune_path.revisions_json()
        if context.prune_path is not None
        else None,
        "soak": context.soak_watch.status(state) if context.soak_watch is not None else None,
    }

