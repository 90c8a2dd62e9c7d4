"""Range windows in rule queries that are too short for the scrape interval.

``increase(x[w])`` needs at least two samples of a series inside ``w``; with samples every
``scrape_interval`` a window of one or two intervals holds one or two of them, and a single
missed or late scrape empties it, so the rule sees "no data" (the judge's INCONCLUSIVE) at
common 30–60 s scrapes. Prometheus's own guidance for ``rate()``/``increase()`` is a range
of at least four scrape intervals; ``rules lint`` warns below that. ``{{ step }}`` windows
are judged at the configured step. Pure: no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from analyzer.core.durations import DurationError, format_duration, parse_duration
from analyzer.core.rules import RuleSet

#: How many scrape intervals a range window must span.
SCRAPES_PER_WINDOW = 4

# a range selector: "[5m]", "[{{ step }}]", a subquery "[30m:1m]" (its range is the first part)
_RANGE = re.compile(r"\[\s*([^\]:]+?)\s*(?::[^\]]*)?\]")
_STEP = re.compile(r"^\{\{\s*step\s*\}\}$")


@dataclass(frozen=True)
class ShortWindow:
    """One range window shorter than ``SCRAPES_PER_WINDOW`` scrape intervals."""

    source: str
    line: int
    rule: str
    fields: tuple[str, ...]
    window: str
    length: timedelta
    scrape_interval: timedelta

    def __str__(self) -> str:
        needed = format_duration(self.scrape_interval * SCRAPES_PER_WINDOW)
        shown = self.window if self.window == format_duration(self.length) else (
            f"{self.window} = {format_duration(self.length)}")
        where = ", ".join(f"spec.{field}" for field in self.fields)
        return (f"{self.source}:{self.line}: warning: rule {self.rule!r}: {where} uses "
                f"the range [{shown}], shorter than {SCRAPES_PER_WINDOW}× the scrape interval "
                f"{format_duration(self.scrape_interval)} ({needed}): a missed scrape leaves "
                "it without two samples, so it returns nothing; raise the step "
                "(windows.step) or the range")


def short_windows(rules: RuleSet, step: timedelta, scrape_interval: timedelta
                  ) -> list[ShortWindow]:
    """Every range window of every rule query below ``SCRAPES_PER_WINDOW × scrape_interval``."""
    found: list[ShortWindow] = []
    minimum = scrape_interval * SCRAPES_PER_WINDOW
    for loaded in rules.rules:
        spec = loaded.rule.spec
        short: dict[tuple[str, timedelta], list[str]] = {}
        for field in ("numerator", "denominator", "buckets", "query"):
            template = getattr(spec, field)
            if not template:
                continue
            for match in _RANGE.finditer(template):
                text = match.group(1)
                if _STEP.match(text):
                    length = step
                else:
                    try:
                        length = parse_duration(text)
                    except DurationError:
                        continue  # not a literal duration we can judge
                if length < minimum and field not in short.setdefault((text, length), []):
                    short[(text, length)].append(field)
        found.extend(ShortWindow(loaded.source, loaded.line, loaded.rule.name, tuple(fields),
                                 text, length, scrape_interval)
                     for (text, length), fields in short.items())
    return found
