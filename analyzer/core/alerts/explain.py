"""The text of alerts: explaining a verdict rule by rule, and the small pieces every alert
uses (labels, bullets, the report link, the length limit).

Why a module of its own: an alert at 3 a.m. must explain itself without a dashboard — which
rule failed, the values before and after, how much evidence, what change was allowed, the
test's p-value and what the control namespaces did. Writing that text in one pure place
keeps it the same in Alertmanager, Slack and the logs. Numbers go through
``core.formatting`` (alert style).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from analyzer.core.formatting import Style, format_value
from analyzer.core.verdicts import NamespaceVerdict, RuleResult, Verdict

SERVICE_LABEL = "canary-analyzer"
DESCRIPTION_LIMIT = 8000  # Alertmanager and chat tools cut long annotations; keep ours whole


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


def _duration(delta: timedelta) -> str:
    seconds = max(0, int(delta.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"
