"""Self-contained HTML reports of verdicts: one analysis, or one whole upgrade.

A report is one HTML file with inline CSS and inline SVG charts (matplotlib): no script, no
CDN, no network, so it opens from a ticket attachment or an air-gapped laptop. For every
namespace and rule it shows the chart of the before and after windows with the controls'
band and the allowed limit, and the verdict's explanation (values, evidence, threshold,
statistic, reason, query) — the judge's dicts as labelled, formatted rows (``views.labels``),
and under each chart what its line and its judged values each show. Failing rules come first and stand out; the report of an upgrade
adds the timeline (tag move, restarts, verdicts, rollback).

Inputs are typed: ``NamespaceVerdict``/``RuleResult`` objects, and
``core.upgrade.UpgradeSummary.of(state)`` for an upgrade — the same objects the judge made,
never their dict forms (docs/architecture.md, "From plan to verdict to alert").

For the upgrade owner::

    recorder = TimelineRecorder()  # service.timeline: observer(state, notes, pending)
    engine = UpgradeEngine(..., observer=recorder)    # or call recorder(...) from yours
    state = engine.run(plan)
    write_upgrade_report(path, UpgradeSummary.of(state), recorder.timeline)
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from analyzer import __version__
from analyzer.core.formatting import Style, format_value
from analyzer.core.upgrade import UpgradeSummary
from analyzer.core.verdicts import NamespaceVerdict, RuleResult
from analyzer.core.windows import RestartWindows
from analyzer.views.labels import labelled_rows
from analyzer.views.verdict_text import own_window_text

TEMPLATES = Path(__file__).with_name("templates")

#: Order in which verdicts are listed: what needs a person's eyes first.
_VERDICT_ORDER = {"fail": 0, "error": 1, "inconclusive": 2, "pass": 3}


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["value"] = _format_any
    return environment


def render_template(name: str, **context: Any) -> str:
    """Render one of the package's templates (autoescaped)."""
    return _environment().get_template(name).render(version=__version__, **context)


# -- view models -------------------------------------------------------------------------------


def _format_any(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_format_any(v) for v in value) or "—"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_format_any(v)}" for k, v in value.items()) or "—"
    return format_value(value)


def _anchor(*parts: str) -> str:
    return "-".join(re.sub(r"[^a-z0-9]+", "-", p.lower()).strip("-") for p in parts if p)


def _change_text(rule: RuleResult, unit: str) -> str:
    before, after = rule.before, rule.after
    if not isinstance(before, int | float) or not isinstance(after, int | float):
        return "—"
    text = format_value(after - before, unit, Style.CHANGE)
    if before:
        text += f" ({(after - before) / abs(before):+.0%})"
    return text


@dataclass
class RuleView:
    """One rule result, ready for the template."""

    name: str
    namespace: str
    verdict: str
    reason: str
    anchor: str
    unit: str
    before: str
    after: str
    change: str
    critical: bool
    dry_run: bool
    decides: bool
    #: ``(label, formatted value)`` rows (``views.labels``), not the judge's raw dicts
    controls: list[tuple[str, str]] = field(default_factory=list)
    evidence: list[tuple[str, str]] = field(default_factory=list)
    threshold: list[tuple[str, str]] = field(default_factory=list)
    statistic: list[tuple[str, str]] = field(default_factory=list)
    limits: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)
    chart: str = ""
    #: what the chart's line and its judged values each show (``charts.chart_caption``)
    caption: str = ""
    #: the rule's own before-window, when it has one (``verdict_text.own_window_text``)
    before_window: str = ""

    @property
    def failing(self) -> bool:
        return self.verdict == "fail" and self.decides


def rule_view(rule: RuleResult, windows: Mapping[str, Any] | None = None) -> RuleView:
    """A rule result → what the template shows, chart included."""
    from analyzer.views.charts import allowed_limits, chart_caption, rule_chart_svg, rule_unit

    unit = rule_unit(rule)
    return RuleView(
        name=rule.rule,
        namespace=rule.namespace,
        verdict=rule.verdict.value,
        reason=rule.reason,
        anchor=_anchor("rule", rule.namespace, rule.rule),
        unit=unit,
        before=format_value(rule.before, unit),
        after=format_value(rule.after, unit),
        change=_change_text(rule, unit),
        critical=rule.critical,
        dry_run=rule.dry_run,
        decides=rule.decides,
        controls=labelled_rows(rule.controls or {}, unit),
        evidence=labelled_rows(rule.evidence, unit),
        threshold=labelled_rows(rule.threshold, unit),
        statistic=labelled_rows(rule.statistic, unit),
        limits=[f"{label} {format_value(v, unit)}" for v, label in allowed_limits(rule, unit)],
        queries=[str(q) for q in rule.queries],
        chart=rule_chart_svg(rule, windows),
        caption=chart_caption(rule, unit),
        before_window=own_window_text(rule) or "",
    )


def _sorted_rules(views: Iterable[RuleView]) -> list[RuleView]:
    return sorted(views, key=lambda v: (not v.failing, _VERDICT_ORDER.get(v.verdict, 9)))


@dataclass
class NamespaceView:
    """One namespace with its verdict and rule views."""

    name: str
    state: str
    verdict: str
    reason: str
    anchor: str
    rules: list[RuleView]

    @property
    def failing_rules(self) -> list[RuleView]:
        return [r for r in self.rules if r.failing]


def namespace_view(
    name: str,
    verdict: NamespaceVerdict | None,
    *,
    state: str = "",
    windows: Mapping[str, Any] | None = None,
) -> NamespaceView:
    rules = [rule_view(r, windows) for r in verdict.rules] if verdict else []
    return NamespaceView(
        name=name,
        state=state,
        verdict=verdict.verdict.value if verdict else "not judged",
        reason=verdict.reason if verdict else "",
        anchor=_anchor("ns", name),
        rules=_sorted_rules(rules),
    )


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- public renderers --------------------------------------------------------------------------


def render_analysis_report(
    verdict: NamespaceVerdict,
    windows: RestartWindows | Mapping[str, Any] | None,
    controls: Sequence[str] = (),
    meta: Mapping[str, Any] | None = None,
) -> str:
    """The HTML report of one analysis (``analyze``): the namespace verdict, its windows, the
    controls, and per rule its chart and explanation. ``meta`` adds rows to the header table
    (e.g. ``{"Prometheus": url, "Rules": dir}``)."""
    window_data = windows.to_dict() if isinstance(windows, RestartWindows) else windows
    namespace = namespace_view(verdict.namespace, verdict, windows=window_data)
    return render_template(
        "analysis.html.j2",
        title=f"{namespace.verdict.upper()} · {namespace.name} · canary analysis",
        namespace=namespace,
        windows=window_data or {},
        controls=list(controls),
        meta=dict(meta or {}),
        generated=_now_text(),
    )


#: Timeline reasons of the soak and the prune (``service.prune_path``): the report repeats
#: them under "After the upgrade".
AFTER_THE_UPGRADE = frozenset({
    "SoakStarted", "SoakEnded", "PruneBlocked", "PruneHelmOwned", "PruneOffered",
    "PruneApproved", "PruneDeleted", "Pruned", "PruneRefused", "PruneFailed",
})


def render_upgrade_report(
    summary: UpgradeSummary,
    timeline: Sequence[Mapping[str, Any]] = (),
    verdicts: Mapping[str, NamespaceVerdict] | None = None,
) -> str:
    """The HTML report of a whole upgrade.

    ``summary`` is ``UpgradeSummary.of(state)`` (outcome, revisions, tag, reason, and the
    namespace records with their typed rule results); ``timeline`` items are ``{"at",
    "message", "reason"?, "namespace"?, "warning"?}`` (see ``service.timeline.TimelineRecorder``);
    ``verdicts`` optionally gives richer verdicts per namespace (they win over the
    records')."""
    verdicts = dict(verdicts or {})
    namespaces = []
    for record in summary.namespaces:
        verdict = verdicts.pop(record.name, None) or record.judged()
        namespaces.append(namespace_view(record.name, verdict, state=record.state))
    for name, verdict in verdicts.items():  # verdicts of namespaces the summary lacks
        namespaces.append(namespace_view(name, verdict))
    failing = [r for ns in namespaces for r in ns.failing_rules]
    outcome = summary.outcome.value if summary.outcome else "in progress"
    events = [timeline_item(item) for item in timeline]
    return render_template(
        "upgrade.html.j2",
        title=f"{outcome.replace('_', ' ').upper()} · {summary.from_revision or '?'} → "
        f"{summary.to_revision or '?'} · canary-analyzer upgrade",
        summary=summary,
        outcome=outcome,
        namespaces=namespaces,
        failing=failing,
        timeline=events,
        after=[event for event in events if event.get("reason") in AFTER_THE_UPGRADE],
        generated=_now_text(),
    )


def timeline_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """One timeline item as the upgrade report and the status page show it:
    ``{"at", "reason", "namespace", "message", "kind"}``, all text.

    ``at`` is in UTC (``2026-03-02 01:42:00``) whether the item holds a datetime or its
    ISO 8601 text (as ``/api/status`` gives it); one without an offset counts as UTC, and
    text that is no timestamp is shown as is. ``kind`` is ``warning`` for a failure or a
    rollback, else ``normal``."""
    at = item.get("at") or item.get("time") or ""
    if isinstance(at, str):
        with contextlib.suppress(ValueError):  # not a timestamp: shown as is
            at = datetime.fromisoformat(at)
    if isinstance(at, datetime):
        at = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)
        at = at.strftime("%Y-%m-%d %H:%M:%S")
    reason = str(item.get("reason") or item.get("kind") or "")
    message = str(item.get("message") or "")
    lowered = f"{reason} {message}".lower()
    kind = "normal"
    if item.get("warning") or "rollback" in lowered or "rolling back" in lowered:
        kind = "warning"
    if "fail" in lowered:
        kind = "warning"
    return {
        "at": str(at),
        "reason": reason,
        "namespace": str(item.get("namespace") or ""),
        "message": message,
        "kind": kind,
    }


def write_report(path: str | os.PathLike[str], html: str) -> Path:
    """Write a report atomically (a reader never sees half a file); returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(html)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def write_upgrade_report(
    path: str | os.PathLike[str],
    summary: UpgradeSummary,
    timeline: Sequence[Mapping[str, Any]] = (),
    verdicts: Mapping[str, NamespaceVerdict] | None = None,
) -> Path:
    """``upgrade --report FILE.html`` in one call: render and write atomically."""
    return write_report(path, render_upgrade_report(summary, timeline, verdicts))


def report_file_name(kind: str, subject: str, at: datetime | None = None) -> str:
    """A safe, sortable file name: ``upgrade-1-15-4-20260302T013000Z.html``."""
    when = (at or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", f"{kind}-{subject}").strip("-.") or kind
    return f"{slug}-{when}.html"
