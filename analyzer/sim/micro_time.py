"""The API server's decoding of MicroTime fields: exactly six fractional digits.

Why it exists: ``metav1.MicroTime`` (Lease ``acquireTime``/``renewTime``, Event
``eventTime``/``series.lastObservedTime``) is parsed with the layout RFC3339Micro,
``2006-01-02T15:04:05.000000Z07:00`` (k8s.io/apimachinery pkg/apis/meta/v1/micro_time.go,
UnmarshalJSON → time.Parse). Go's parser requires exactly the digits the layout names, so
``…:00Z`` (what Python's ``isoformat`` writes when the microseconds are zero) and
nanosecond fractions are refused. The body then cannot be decoded and the API server
answers 400 BadRequest, "<Kind> in version "<v>" cannot be handled as a <Kind>: <parse
error>" (apiserver handlers, transformDecodeError).
"""

from __future__ import annotations

import re
from typing import Any

LAYOUT = "2006-01-02T15:04:05.000000Z07:00"
_SECONDS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
_ZONE = re.compile(r"^(Z|[+-]\d{2}:\d{2})$")
_FRACTION = re.compile(r"^\.\d{6}")
#: where MicroTime fields sit, per kind (both Event APIs use the same names)
FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "Lease": (("spec", "acquireTime"), ("spec", "renewTime")),
    "Event": (("eventTime",), ("series", "lastObservedTime")),
}


def _parse_error(value: str) -> str | None:
    """Go's time.Parse error for ``value`` against RFC3339Micro, None when it parses."""
    prefix = f"parsing time {_quote(value)} as {_quote(LAYOUT)}: cannot parse "
    seconds = _SECONDS.match(value)
    if seconds is None:
        return prefix + f"{_quote(value)} as {_quote('2006-01-02T15:04:05')}"
    rest = value[seconds.end():]
    if not _FRACTION.match(rest):
        return prefix + f"{_quote(rest)} as {_quote('.000000')}"
    zone = rest[7:]
    if not _ZONE.match(zone):
        return prefix + f"{_quote(zone)} as {_quote('Z07:00')}"
    return None


def _quote(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


def decode_error(kind: str, version: str, body: Any) -> str | None:
    """The 400 message for a body whose MicroTime fields do not decode, else None."""
    if not isinstance(body, dict):
        return None
    for path in FIELDS.get(kind, ()):
        value: Any = body
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str):
            problem = _parse_error(value)
            if problem:
                return f"{kind} in version {_quote(version)} cannot be handled as a {kind}: " \
                       f"{problem}"
    return None
