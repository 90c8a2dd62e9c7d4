"""Durations as people and Prometheus write them (``30s``, ``10m``, ``1h30m``, ``2d``).

One parser for flags, settings and rule files, so ``--after 10m`` and ``after: 10m`` mean
the same thing everywhere, and one formatter that renders a duration back into PromQL.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator, PlainSerializer

_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^(?:(\d+)(ms|s|m|h|d|w))+$")
_PART = re.compile(r"(\d+)(ms|s|m|h|d|w)")


class DurationError(ValueError):
    """A text that is not a duration such as ``30s``, ``10m`` or ``1h30m``."""


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """Parse ``30s``/``10m``/``1h30m``/``2d``; plain numbers are seconds."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, int | float) and not isinstance(text, bool):
        if text < 0:
            raise DurationError(f"duration must not be negative: {text}")
        return timedelta(seconds=text)
    value = str(text).strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return timedelta(seconds=float(value))
    if not _DURATION.fullmatch(value):
        raise DurationError(
            f"not a duration: {text!r} (use a number with a unit, e.g. 30s, 10m, 1h30m, 2d)"
        )
    seconds = sum(int(amount) * _UNIT_SECONDS[unit] for amount, unit in _PART.findall(value))
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
