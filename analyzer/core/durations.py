"""Durations as people and Prometheus write them (``30s``, ``10m``, ``1h30m``, ``2d``).

One parser for flags, settings and rule files, so ``--after 10m`` and ``after: 10m`` mean
the same thing everywhere, and one formatter that renders a duration back into PromQL.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_UNIT_SECONDS = {
    "y": 365 * 86400, "w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001,
}  # fmt: skip
#: Prometheus' rule (model.ParseDuration in prometheus/common): whole numbers, units from
#: the largest down, each at most once: ``1h30m``, ``2d``, ``250ms``; not ``1.5h``,
#: ``30m1h`` or ``-5s``. ``durationpy`` (Go's time.ParseDuration) was weighed: it has no
#: ``w``/``y`` and takes fractions and negatives that PromQL refuses, so ``--step 1.5m``
#: would mean something no rule query could say.
_DURATION = re.compile(
    r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$"
)
_UNITS = ("y", "w", "d", "h", "m", "s", "ms")


class DurationError(ValueError):
    """A text that is not a duration such as ``30s``, ``10m`` or ``1h30m``."""


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse ``30s``/``10m``/``1h30m``/``2d`` as Prometheus does; a bare number is refused
    (seconds? minutes?), except ``0``."""
    if isinstance(text, timedelta):
        return text
    value = str(text).strip()
    if value == "0":
        return timedelta(0)
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        raise DurationError(
            f"not a duration: {value} is a bare number; add a unit, e.g. {value}s or {value}m"
        )
    match = _DURATION.fullmatch(value)
    if not value or match is None:
        raise DurationError(
            f"not a duration: {text!r} (whole numbers with units from the largest down, "
            "e.g. 30s, 10m, 1h30m, 2d, 250ms)"
        )
    seconds = sum(
        int(amount) * _UNIT_SECONDS[unit]
        for amount, unit in zip(match.groups(), _UNITS, strict=True)
        if amount
    )
    return timedelta(seconds=seconds)


def format_duration(duration: timedelta) -> str:
    """Render as PromQL accepts it, largest units first: ``90s`` → ``1m30s``."""
    total_ms = round(duration.total_seconds() * 1000)
    if total_ms <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        amount, total_ms = divmod(total_ms, size)
        if amount:
            parts.append(f"{amount}{unit}")
    if total_ms:
        parts.append(f"{total_ms}ms")
    return "".join(parts)


def _validate(value: object) -> timedelta:
    try:
        return parse_duration(value)  # type: ignore[arg-type]
    except DurationError as error:
        raise ValueError(str(error)) from None


#: A pydantic field type that accepts ``10m`` and friends and serialises back to text.
Duration = Annotated[
    timedelta,
    BeforeValidator(_validate),
    PlainSerializer(format_duration, return_type=str),
]
