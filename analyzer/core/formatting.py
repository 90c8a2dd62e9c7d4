"""One value formatter for every number a person reads: reasons, alerts, reports, chart axes.

Why one module: the judge writes values into its reasons (``1.00% → 5.00%``), alerts quote
them, the reports and the terminal show them in tables and the charts label their axes with
them. Four private formatters used to do this, each with its own idea of ``n/a``, units and
precision. They now share one function whose ``style`` says where the text goes; each
style keeps the exact text its readers (and the tests and docs that quote it) know.
Pure and in core because the judge needs it for reason texts.

Styles:

- ``REASON`` (judge reasons): ``ratio`` as ``1.00%``, ``pp`` as ``+0.50 pp``, ``ms`` as
  ``23.4 ms``, ``rps`` as ``20.00 rps``, anything else to 4 significant digits with its unit.
- ``ALERT`` (alert descriptions, no units): ``true``/``false``, whole numbers as they are,
  other numbers to 4 significant digits, ``inf``.
- ``READING`` (report and terminal cells): units as in reasons, whole numbers with
  thousands separators (``12,000``), ``∞``.
- ``TICK`` (chart axes): short — ``1.5%``, ``250 ms``, ``20/s``.
- ``CHANGE`` (a difference in reports): signed — ``+3.99 pp``, ``+2.5 ms``, ``-0.2``.

Missing values (None, NaN) read ``n/a`` in every style.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import StrEnum
from typing import Any

MISSING = "n/a"

#: Below this a p-value is printed as a bound: doubles cannot tell such values apart.
P_VALUE_FLOOR = 1e-300


class Style(StrEnum):
    """Where a formatted value is read (see the module docstring)."""

    REASON = "reason"
    ALERT = "alert"
    READING = "reading"
    TICK = "tick"
    CHANGE = "change"


_Format = Callable[[float], str]

_UNITS: dict[Style, dict[str, _Format]] = {
    Style.REASON: {
        "ratio": lambda v: f"{v * 100:.2f}%",
        "pp": lambda v: f"{v * 100:+.2f} pp",
        "ms": lambda v: f"{v:.1f} ms",
        "rps": lambda v: f"{v:.2f} rps",
    },
    Style.ALERT: {},
    Style.READING: {
        "ratio": lambda v: f"{v * 100:.2f}%",
        "ms": lambda v: f"{v:.1f} ms",
        "rps": lambda v: f"{v:.2f} rps",
    },
    Style.TICK: {
        "ratio": lambda v: f"{v * 100:.3g}%",
        "ms": lambda v: f"{v:.4g} ms",
        "rps": lambda v: f"{v:.4g}/s",
    },
    Style.CHANGE: {
        "ratio": lambda v: f"{v * 100:+.2f} pp",
        "ms": lambda v: f"{v:+.1f} ms",
    },
}

#: How each style writes infinity (None: like any other number).
_INFINITY: dict[Style, tuple[str, str] | None] = {
    Style.REASON: None,
    Style.ALERT: ("inf", "-inf"),
    Style.READING: ("∞", "-∞"),
    Style.TICK: None,
    Style.CHANGE: None,
}


def _plain(value: float, unit: str, style: Style) -> str:
    """A number without a known unit."""
    if style is Style.REASON:
        return f"{value:.4g}{(' ' + unit) if unit else ''}"
    if style is Style.ALERT and isinstance(value, int):
        return str(value)
    if style is Style.CHANGE:
        return f"{value:+.4g}"
    if style is Style.READING:
        if isinstance(value, int) or (value.is_integer() and abs(value) < 1e15):
            return f"{int(value):,}"
        if abs(value) >= 1000:
            return f"{value:,.1f}"
    return f"{value:.4g}"


def format_value(value: Any, unit: str = "", style: Style = Style.READING) -> str:
    """``value`` as a person reads it where ``style`` says (``unit``: ``ratio``, ``pp``,
    ``ms``, ``rps`` or any other word, written after the number in reasons)."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        if style is Style.ALERT:
            return str(value).lower()
        if style is Style.READING:
            return str(value)
    elif not isinstance(value, int | float) and style in (Style.ALERT, Style.READING):
        return str(value)  # not a number (NumPy integers included): shown as it prints
    if isinstance(value, float) and math.isnan(value):
        return MISSING
    infinity = _INFINITY[style]
    if infinity is not None and isinstance(value, float) and math.isinf(value):
        return infinity[0] if value > 0 else infinity[1]
    unit_format = _UNITS[style].get(unit)
    if unit_format is not None:
        return unit_format(value)
    return _plain(value, unit, style)


def p_value_text(p_value: float) -> str:
    """``p=0.0031`` for a reason text; ``p<1e-300`` where the value underflowed to 0."""
    return f"p<{P_VALUE_FLOOR:.0e}" if p_value < P_VALUE_FLOOR else f"p={p_value:.2g}"
