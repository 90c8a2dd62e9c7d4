"""During the soak: judge the promoted namespaces again, page on a regression, offer (or, opt
in, start) the rollback.

Why it exists: a promotion judges each wave on a short after-window in the night; some
regressions only show under the day's traffic. While the old revision is still installed a
rollback is one tag move away, so the service keeps looking (``upgrade.soak_every``, default
1h) for ``upgrade.soak``: each look judges the promoted namespaces with the same rules and the
same judge (``service.analysis.analyze_restart``), a recent ``upgrade.soak_window`` against
the same hours before the upgrade (``upgrade.soak_baselines``: the night before, then e.g.
the week before while the evidence is too thin; the pure choice is
``analyzer/core/upgrade/soak.py``). A FAIL pages on-call (``CanaryAnalyzerSoakRegression``,
critical) naming namespace, rule and evidence, offers ``canary-analyzer rollback``, and the
prune is never offered for that upgrade. With ``upgrade.soak_auto_rollback`` the service
starts the rollback itself.

What it remembers (the last look, the regression) lives in the service memory of the state
ConfigMap, so a restarted service or a new leader neither looks twice nor forgets a page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from analyzer.core.alerts.upgrade import soak_regression_alert
from analyzer.core.multiplicity import NightBudget
from analyzer.core.ports import MetricsSource
from analyzer.core.rules import RuleSet
from analyzer.core.upgrade import Note, Outcome, UpgradeState
from analyzer.core.upgrade.soak import due_look, next_look, soak_windows, soaking
from analyzer.core.verdicts import NamespaceVerdict, Verdict
from analyzer.core.windows import RestartWindows

if TYPE_CHECKING:
    from analyzer.service.context import ServiceContext

log = logging.getLogger("canary_analyzer.soak")

#: verdicts that leave a namespace to the next baseline (too thin, or the source failed)
UNDECIDED = (Verdict.INCONCLUSIVE, Verdict.ERROR)


@dataclass(frozen=True)
class SoakSettings:
    """The ``upgrade.soak*`` settings, and the step and evaluation delay of the windows."""

    soak: timedelta
    every: timedelta
    window: timedelta
    baselines: tuple[timedelta, ...]
    step: timedelta
    delay: timedelta
    auto_rollback: bool = False
    night_budget: float | None = None


@dataclass
class SoakRecord:
    """What the soak of one promoted upgrade found so far (``status``'s ``soak``)."""

    upgrade_id: str
    promoted_at: datetime
    ends: datetime
    state: str = "soaking"  # soaking | regressed | rolled-back | clean
    looks: int = 0
    last_look: datetime | None = None
    next_look: datetime | None = None
    detail: str = ""
    regression: dict[str, Any] | None = None
    errors: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"upgrade_id": self.upgrade_id, "promoted_at": self.promoted_at.isoformat(),
                "ends": self.ends.isoformat(), "state": self.state, "looks": self.looks,
                "last_look": self.last_look.isoformat() if self.last_look else None,
                "next_look": self.next_look.isoformat() if self.next_look else None,
                "detail": self.detail, "regression": self.regression, "errors": self.errors}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SoakRecord:
        def when(key: str) -> datetime | None:
            return datetime.fromisoformat(data[key]) if data.get(key) else None

        promoted_at, ends = when("promoted_at"), when("ends")
        assert promoted_at is not None and ends is not None
        return cls(upgrade_id=str(data["upgrade_id"]), promoted_at=promoted_at, ends=ends,
                   state=str(data.get("state", "soaking")), looks=int(data.get("looks", 0)),
                   last_look=when("last_look"), next_look=when("next_look"),
                   detail=str(data.get("detail", "")), regression=data.get("regression"),
                   errors=int(data.get("errors", 0)))


@dataclass
class LookResult:
    """One look's verdicts and the baseline each namespace was judged against."""

    verdicts: dict[str, NamespaceVerdict] = field(default_factory=dict)
    baseline: dict[str, RestartWindows] = field(default_factory=dict)

    def failed(self) -> list[NamespaceVerdict]:
        return [v for v in self.verdicts.values() if v.verdict is Verdict.FAIL]


def judge_look(source: MetricsSource, rules: RuleSet, namespaces: list[str],
               candidates: list[RestartWindows], namespace_label: str,
               budget: NightBudget | None) -> LookResult:
    """Judge ``namespaces`` against each candidate baseline in turn: a namespace the first
    leaves undecided (too thin, or the source failed) is judged against the next."""
    from analyzer.service.analysis import AnalysisRequest, analyze_restart  # loads the judge

    result = LookResult()
    remaining = list(namespaces)
    for windows in candidates:
        if not remaining:
            break
        outcome = analyze_restart(source, rules, AnalysisRequest(
            judged=tuple(remaining), controls=(), windows=windows,
            namespace_label=namespace_label, rule_before_windows=False), budget=budget)
        for name, verdict in outcome.verdicts.items():
            result.verdicts[name] = verdict
            result.baseline[name] = windows
        remaining = [n for n in remaining if result.verdicts[n].verdict in UNDECIDED]
    return result


class SoakWatch:
    """Pass after pass of the leader's loop (no upgrade running), takes the soak's due look."""

    def __init__(self, source: MetricsSource, rules: Callable[[], RuleSet], namespace_label: str,
                 settings: SoakSettings) -> None:
        self._source = source
        self._rules = rules
        self._label = namespace_label
        self.settings = settings
        self.record: SoakRecord | None = None
        self._context: ServiceContext | None = None
        #: ``rollback(reason)``: the automatic rollback (the service wires its verb in)
        self.rollback: Callable[[str], Any] | None = None

    def attach(self, context: ServiceContext, rollback: Callable[[str], Any]) -> None:
        """Wire in the service's context (memory, timeline, pager) and its rollback verb."""
        self._context = context
        self.rollback = rollback
        self.recall(context.memory.soak)

    def reload(self) -> None:
        """Take the soak as stored in the service memory (a standby, or a new leader, goes
        on from where the leader left it: no second page, no look taken twice)."""
        context = self._context
        if context is None:
            return
        context.reload_memory()  # an unreadable store keeps the memory as it was
        self.recall(context.memory.soak)

    def recall(self, remembered: dict[str, Any] | None) -> None:
        """Take the soak as remembered (``SoakRecord.to_json``); nothing kept, or
        unreadable: what this replica knows stays."""
        if not remembered:
            return
        try:
            self.record = SoakRecord.from_json(remembered)
        except (KeyError, ValueError, AssertionError, TypeError) as error:
            log.warning("cannot read the remembered soak: %s", error)

    def blocks_prune(self, state: UpgradeState | None) -> bool:
        """A regression during this upgrade's soak: the prune is never offered for it."""
        record = self.record
        return (state is not None and record is not None
                and record.upgrade_id == state.plan.upgrade_id and record.regression is not None)

    def status(self, state: UpgradeState | None) -> dict[str, Any] | None:
        record = self.record
        if record is None or state is None or record.upgrade_id != state.plan.upgrade_id:
            return None
        if state.outcome is Outcome.ROLLED_BACK and record.state != "rolled-back":
            record.state = "rolled-back"
        return record.to_json()

    def tick(self, state: UpgradeState | None, now: datetime) -> None:
        """Take the due look, if any. Never raises into the loop (logged)."""
        if not soaking(state) or self.settings.every <= timedelta(0):
            return
        assert state is not None
        settings, plan = self.settings, state.plan
        record = self.record
        if record is None or record.upgrade_id != plan.upgrade_id:
            record = self.record = SoakRecord(plan.upgrade_id, state.updated_at,
                                              state.updated_at + settings.soak)
            record.next_look = self._next(record, now)
            self._remember()
        if record.regression is not None or record.state != "soaking":
            return
        look = due_look(record.promoted_at, settings.soak, settings.every, settings.window,
                        settings.delay, record.last_look, now)
        if look is None:
            if now >= record.ends:
                record.state, record.next_look = "clean", None
                record.detail = f"no regression in {record.looks} looks"
                self._remember()
            return
        try:
            self._look(state, record, look, now)
        except Exception as error:  # a look must never stop the loop; the next one retries
            log.exception("soak look failed")
            record.errors += 1
            record.detail = f"look at {look.isoformat()} failed: {type(error).__name__}: {error}"
            self._note(Note(message=f"soak look failed: {record.detail}", reason="SoakLookError",
                            warning=True), now)
        record.last_look = look
        record.next_look = self._next(record, now)
        self._remember()

    def _next(self, record: SoakRecord, now: datetime) -> datetime | None:
        s = self.settings
        return next_look(record.promoted_at, s.soak, s.every, s.window, s.delay, now)

    def _look(self, state: UpgradeState, record: SoakRecord, look: datetime,
              now: datetime) -> None:
        settings = self.settings
        namespaces = [r.name for r in state.namespaces if r.state == "promoted"]
        if not namespaces:
            return
        candidates = soak_windows(look, settings.window, settings.delay, settings.step,
                                  self._upgrade_started(state), settings.baselines)
        budget = None
        if settings.night_budget is not None:  # the soak's budget, split over its looks
            looks = max(1, int(settings.soak / settings.every))
            budget = NightBudget(settings.night_budget / looks, len(namespaces))
        result = judge_look(self._source, self._rules(), namespaces, candidates, self._label,
                            budget)
        record.looks += 1
        errors = [n for n, v in result.verdicts.items() if v.verdict is Verdict.ERROR
                  or any(r.verdict is Verdict.ERROR for r in v.rules)]
        failed = result.failed()
        log.info("soak look", extra={"fields": {
            "upgrade": state.plan.upgrade_id, "at": look.isoformat(),
            "verdicts": {n: v.verdict.value for n, v in result.verdicts.items()}}})
        if errors:
            record.errors += 1
            self._note(Note(message=f"soak look at {look.isoformat()} could not judge "
                            f"{', '.join(errors)}: " + "; ".join(
                                result.verdicts[n].reason for n in errors),
                            reason="SoakLookError", warning=True), now)
        if not failed:
            record.detail = (f"look {record.looks}: no regression "
                             f"({', '.join(f'{n} {v.verdict.value}' for n, v in result.verdicts.items())})")
            return
        self._regressed(state, record, result, failed, now)

    def _regressed(self, state: UpgradeState, record: SoakRecord, result: LookResult,
                   failed: list[NamespaceVerdict], now: datetime) -> None:
        context = self._context
        settings = self.settings
        windows = result.baseline[failed[0].namespace]
        baseline = (f"{windows.before.start.isoformat()} – {windows.before.end.isoformat()} "
                    f"(the same hours before the upgrade; judged "
                    f"{windows.after.start.isoformat()} – {windows.after.end.isoformat()})")
        rules = sorted({r.rule for v in failed for r in v.failing_rules()})
        record.state = "regressed"
        record.regression = {
            "at": now.isoformat(), "namespaces": [v.namespace for v in failed], "rules": rules,
            "baseline": windows.before.to_dict(), "after": windows.after.to_dict(),
            "reasons": {v.namespace: v.reason for v in failed},
            "rollback": "automatic" if settings.auto_rollback else "offered",
        }
        record.detail = "; ".join(f"{v.namespace}: {v.reason}" for v in failed)
        for verdict in failed:
            self._note(Note(message=f"soak regression against {baseline}: {verdict.reason}",
                            reason="SoakRegression", namespace=verdict.namespace,
                            warning=True), now)
        link = None
        if context is not None:
            link = context.reports.link(state.plan.upgrade_id, context.settings.service.public_url)
            context.pager.fire(soak_regression_alert(state, failed, baseline, now,
                                                     settings.auto_rollback, link))
        self._note(Note(message="paged CanaryAnalyzerSoakRegression: " + (
            "rolling back (upgrade.soak_auto_rollback)" if settings.auto_rollback else
            "rollback offered (canary-analyzer rollback); the prune is not offered"),
            reason="SoakPaged", warning=True), now)
        log.error("soak regression", extra={"fields": {"upgrade": state.plan.upgrade_id,
                                                       "namespaces": record.regression["namespaces"],
                                                       "rules": rules}})
        self._remember()
        if settings.auto_rollback and self.rollback is not None:
            self.rollback(f"soak regression in {', '.join(v.namespace for v in failed)} "
                          f"({', '.join(rules)})")

    def _upgrade_started(self, state: UpgradeState) -> datetime:
        """When the first proxy could have moved: the timeline's start of the upgrade, else
        the first restart less the before-window (a state without its timeline)."""
        context = self._context
        if context is not None and context.timeline.upgrade_id == state.plan.upgrade_id:
            started = [item["at"] for item in context.timeline.items
                       if item.get("reason") == "UpgradeStarted"]
            if started:
                return min(started)
        restarts = [r.restarted_at for r in state.namespaces if r.restarted_at is not None]
        first = min(restarts) if restarts else state.updated_at
        return first - state.plan.before - state.plan.rollout_timeout

    def _note(self, note: Note, now: datetime) -> None:
        if self._context is not None:
            self._context.timeline.record_note(note, now)

    def _remember(self) -> None:
        context = self._context
        if context is None or self.record is None:
            return
        with context.lock:
            context.memory.soak = self.record.to_json()
            try:
                context.save_memory()
            except Exception as error:  # remembered on the next look
                log.warning("could not remember the soak: %s", error)
