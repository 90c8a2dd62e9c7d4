"""Shadow mode (``service.mode: shadow``, ``serve --shadow``): judge the restarts that happen
anyway, record the verdicts, act on nothing and page nobody.

Why it exists: before a platform team lets the service move tags and restart namespaces at
night, it runs it for a few weeks judge-only and compares its verdicts with what people saw.
Each pass (the leader's only) reads the watched namespaces' workloads, lets
``core.shadow`` find the restarts, and, once a restart's after-window has ended, judges it
through the very judging the engine uses (``service.judging``: same rules, windows, night
budget and quiet-namespace handling). The verdict goes to the timeline, ``/api/status``
(``shadow``), the self-metrics and the restart history (``service.history``, source
``shadow``), which ``analyze --last N`` reads back. No tag, label, restart, rollback or
alert: the engine never runs in shadow mode.

What it does not keep: restarts waiting for their after-window live in memory; a service
restarted meanwhile starts with a fresh look and does not judge them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from analyzer.core.ports import ClusterError, MetricsError
from analyzer.core.rules import longest_before_window
from analyzer.core.shadow import (
    WOULD,
    PendingRestart,
    SeenRestart,
    ShadowWindows,
    WorkloadTemplate,
    WorkloadTemplates,
    detect_restarts,
    due_restarts,
    merge_restart,
    shadow_controls,
)
from analyzer.core.upgrade import Note
from analyzer.core.upgrade.steps import Judge
from analyzer.service.memory import Phase

if TYPE_CHECKING:
    from analyzer.service.context import ServiceContext
    from analyzer.service.engine import Judging
    from analyzer.service.history import RestartHistory

log = logging.getLogger("canary_analyzer.shadow")

#: verdicts kept for ``/api/status`` (newest first)
KEPT_VERDICTS = 50


class ShadowWatch:
    """The loop's work in shadow mode: watch, wait for the after-window, judge, record."""

    def __init__(
        self,
        context: ServiceContext,
        judging: Judging,
        templates: WorkloadTemplates,
        history: RestartHistory | None = None,
    ) -> None:
        self.context = context
        self.judging = judging
        self.templates = templates
        self.history = history
        windows = context.settings.windows
        self.windows = ShadowWindows(windows.before, windows.settle, windows.after, windows.step)
        self.watched: list[str] = []
        self.pending: list[PendingRestart] = []
        self.verdicts: list[dict[str, Any]] = []  # newest first
        self._seen: dict[tuple[str, str, str], WorkloadTemplate] | None = None
        self._recent: list[tuple[str, datetime]] = []  # judged restarts, for controls

    def _reach(self) -> ShadowWindows:
        """The windows with ``before`` as long as the longest any current rule reads (its
        own ``judge.beforeWindow``): restarts that close are not each other's controls."""
        before = longest_before_window(self.context.judging.rules.rules, self.windows.before)
        return replace(self.windows, before=before)

    def tick(self, now: datetime, leading: bool) -> None:
        """One pass: a standby only says so; the leader looks, then judges what is due."""
        if not leading:
            holder = self.context.leadership.holder or "another replica"
            self.context.set_phase(Phase.STANDBY, f"shadow standby: {holder} leads")
            self._seen = None  # a new leader learns afresh
            return
        try:
            self._look(now)
        except ClusterError as error:
            log.warning("shadow: cannot read workloads", extra={"fields": {"error": str(error)}})
        due, self.pending = due_restarts(self.pending, now)
        for entry in due:
            self._judge(entry, now)
        waiting = ", ".join(f"{p.seen.namespace} at {p.due:%H:%M}" for p in self.pending)
        self.context.set_phase(
            Phase.SHADOW,
            f"shadow: watching {len(self.watched)} namespace(s), acting on nothing"
            + (f"; judging {waiting}" if waiting else ""),
        )

    def _look(self, now: datetime) -> None:
        settings = self.context.settings
        self.watched = list(settings.service.shadow_namespaces) or self.context.cluster.namespaces_labelled(
            settings.upgrade.tag
        )
        current = self.templates.workload_templates(self.watched)
        for seen in detect_restarts(self._seen, current, now):
            self._seen_restart(seen, now)
        self._seen = {w.key: w for w in current}

    def _seen_restart(self, seen: SeenRestart, now: datetime) -> None:
        self.pending = merge_restart(self.pending, seen, self._reach())
        due = self.windows.due(seen.restarted_at)
        message = (
            f"shadow: {seen.namespace} restarted at {seen.restarted_at.isoformat()} "
            f"({', '.join(seen.workloads)}); judged after {due.isoformat()}"
        )
        log.info(message)
        self.context.timeline.record_note(
            Note(message=message, reason="ShadowRestartSeen", namespace=seen.namespace), now
        )
        if self.history is not None:
            self.history.append_seen(seen, source="shadow")

    def _judge(self, entry: PendingRestart, now: datetime) -> None:
        seen, windows = entry.seen, self.windows
        reach = self._reach().before  # the longest before-window any rule reads
        recent = [n for n, at in self._recent if at > seen.restarted_at - reach - windows.after]
        controls = shadow_controls(entry, self.watched, recent)
        action = Judge(
            judged=(seen.namespace,),
            controls=controls,
            restarted_at=seen.restarted_at,
            before=windows.before,
            settle=windows.settle,
            after=windows.after,
            step=windows.step,
            plan_namespaces=max(1, len(self.watched)),
        )
        try:
            judged = self.judging.judge(action)
        except MetricsError as error:
            log.warning("shadow: cannot judge", extra={"fields": {"error": str(error)}})
            self._record(seen, "error", f"not judged: {error}", controls, now, [])
            return
        self._recent = [*self._recent[-100:], (seen.namespace, seen.restarted_at)]
        judgement = judged.verdicts.get(seen.namespace)
        if judgement is None:
            self._record(seen, "error", "the judging gave no verdict", controls, now, [])
            return
        self._record(
            seen,
            judgement.verdict.value,
            judgement.reason,
            controls,
            now,
            [r.rule for r in judgement.rules if r.verdict is not judgement.verdict.PASS],
            would=WOULD[judgement.verdict],
        )

    def _record(
        self,
        seen: SeenRestart,
        verdict: str,
        reason: str,
        controls: Sequence[str],
        now: datetime,
        not_passing: list[str],
        would: str = "",
    ) -> None:
        item = {
            **seen.to_json(),
            "verdict": verdict,
            "reason": reason,
            "controls": list(controls),
            "rules_not_passing": not_passing,
            "would": would,
            "judged_at": now.isoformat(),
        }
        self.verdicts = [item, *self.verdicts][:KEPT_VERDICTS]
        message = f"shadow verdict {verdict.upper()} for {seen.namespace}: {reason}" + (
            f"; an upgrade {would} (shadow: nothing done, nobody paged)" if would else ""
        )
        log.info(message, extra={"fields": {"namespace": seen.namespace, "verdict": verdict}})
        self.context.timeline.record_note(
            Note(message=message, reason="ShadowVerdict", namespace=seen.namespace,
                 warning=verdict != "pass"),
            now,
        )  # fmt: skip
        if self.history is not None:
            self.history.append_verdict(seen, verdict, reason, source="shadow")

    def status(self) -> dict[str, Any]:
        """The ``shadow`` object of ``/api/status``."""
        return {
            "acts": False,
            "pages": False,
            "watched": list(self.watched),
            "pending": [
                {**p.seen.to_json(), "due": p.due.isoformat()} for p in self.pending
            ],
            "verdicts": list(self.verdicts),
        }
