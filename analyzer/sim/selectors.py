"""Label and field selectors, in the string form of query parameters and the structured
form of webhook ``namespaceSelector``/``objectSelector`` (``matchLabels``/``matchExpressions``).

The grammar follows k8s.io/apimachinery ``labels.Parse``: comma-separated requirements
``key``, ``!key``, ``key=value``, ``key==value``, ``key!=value``, ``key in (a,b)``,
``key notin (a,b)``. An empty selector matches everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


class SelectorError(ValueError):
    """A selector the API server would reject (answered with 400 BadRequest)."""


@dataclass(frozen=True)
class Requirement:
    """One clause of a label selector."""

    key: str
    operator: str  # "exists", "!exists", "=", "!=", "in", "notin"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "exists":
            return present
        if self.operator == "!exists":
            return not present
        if self.operator == "=":
            return present and value == self.values[0]
        if self.operator == "!=":
            return not present or value != self.values[0]
        if self.operator == "in":
            return present and value in self.values
        if self.operator == "notin":
            return not present or value not in self.values
        raise SelectorError(f"unknown operator {self.operator!r}")


@dataclass(frozen=True)
class LabelSelector:
    """A conjunction of requirements; empty means "everything"."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(requirement.matches(labels) for requirement in self.requirements)


_SET_CLAUSE = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_KEY = re.compile(
    r"^([a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?/)?[a-zA-Z0-9]([-a-zA-Z0-9_.]*[a-zA-Z0-9])?$"
)


def _split_clauses(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    clauses, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                raise SelectorError(f"unbalanced parentheses in selector {text!r}")
        if char == "," and depth == 0:
            clauses.append("".join(current))
            current = []
        else:
            current.append(char)
    if depth:
        raise SelectorError(f"unbalanced parentheses in selector {text!r}")
    clauses.append("".join(current))
    return clauses


def _check_key(key: str, text: str) -> str:
    if not _KEY.match(key):
        raise SelectorError(f"invalid label key {key!r} in selector {text!r}")
    return key


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse the ``labelSelector`` query parameter."""
    if not text or not text.strip():
        return LabelSelector()
    requirements = []
    for raw in _split_clauses(text):
        clause = raw.strip()
        if not clause:
            raise SelectorError(f"empty requirement in selector {text!r}")
        set_match = _SET_CLAUSE.match(clause)
        if set_match:
            key, operator, values = set_match.groups()
            items = tuple(value.strip() for value in values.split(",") if value.strip())
            requirements.append(Requirement(_check_key(key, text), operator, items))
        elif clause.startswith("!"):
            requirements.append(Requirement(_check_key(clause[1:].strip(), text), "!exists"))
        elif "!=" in clause:
            key, value = clause.split("!=", 1)
            requirements.append(Requirement(_check_key(key.strip(), text), "!=", (value.strip(),)))
        elif "==" in clause:
            key, value = clause.split("==", 1)
            requirements.append(Requirement(_check_key(key.strip(), text), "=", (value.strip(),)))
        elif "=" in clause:
            key, value = clause.split("=", 1)
            requirements.append(Requirement(_check_key(key.strip(), text), "=", (value.strip(),)))
        else:
            requirements.append(Requirement(_check_key(clause, text), "exists"))
    return LabelSelector(tuple(requirements))


_EXPRESSION_OPERATORS = {
    "In": "in",
    "NotIn": "notin",
    "Exists": "exists",
    "DoesNotExist": "!exists",
}


def selector_from_spec(spec: Mapping[str, Any] | None) -> LabelSelector:
    """Convert a structured ``metav1.LabelSelector``; ``None`` or ``{}`` matches everything."""
    if not spec:
        return LabelSelector()
    requirements = [
        Requirement(key, "=", (str(value),))
        for key, value in (spec.get("matchLabels") or {}).items()
    ]
    for expression in spec.get("matchExpressions") or []:
        operator = _EXPRESSION_OPERATORS.get(expression.get("operator", ""))
        if operator is None:
            raise SelectorError(f"unknown matchExpressions operator {expression.get('operator')!r}")
        values = tuple(str(value) for value in expression.get("values") or ())
        requirements.append(Requirement(expression["key"], operator, values))
    return LabelSelector(tuple(requirements))


FieldGetter = Callable[[Mapping[str, Any]], str | None]


def _path_getter(path: str) -> FieldGetter:
    parts = path.split(".")

    def get(obj: Mapping[str, Any]) -> str | None:
        node: Any = obj
        for part in parts:
            if not isinstance(node, Mapping):
                return None
            node = node.get(part)
        return None if node is None else str(node)

    return get


def parse_field_selector(text: str | None) -> Callable[[Mapping[str, Any]], bool]:
    """Parse ``fieldSelector`` (``metadata.name=x,status.phase!=Running``) into a predicate.

    Every field path is accepted; the real API server supports only a few per kind
    (``metadata.name`` and ``metadata.namespace`` everywhere, some ``spec``/``status`` fields
    for pods), and the clients the product uses stay within those.
    """
    if not text or not text.strip():
        return lambda _obj: True
    checks: list[tuple[FieldGetter, bool, str]] = []
    for raw in text.split(","):
        clause = raw.strip()
        if "!=" in clause:
            field, value = clause.split("!=", 1)
            negate = True
        elif "==" in clause:
            field, value = clause.split("==", 1)
            negate = False
        elif "=" in clause:
            field, value = clause.split("=", 1)
            negate = False
        else:
            raise SelectorError(f"invalid field selector requirement {clause!r}")
        checks.append((_path_getter(field.strip()), negate, value.strip()))

    def matches(obj: Mapping[str, Any]) -> bool:
        for getter, negate, value in checks:
            actual = getter(obj) or ""
            if (actual == value) == negate:
                return False
        return True

    return matches
