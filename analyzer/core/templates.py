"""Rendering rule query templates into PromQL, safely.

Templates use ``{{ name }}`` placeholders from a fixed set. Namespace names are checked to
be DNS-1123 labels before they enter a query, so a name can never inject PromQL. One query
covers every namespace at once (a regex alternation), never one query per namespace.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta

from analyzer.core.durations import format_duration

#: Placeholders a template may use, and what they become.
PLACEHOLDERS = {
    "namespace_label": "the metric label holding the namespace (settings: rules.namespace_label)",
    "namespaces": "a regex alternation of the judged namespaces, e.g. bar|baz",
    "step": "the query step as a PromQL duration, e.g. 1m (use it as the range of increase())",
}

_PLACEHOLDER = re.compile(r"\{\{\s*([^}\s]*)\s*\}\}")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


class TemplateError(ValueError):
    """A template or a value that cannot be rendered into a safe query."""


def placeholders_in(template: str) -> list[str]:
    """Names of the placeholders used in a template, in order."""
    return _PLACEHOLDER.findall(template)


def validate_namespace(name: str) -> str:
    """Return ``name`` if it is a DNS-1123 label (as Kubernetes namespaces are), else raise."""
    if not (isinstance(name, str) and len(name) <= 63 and _DNS1123_LABEL.fullmatch(name)):
        raise TemplateError(
            f"not a valid namespace name: {name!r} (lowercase letters, digits and '-', "
            "at most 63 characters, starting and ending with a letter or digit)"
        )
    return name


def render_query(
    template: str, *, namespace_label: str, namespaces: Sequence[str], step: timedelta
) -> str:
    """Fill a template's placeholders. Raises ``TemplateError`` on unknown placeholders,
    invalid namespace names, an invalid label name or an empty namespace list."""
    if not _LABEL_NAME.fullmatch(namespace_label):
        raise TemplateError(f"not a valid metric label name: {namespace_label!r}")
    if not namespaces:
        raise TemplateError("no namespaces to query")
    names = sorted({validate_namespace(name) for name in namespaces})
    values = {
        "namespace_label": namespace_label,
        "namespaces": "|".join(names),
        "step": format_duration(step),
    }

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise TemplateError(f"unknown placeholder {{{{ {name} }}}}")
        return values[name]

    return _PLACEHOLDER.sub(substitute, template)
