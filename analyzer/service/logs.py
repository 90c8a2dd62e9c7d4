"""Logging set-up: JSON lines when not on a terminal, readable lines on one; secrets redacted.

Every decision is logged with its reasons; structured fields go in ``extra=``
under the key ``fields`` so both formats can show them.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

_SECRET_PATTERNS = (
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?)(bearer|basic)\s+[^\s'\",]+"),
    re.compile(r"(?i)((?:token|password|secret)['\"]?\s*[:=]\s*['\"]?)[^\s'\",]+"),
)


def redact(text: str) -> str:
    """Replace bearer tokens, basic credentials, passwords and secrets with ``***``."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda match: match.group(1) + "***", text)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update({key: value for key, value in fields.items() if key not in entry})
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


class ReadableFormatter(logging.Formatter):
    """``HH:MM:SS level message key=value …`` for people at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        text = f"{stamp} {record.levelname.lower():7} {redact(record.getMessage())}"
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict) and fields:
            text += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        if record.exc_info:
            text += "\n" + redact(self.formatException(record.exc_info))
        return text


def configure_logging(debug: bool = False, stream=None) -> None:
    """Send the product's logs to stderr in the format that suits where stderr goes."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    is_terminal = hasattr(stream, "isatty") and stream.isatty()
    handler.setFormatter(ReadableFormatter() if is_terminal else JsonFormatter())
    root = logging.getLogger("canary_analyzer")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    root.propagate = False
