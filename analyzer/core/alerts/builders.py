"""Build the alerts on-call receives from what the engine knows: verdicts, the upgrade,
namespaces. Pure: no clock reads (``now`` is an argument).

The alerts about an upgrade take its ``UpgradeIdentity`` (revisions, tag, id, report link:
``UpgradePlan.identity(link)``) as one object. Labels are the alert's identity (name +
labels) and what Alertmanager routes on, so they hold only stable, low-cardinality facts:
namespace, revision (the target), from_revision, rule, tag. Everything else goes into the
summary and description annotations (``explain``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from analyzer.core.alerts.alert import Alert, AlertName, Severity
from analyzer.core.alerts.explain import (
    SERVICE_LABEL,
    _bullets,
    _clip,
    _duration,
    _headline,
    _join,
    _labels,
    _pairs,
    _with_link,
    explain_verdict,
)
from analyzer.core.upgrade.plan import UpgradeIdentity
from analyzer.core.verdicts import NamespaceVerdict, Verdict


class HoldCause(StrEnum):
    """Why an upgrade holds instead of promoting or rolling back."""

    INCONCLUSIVE = "inconclusive"
    DATA_SOURCE_ERRORS = "data-source-errors"
    WINDOW_CLOSED = "window-closed"
    OPERATOR = "operator"


def _upgrade_words(upgrade: UpgradeIdentity) -> str:
    """``Upgrade u-1 of tag default from 1-14-6 to 1-15-4`` (the id left out when unknown)."""
    known = f"{upgrade.upgrade_id} " if upgrade.upgrade_id else ""
    return (
        f"Upgrade {known}of tag {upgrade.tag} from {upgrade.from_revision} to {upgrade.to_revision}"
    )


def _upgrade_alert(
    name: AlertName,
    severity: Severity,
    upgrade: UpgradeIdentity,
    summary: str,
    description: str,
    now: datetime,
    *,
    namespace: str | None = None,
    rule: str | None = None,
    reason: str | None = None,
    ends_at: datetime | None = None,
) -> Alert:
    """An alert about ``upgrade``: its labels name the namespaces and rules concerned, the
    target and previous revision, the tag, a reason and the upgrade's id (empty ones left
    out); the description links the report."""
    return Alert(
        name=name,
        severity=severity,
        summary=summary,
        description=_clip(_with_link(description, upgrade.link)),
        starts_at=now,
        ends_at=ends_at,
        labels=_labels(
            namespace=namespace,
            revision=upgrade.to_revision,
            from_revision=upgrade.from_revision,
            rule=rule,
            tag=upgrade.tag,
            reason=reason,
            upgrade=upgrade.upgrade_id,
        ),
        link=upgrade.link,
    )


def rollback_started(
    failed: NamespaceVerdict | Sequence[NamespaceVerdict],
    *,
    upgrade: UpgradeIdentity,
    now: datetime,
    moved: Sequence[str] = (),
    gateways: Sequence[str] = (),
    already_done: Sequence[str] | None = None,
    next_steps: Sequence[str] | None = None,
) -> Alert:
    """CRITICAL: a namespace regressed on the new revision and the service is rolling back.

    ``failed`` are the namespaces whose verdict is FAIL; ``moved`` every namespace already on
    the new revision (they all go back), ``gateways`` the gateway namespaces restarted."""
    verdicts = (failed,) if isinstance(failed, NamespaceVerdict) else tuple(failed)
    if not verdicts:
        raise ValueError("a rollback alert needs at least one failing namespace verdict")
    failing = [r for v in verdicts for r in (v.failing_rules() or v.rules)]
    namespaces = _join(v.namespace for v in verdicts)
    rules = _join(r.rule for r in failing)
    first = failing[0] if failing else None
    summary = (
        f"Rolling back {upgrade.tag} {upgrade.to_revision} → {upgrade.from_revision}: {namespaces} "
        + (_headline(first) if first else verdicts[0].reason.split("\n")[0])
    )
    restore = list(dict.fromkeys([*moved, *(v.namespace for v in verdicts)]))
    done = (
        list(already_done)
        if already_done is not None
        else [
            f"moved tag {upgrade.tag} to {upgrade.to_revision} and restarted {', '.join(restore)}",
            f"judged {namespaces} against the rules: FAIL",
        ]
    )
    steps = (
        list(next_steps)
        if next_steps is not None
        else [
            f"move tag {upgrade.tag} back to {upgrade.from_revision}",
            "restart "
            + ", ".join([*(f"gateway in {g}" for g in gateways), *restore] or ["moved namespaces"]),
            f"verify every proxy runs {upgrade.from_revision}, then send CanaryAnalyzerRollbackFinished",
        ]
    )
    explained = "\n\n".join(explain_verdict(v, only=(Verdict.FAIL,)) for v in verdicts)
    description = (
        f"{_upgrade_words(upgrade)} failed its checks.\n\nFailing rules (before → after):\n{explained}\n\n"
        f"Already done:\n{_bullets(done)}\n\nNext:\n{_bullets(steps)}"
    )
    return _upgrade_alert(
        AlertName.ROLLBACK_STARTED, Severity.CRITICAL, upgrade, summary, description, now,
        namespace=namespaces, rule=rules,
    )  # fmt: skip


def rollback_finished(
    *,
    upgrade: UpgradeIdentity,
    restored: Sequence[str],
    all_proxies_old: bool,
    now: datetime,
    mismatched: Sequence[str] = (),
    reason: str = "",
    rules: Sequence[str] = (),
) -> Alert:
    """CRITICAL: the rollback ended; says what was restored and whether every proxy is old again.

    ``mismatched`` lists proxies still on another revision (``ns/pod: revision X``)."""
    state = (
        f"all proxies are back on {upgrade.from_revision}"
        if all_proxies_old
        else f"{len(mismatched) or 'some'} proxies are NOT back on {upgrade.from_revision}"
    )
    summary = f"Rollback of tag {upgrade.tag} to {upgrade.from_revision} finished: {state}"
    lines = [
        f"Tag {upgrade.tag} points at {upgrade.from_revision} again (the upgrade to {upgrade.to_revision} was rolled back).",
        f"Restored namespaces: {', '.join(restored) or 'none'}.",
        f"Proxies: {state}.",
    ]
    if reason:
        lines.append(f"Why: {reason}")
    if mismatched:
        lines.append("Still on another revision:\n" + _bullets(mismatched[:50]))
        if len(mismatched) > 50:
            lines.append(f"… and {len(mismatched) - 50} more")
        lines.append(
            "Next: nothing automatic — check those pods (kubectl -n NS get pods, istioctl "
            "proxy-status) and restart them; the upgrade stays rolled back."
        )
    else:
        lines.append(
            "Next: nothing — the upgrade stays rolled back until someone fixes the cause and "
            "requests it again."
        )
    return _upgrade_alert(
        AlertName.ROLLBACK_FINISHED, Severity.CRITICAL, upgrade, summary, "\n".join(lines), now,
        namespace=_join(restored), rule=_join(rules),
    )  # fmt: skip


def _missing_evidence(verdicts: Sequence[NamespaceVerdict]) -> list[str]:
    lines = []
    for verdict in verdicts:
        for result in verdict.rules:
            if result.decides and result.verdict in (Verdict.INCONCLUSIVE, Verdict.ERROR):
                evidence = _pairs(result.evidence)
                lines.append(
                    f"{verdict.namespace} / {result.rule} ({result.verdict.value}): {result.reason}"
                    + (f" [evidence: {evidence}]" if evidence else "")
                )
    return lines


def upgrade_held(
    verdicts: Sequence[NamespaceVerdict],
    *,
    upgrade: UpgradeIdentity,
    cause: HoldCause | str,
    now: datetime,
    extensions: int = 0,
    detail: str = "",
) -> Alert:
    """WARNING: the upgrade holds (too little evidence after ``extensions`` longer windows, or
    data-source errors): nothing is promoted or rolled back until someone approves or aborts."""
    cause = HoldCause(cause)
    namespaces = _join(v.namespace for v in verdicts)
    unsure = [
        r
        for v in verdicts
        for r in v.rules
        if r.decides and r.verdict in (Verdict.INCONCLUSIVE, Verdict.ERROR)
    ]
    why = {
        HoldCause.INCONCLUSIVE: f"too little evidence after {extensions} extension(s) of the after-window",
        HoldCause.DATA_SOURCE_ERRORS: "the metrics source failed (errors are never a pass)",
        HoldCause.WINDOW_CLOSED: "the maintenance window closed",
        HoldCause.OPERATOR: "an operator paused it",
    }[cause]
    summary = f"Upgrade of tag {upgrade.tag} to {upgrade.to_revision} held{' in ' + namespaces if namespaces else ''}: {why}"
    missing = _missing_evidence(verdicts)
    lines = [
        f"{_upgrade_words(upgrade)} is held: {why}.",
    ]
    if detail:
        lines.append(detail)
    if missing:
        lines.append("What was missing:\n" + _bullets(missing))
    if verdicts:
        lines.append(
            "Verdicts:\n"
            + "\n\n".join(
                explain_verdict(v, only=(Verdict.INCONCLUSIVE, Verdict.ERROR)) for v in verdicts
            )
        )
    lines.append(
        "Already done: the namespaces above run the new revision; nothing was rolled back.\n"
        "Next: nothing until on-call decides — `canary-analyzer approve` to continue, "
        "`canary-analyzer abort` to roll back."
    )
    return _upgrade_alert(
        AlertName.HELD, Severity.WARNING, upgrade, summary, "\n\n".join(lines), now,
        namespace=namespaces, rule=_join(r.rule for r in unsure), reason=cause.value,
    )  # fmt: skip


def data_source_errors(
    *,
    errors: Sequence[str],
    consecutive: int,
    now: datetime,
    source: str = "prometheus",
    revision: str | None = None,
    tag: str | None = None,
    link: str | None = None,
) -> Alert:
    """WARNING: the metrics source failed ``consecutive`` times in a row; judging is paused.

    ``errors`` are the error messages (already free of secrets), newest last."""
    summary = f"Metrics source {source} failed {consecutive} time(s) in a row; judging paused"
    shown = list(errors)[-10:]
    description = (
        f"The {source} queries the verdicts need failed {consecutive} time(s) in a row. An error "
        "is never a pass and never a rollback by itself: the upgrade waits.\n\n"
        f"Latest errors:\n{_bullets(shown) or '- none recorded'}\n\n"
        f"Next: the service retries; fix the data source (URL, auth, load) or "
        "`canary-analyzer abort`."
    )
    return Alert(
        name=AlertName.DATA_SOURCE_ERRORS,
        severity=Severity.WARNING,
        summary=summary,
        description=_clip(_with_link(description, link)),
        starts_at=now,
        labels=_labels(source=source, revision=revision, tag=tag),
        link=link,
    )


def upgrade_done(
    *,
    upgrade: UpgradeIdentity,
    namespaces: Sequence[str],
    now: datetime,
    started_at: datetime | None = None,
    verdicts: Sequence[NamespaceVerdict] = (),
    expires_in: timedelta | None = timedelta(hours=1),
) -> Alert:
    """INFO: every namespace runs the new revision and passed; nothing left to do.

    It is news, not a problem: it ends by itself after ``expires_in`` (None: until resolved)."""
    took = f" in {_duration(now - started_at)}" if started_at else ""
    summary = f"Upgrade of tag {upgrade.tag} to {upgrade.to_revision} done: {len(namespaces)} namespace(s){took}"
    lines = [
        f"Tag {upgrade.tag} now points at {upgrade.to_revision} (was {upgrade.from_revision}); "
        f"{len(namespaces)} namespace(s) moved and passed their checks{took}:",
        _bullets(namespaces) or "- none",
    ]
    if verdicts:
        lines.append("Verdicts:\n" + "\n".join(f"- {v.namespace}: {v.reason}" for v in verdicts))
    lines.append(
        f"Next: nothing. {upgrade.from_revision} can be removed once you no longer need it."
    )
    return _upgrade_alert(
        AlertName.UPGRADE_DONE, Severity.INFO, upgrade, summary, "\n".join(lines), now,
        ends_at=now + expires_in if expires_in is not None else None,
    )  # fmt: skip


def rules_invalid(
    problems: Sequence[Any],
    *,
    rules_dir: str,
    now: datetime,
    kept: Sequence[str] = (),
    link: str | None = None,
) -> Alert:
    """WARNING: the rules directory changed and is invalid; the last good rules stay in force.

    ``problems`` are ``RuleProblem``s (or strings) that print as ``file:line: message``."""
    shown = [str(p) for p in problems]
    summary = (
        f"Rule files in {rules_dir} are invalid ({len(shown)} problem(s)); last good rules kept"
    )
    lines = [
        f"The rules in {rules_dir} changed and do not validate, so they were NOT loaded.",
        "Problems:\n" + (_bullets(shown[:50]) or "- none recorded"),
    ]
    if len(shown) > 50:
        lines.append(f"… and {len(shown) - 50} more (`canary-analyzer rules lint {rules_dir}`)")
    lines.append(
        "Still in force: "
        + (", ".join(kept) if kept else "the last valid set")
        + ".\nNext: fix the files; the service reloads them on the next change."
    )
    return Alert(
        name=AlertName.RULES_INVALID,
        severity=Severity.WARNING,
        summary=summary,
        description=_clip(_with_link("\n\n".join(lines), link)),
        starts_at=now,
        labels=_labels(rules_dir=rules_dir),
        link=link,
    )


def heartbeat(
    *,
    now: datetime,
    ttl: timedelta = timedelta(minutes=5),
    instance: str | None = None,
    link: str | None = None,
) -> Alert:
    """Always firing while the service is healthy (dead-man's switch), severity ``none``.

    It carries ``ends_at = now + ttl``: sent again before that, it stays firing; when the
    service dies or turns unhealthy it stops being sent and resolves by itself, which the
    outside monitor (a receiver that expects it every few minutes) turns into a page."""
    return Alert(
        name=AlertName.HEARTBEAT,
        severity=Severity.NONE,
        summary="canary-analyzer is running and healthy (this alert always fires)",
        description=(
            "Dead-man's switch: this alert fires all the time while canary-analyzer is healthy. "
            "Route it to a monitor that pages when it STOPS arriving; do not page on it."
        ),
        starts_at=now,
        ends_at=now + ttl,
        labels=_labels(service=SERVICE_LABEL, instance=instance),
        link=link,
    )
