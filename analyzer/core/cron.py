"""Cron macros (``@daily``, ``@hourly``, ``@weekly``…) as the five crontab fields they stand for.

Why: operators write ``@daily`` in every crontab they know (cron(8), Kubernetes CronJob),
and apscheduler 3's ``CronTrigger.from_crontab`` takes only the five fields. The macros
mean what cron's manual says: ``@yearly``/``@annually`` ``0 0 1 1 *``, ``@monthly``
``0 0 1 * *``, ``@weekly`` ``0 0 * * 0`` (Sunday midnight), ``@daily``/``@midnight``
``0 0 * * *``, ``@hourly`` ``0 * * * *``. ``@reboot`` has no meaning for a window.

Numeric days of the week are cron's too: 0 and 7 are Sunday, 1 Monday. apscheduler 3's
``from_crontab`` hands the field to its own ``day_of_week``, where 0 is Monday, so
``0 1 * * 1-5`` would open Tuesday to Saturday; the numbers are therefore written as day
names (``mon-fri``), which both read alike.
"""

from __future__ import annotations

import re

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * sun",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


class CronMacroError(ValueError):
    """A ``@word`` that is not one of cron's macros for a schedule."""


_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _day_names(field: str) -> str:
    """Cron's numeric days of the week (0-7, Sunday 0 and 7) as names; steps stay numbers."""

    def item(text: str) -> str:
        span, slash, step = text.partition("/")
        named = re.sub(
            r"\d+", lambda m: _DAYS[int(m.group())] if int(m.group()) <= 7 else m.group(), span
        )
        return named + slash + step

    return ",".join(item(part) for part in field.split(","))


def expand_macro(expression: str) -> str:
    """The five crontab fields of ``expression`` as apscheduler 3 reads them like cron:
    macros expanded, numeric days of the week named."""
    text = expression.strip()
    if not text.startswith("@"):
        fields = text.split()
        if len(fields) == 5:
            fields[4] = _day_names(fields[4])
        return " ".join(fields) if len(fields) == 5 else text
    try:
        return MACROS[text.lower()]
    except KeyError:
        raise CronMacroError(
            f"unknown cron macro {text!r} (use one of {', '.join(MACROS)} or five fields "
            "such as '0 1 * * *')"
        ) from None
