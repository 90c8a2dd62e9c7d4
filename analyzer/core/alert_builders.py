"""Build the alerts on-call receives from what the engine knows: verdicts, revisions, namespaces.

Why a module of its own: an alert at 3 a.m. must explain itself without a dashboard — which
rule failed, the values before and after, how much evidence, what change was allowed, the
test's p-value and what the control namespaces did, then what the service already did and
will do next. Writing that text in one pure place keeps it the same in Alertmanager, Slack
and the logs, and lets unit tests check it without a server. No clock reads: ``now`` is an
argument; every builder takes an optional ``link`` to the report.

Labels are the alert's identity (name + labels) and what Alertmanager routes on, so they
hold only stable, low-cardinality facts: namespace, revision (the target), from_revision,
rule, tag. Everything else goes into the summary and description annotations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from analyzer.core.alerts import Alert, AlertName, Severity
from analyzer.core.formatting import Style, format_value
from analyzer.core.verdicts import NamespaceVerdict, RuleResult, Verdict

SERVICE_LABEL = "canary-analyzer"
DESCRIPTION_LIMIT = 8000  # Alertmanager and chat tools cut long annotations; keep ours whole


class HoldCause(StrEnum):
    """Why an upgrade holds instead of promoting or rolling back."""

    INCONCLUSIVE = "inconclusive"
    DATA_SOURCE_ERRORS = "data-source-errors"
    WINDOW_CLOSED = "window-closed"
    OPERATOR = "operator"


# -- explaining verdicts --------------------------------------------------------------------


def rule_result_from_dict(data: Mapping[str, Any]) -> RuleResult:
    """A ``RuleResult`` back from its ``to_dict`` form (as stored in the upgrade state)."""
    return RuleResult(
        rule=str(data["rule"]),
        namespace=str(data.get("namespace", "")),
        verdict=Verdict(data["verdict"]),
        reason=str(data.get("reason", "")),
        critical=bool(data.get("critical", True)),
        dry_run=bool(data.get("dry_run", False)),
        applies=bool(data.get("applies", True)),
        before=data.get("before"),
        after=data.get("after"),
        controls=data.get("controls"),
        evidence=dict(data.get("evidence") or {}),
        threshold=dict(data.get("threshold") or {}),
        statistic=dict(data.get("statistic") or {}),
        queries=tuple(data.get("queries") or ()),
    )


def namespace_verdict(
    namespace: str,
    verdict: Verdict | str,
    reason: str,
    rules: Iterable[RuleResult | Mapping[str, Any]] = (),
) -> NamespaceVerdict:
    """A ``NamespaceVerdict`` from the parts the engine keeps (rule results as dicts or not)."""
    results = tuple(r if isinstance(r, RuleResult) else rule_result_from_dict(r) for r in rules)
    return NamespaceVerdict(
        namespace=namespace, verdict=Verdict(verdict), reason=reason, rules=results
    )


def _num(value: Any) -> str:
    return format_value(value, style=Style.ALERT)


def _pairs(data: Mapping[str, Any], skip: Sequence[str] = ()) -> str:
    shown = [
        f"{key.replace('_', ' ')} {_num(value)}"
        for key, value in data.items()
        if key not in skip and value is not None and not isinstance(value, (dict, list, tuple))
    ]
    return ", ".join(shown)


def _allowed(threshold: Mapping[str, Any]) -> str:
    parts = []
    if threshold.get("allowed_change") is not None:
        parts.append(f"change {_num(threshold['allowed_change'])}")
    if threshold.get("allowed_absolute") is not None:
        parts.append(f"absolute {_num(threshold['allowed_absolute'])}")
    if threshold.get("allowed_relative") is not None:
        parts.append(f"relative {_num(threshold['allowed_relative'])}")
    if threshold.get("ceiling") is not None:
        parts.append(f"ceiling {_num(threshold['ceiling'])}")
    if threshold.get("floor") is not None:
        parts.append(f"floor {_num(threshold['floor'])}")
    if threshold.get("direction"):
        parts.append(f"bad direction {threshold['direction']}")
    return ", ".join(parts) or "n/a"


def _controls(controls: Mapping[str, Any] | None) -> str:
    if not controls:
        return "none (no namespace still on the old revision had enough evidence)"
    names = controls.get("namespaces") or []
    listed = ", ".join(str(n) for n in names) if names else "controls"
    details = _pairs(controls, skip=("namespaces",))
    return f"{listed}: {details}" if details else listed


def explain_rule(result: RuleResult) -> str:
    """Several lines explaining one rule result: values, evidence, allowed change, p, controls."""
    marks = [
        m for m, on in (("dry-run", result.dry_run), ("non-critical", not result.critical)) if on
    ]
    tag = f" [{', '.join(marks)}]" if marks else ""
    statistic = result.statistic or {}
    change = statistic.get("change")
    p_value = statistic.get("p_value")
    lines = [
        f"- {result.rule}{tag}: {result.verdict.value.upper()} in {result.namespace or '?'}",
        f"  before {_num(result.before)} → after {_num(result.after)}"
        + (f" (change {_num(change)})" if change is not None else ""),
        f"  evidence: {_pairs(result.evidence) or 'none recorded'}",
        f"  allowed: {_allowed(result.threshold)}",
        f"  p-value: {_num(p_value)}"
        + (f" ({statistic['test']})" if statistic.get("test") else ""),
        f"  controls: {_controls(result.controls)}",
        f"  reason: {result.reason}",
    ]
    return "\n".join(lines)


def explain_verdict(verdict: NamespaceVerdict, only: Sequence[Verdict] | None = None) -> str:
    """The namespace verdict and its rules (all, or only those whose verdict is in ``only``)."""
    chosen = [r for r in verdict.rules if only is None or r.verdict in only]
    head = f"{verdict.namespace}: {verdict.verdict.value.upper()} — {verdict.reason}"
    return "\n".join([head, *(explain_rule(r) for r in chosen)])


def _headline(result: RuleResult) -> str:
    """``error-rate regression: 1.00% → 5.00%`` (the judge's own units when it gave them)."""
    reason = result.reason.split("\n")[0].split(" (")[0]
    if "→" in reason:
        return f"{result.rule} {reason}"
    return f"{result.rule} {_num(result.before)} → {_num(result.after)}"


def _clip(text: str) -> str:
    if len(text) <= DESCRIPTION_LIMIT:
        return text
    return text[: DESCRIPTION_LIMIT - 40].rstrip() + "\n… (cut; the report has everything)"


def _bullets(items: Iterable[str]) -> str:
    return "\n".join(f"- {item}" for item in items)


def _join(values: Iterable[str]) -> str:
    return ",".join(dict.fromkeys(v for v in values if v))


def _labels(**values: str | None) -> dict[str, str]:
    """Drop empty values: an empty label is no label in Alertmanager."""
    return {key: value for key, value in values.items() if value}


def _with_link(description: str, link: str | None) -> str:
    return description + (f"\n\nReport: {link}" if link else "")


# -- the alerts -----------------------------------------------------------------------------


def rollback_started(
    failed: NamespaceVerdict | Sequence[NamespaceVerdict],
    *,
    from_revision: str,
    to_revision: str,
    tag: str,
    now: datetime,
    moved: Sequence[str] = (),
    gateways: Sequence[str] = (),
    already_done: Sequence[str] | None = None,
    next_steps: Sequence[str] | None = None,
    upgrade_id: str | None = None,
    link: str | None = None,
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
    summary = f"Rolling back {tag} {to_revision} → {from_revision}: {namespaces} " + (
        _headline(first) if first else verdicts[0].reason.split("\n")[0]
    )
    restore = list(dict.fromkeys([*moved, *(v.namespace for v in verdicts)]))
    done = (
        list(already_done)
        if already_done is not None
        else [
            f"moved tag {tag} to {to_revision} and restarted {', '.join(restore)}",
            f"judged {namespaces} against the rules: FAIL",
        ]
    )
    steps = (
        list(next_steps)
        if next_steps is not None
        else [
            f"move tag {tag} back to {from_revision}",
            "restart "
            + ", ".join([*(f"gateway in {g}" for g in gateways), *restore] or ["moved namespaces"]),
            f"verify every proxy runs {from_revision}, then send CanaryAnalyzerRollbackFinished",
        ]
    )
    explained = "\n\n".join(explain_verdict(v, only=(Verdict.FAIL,)) for v in verdicts)
    description = (
        f"Upgrade {upgrade_id + ' ' if upgrade_id else ''}of tag {tag} from {from_revision} to "
        f"{to_revision} failed its checks.\n\nFailing rules (before → after):\n{explained}\n\n"
        f"Already done:\n{_bullets(done)}\n\nNext:\n{_bullets(steps)}"
    )
    return Alert(
        name=AlertName.ROLLBACK_STARTED,
        severity=Severity.CRITICAL,
        summary=summary,
        description=_clip(_with_link(description, link)),
        starts_at=now,
        labels=_labels(
            namespace=namespaces,
            revision=to_revision,
            from_revision=from_revision,
            rule=rules,
            tag=tag,
            upgrade=upgrade_id,
        ),
        link=link,
    )


def rollback_finished(
    *,
    from_revision: str,
    to_revision: str,
    tag: str,
    restored: Sequence[str],
    all_proxies_old: bool,
    now: datetime,
    mismatched: Sequence[str] = (),
    reason: str = "",
    rules: Sequence[str] = (),
    upgrade_id: str | None = None,
    link: str | None = None,
) -> Alert:
    """CRITICAL: the rollback ended; says what was restored and whether every proxy is old again.

    ``mismatched`` lists proxies still on another revision (``ns/pod: revision X``)."""
    state = (
        f"all proxies are back on {from_revision}"
        if all_proxies_old
        else f"{len(mismatched) or 'some'} proxies are NOT back on {from_revision}"
    )
    summary = f"Rollback of tag {tag} to {from_revision} finished: {state}"
    lines = [
        f"Tag {tag} points at {from_revision} again (the upgrade to {to_revision} was rolled back).",
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
    return Alert(
        name=AlertName.ROLLBACK_FINISHED,
        severity=Severity.CRITICAL,
        summary=summary,
        description=_clip(_with_link("\n".join(lines), link)),
        starts_at=now,
        labels=_labels(
            namespace=_join(restored),
            revision=to_revision,
            from_revision=from_revision,
            rule=_join(rules),
            tag=tag,
            upgrade=upgrade_id,
        ),
        link=link,
    )


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
    from_revision: str,
    to_revision: str,
    tag: str,
    cause: HoldCause | str,
    now: datetime,
    extensions: int = 0,
    detail: str = "",
    upgrade_id: str | None = None,
    link: str | None = None,
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
    summary = f"Upgrade of tag {tag} to {to_revision} held{' in ' + namespaces if namespaces else ''}: {why}"
    missing = _missing_evidence(verdicts)
    lines = [
        f"Upgrade {upgrade_id + ' ' if upgrade_id else ''}of tag {tag} from {from_revision} to "
        f"{to_revision} is held: {why}.",
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
    return Alert(
        name=AlertName.HELD,
        severity=Severity.WARNING,
        summary=summary,
        description=_clip(_with_link("\n\n".join(lines), link)),
        starts_at=now,
        labels=_labels(
            namespace=namespaces,
            revision=to_revision,
            from_revision=from_revision,
            rule=_join(r.rule for r in unsure),
            tag=tag,
            reason=cause.value,
            upgrade=upgrade_id,
        ),
        link=link,
    )


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
    from_revision: str,
    to_revision: str,
    tag: str,
    namespaces: Sequence[str],
    now: datetime,
    started_at: datetime | None = None,
    verdicts: Sequence[NamespaceVerdict] = (),
    upgrade_id: str | None = None,
    expires_in: timedelta | None = timedelta(hours=1),
    link: str | None = None,
) -> Alert:
    """INFO: every namespace runs the new revision and passed; nothing left to do.

    It is news, not a problem: it ends by itself after ``expires_in`` (None: until resolved)."""
    took = f" in {_duration(now - started_at)}" if started_at else ""
    summary = f"Upgrade of tag {tag} to {to_revision} done: {len(namespaces)} namespace(s){took}"
    lines = [
        f"Tag {tag} now points at {to_revision} (was {from_revision}); "
        f"{len(namespaces)} namespace(s) moved and passed their checks{took}:",
        _bullets(namespaces) or "- none",
    ]
    if verdicts:
        lines.append("Verdicts:\n" + "\n".join(f"- {v.namespace}: {v.reason}" for v in verdicts))
    lines.append(f"Next: nothing. {from_revision} can be removed once you no longer need it.")
    return Alert(
        name=AlertName.UPGRADE_DONE,
        severity=Severity.INFO,
        summary=summary,
        description=_clip(_with_link("\n".join(lines), link)),
        starts_at=now,
        ends_at=now + expires_in if expires_in is not None else None,
        labels=_labels(
            revision=to_revision, from_revision=from_revision, tag=tag, upgrade=upgrade_id
        ),
        link=link,
    )


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


def _duration(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"
