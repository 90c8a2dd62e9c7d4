"""Human labels for the dicts a rule result carries (evidence, threshold, statistic, controls).

The judge stores its working as plain dicts keyed for machines (``before_bad``,
``p_value_no_change``); a report reader wants "errors before: 12". This maps the keys the
judge writes to a label and a kind of value, formats each value with the one formatter
(``core.formatting``) in the rule's unit where the value is in it, and shows a key it does
not know humanised (``estimate_allowance`` → "estimate allowance"), so a new key is never
lost. Nested dicts (a window's quantile) become rows of their own, labelled with both keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analyzer.core.formatting import Style, format_value, p_value_text

# Kinds of value: how a number under a key is written.
COUNT = "count"  # plain reading: 12,000
VALUE = "value"  # in the rule's unit: 1.00%, 41.0 ms
CHANGE = "change"  # a change in the rule's unit: +0.50 pp, +2.5 ms
SIZE = "size"  # the size of a change, unsigned: 0.10 pp
PERCENT = "percent"  # a fraction read as a percentage: 25%
P_VALUE = "p"  # p=0.0031
MS = "ms"  # milliseconds whatever the rule's unit
RANGE_MS = "range ms"  # [low, high] in milliseconds: 25.0 ms – 50.0 ms
PLAIN = "plain"  # number to 4 significant digits or text as it is

LABELS: dict[str, tuple[str, str]] = {
    # evidence
    "before_requests": ("requests before", COUNT),
    "after_requests": ("requests after", COUNT),
    "before_bad": ("errors before", COUNT),
    "after_bad": ("errors after", COUNT),
    "min_requests": ("requests needed per window", COUNT),
    "before_points": ("steps before", COUNT),
    "after_points": ("steps after", COUNT),
    "min_points": ("steps needed per window", COUNT),
    "tail_events": ("requests in the tail", COUNT),
    "before_quantile": ("quantile before", PLAIN),
    "after_quantile": ("quantile after", PLAIN),
    "value_ms": ("value", MS),
    "bucket": ("bucket", RANGE_MS),
    "tail_requests": ("requests in the tail", COUNT),
    "tail_exponent": ("tail exponent", PLAIN),
    "tail_dispersion": ("tail dispersion", PLAIN),
    "interpolation_log_error": ("interpolation error (log)", PLAIN),
    "before_window": ("the rule's own before-window", PLAIN),
    "covered_start": ("held from", PLAIN),
    "covered": ("held", PLAIN),
    # threshold
    "allowed_change": ("allowed change", CHANGE),
    "allowed_relative": ("allowed relative change", PERCENT),
    "allowed_absolute": ("allowed absolute change", MS),
    "allowed_log_change": ("allowed change (log)", PLAIN),
    "direction": ("regression direction", PLAIN),
    "ceiling": ("ceiling", VALUE),
    "floor": ("floor", VALUE),
    "confidence": ("confidence to fail", PERCENT),
    "pass_confidence": ("confidence to pass", PERCENT),
    "quantile": ("quantile", PLAIN),
    # statistic
    "test": ("test", PLAIN),
    "z": ("z", PLAIN),
    "p_value": ("p-value", P_VALUE),
    "p_value_no_change": ("p-value of no change", P_VALUE),
    "p_value_beyond_allowance": ("p-value beyond the allowance", P_VALUE),
    "fail_when": ("fails when", PLAIN),
    "alpha": ("alpha", PLAIN),
    "change": ("change", CHANGE),
    "standard_error": ("standard error", SIZE),
    "worst_plausible_change": ("worst plausible change", CHANGE),
    "least_certain_change": ("least certain change", CHANGE),
    "relative_change": ("relative change", PERCENT),
    "absolute_change_ms": ("absolute change", MS),
    "worst_plausible_relative_change": ("worst plausible relative change", PERCENT),
    "least_certain_relative_change": ("least certain relative change", PERCENT),
    # controls
    "namespaces": ("namespaces", PLAIN),
    "before": ("before", VALUE),
    "after": ("after", VALUE),
    "ratio": ("after ÷ before", PLAIN),
    "drift_model": ("drift model", PLAIN),
    "requests_before": ("requests before", COUNT),
    "requests_after": ("requests after", COUNT),
    "median_change": ("median change", CHANGE),
    "quantile_change_relative": ("quantile change", PERCENT),
}


def humanise(key: str) -> str:
    """``estimate_standard_error`` → ``estimate standard error``."""
    return str(key).replace("_", " ").replace("-", " ").strip() or str(key)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def format_as(value: Any, kind: str, unit: str) -> str:
    """One value as ``kind`` says (see ``LABELS``), in ``unit`` where it is the rule's."""
    if isinstance(value, list | tuple):
        if kind == RANGE_MS:
            return " – ".join(format_as(v, MS, unit) for v in value) or "—"
        return ", ".join(format_as(v, kind, unit) for v in value) or "—"
    if not _number(value):
        return format_value(value)
    if kind == VALUE:
        return format_value(value, unit)
    if kind == CHANGE:
        return format_value(value, unit, Style.CHANGE)
    if kind == SIZE:
        return format_value(value, unit, Style.CHANGE).lstrip("+")
    if kind == PERCENT:
        return f"{value * 100:.3g}%"
    if kind == P_VALUE:
        return p_value_text(value).removeprefix("p=")
    if kind == MS:
        return format_value(value, "ms")
    if kind == COUNT:
        return format_value(value)
    return format_value(value, "", Style.TICK) if isinstance(value, float) else format_value(value)


def labelled_rows(items: Mapping[str, Any], unit: str = "") -> list[tuple[str, str]]:
    """``items`` as ``(label, formatted value)`` rows; nested dicts give one row per key."""
    rows: list[tuple[str, str]] = []
    for key, value in items.items():
        if value is None:
            continue
        label, kind = LABELS.get(key, (humanise(key), PLAIN))
        if isinstance(value, Mapping):
            rows.extend((f"{label} · {sub}", text) for sub, text in labelled_rows(value, unit))
        else:
            rows.append((label, format_as(value, kind, unit)))
    return rows
