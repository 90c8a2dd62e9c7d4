"""Rule files: the format rule authors write, validated with pydantic, errors with lines.

A rule file holds one or more Kubernetes-style YAML documents::

    apiVersion: canary-analyzer/v1
    kind: Rule
    metadata: {name: error-rate, description: ...}
    spec: {type: ratio, numerator: ..., denominator: ..., judge: {...}}

Parsing takes text, not paths (reading files is the caller's I/O), and reports every
problem as ``RuleProblem(source, line, message)`` so ``rules lint`` can print
``file:line: message``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    model_validator,
)
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError

from analyzer.core.durations import Duration
from analyzer.core.quiet_policy import DEFAULT_QUIET_POLICY, QuietPolicy
from analyzer.core.templates import PLACEHOLDERS, placeholders_in
from analyzer.core.yaml_lines import line_of

API_VERSION = "canary-analyzer/v1"
RULE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class RuleType(StrEnum):
    """How a rule measures: what its query returns and which test judges it."""

    RATIO = "ratio"  # two counters: events / total, judged on counts
    HISTOGRAM = "histogram"  # latency buckets, judged on a quantile and tail counts
    VOLUME = "volume"  # one counter's total (request volume), judged as a Poisson rate
    VALUE = "value"  # any gauge-like series, judged by rank test (Mann-Whitney)


class Direction(StrEnum):
    """Which way of change is bad."""

    INCREASE = "increase"
    DECREASE = "decrease"
    BOTH = "both"


class FailWhen(StrEnum):
    """What a FAIL needs beyond the ceiling and floor checks (``judge.failWhen``)."""

    #: the change is significant against "no change" (net of controls) AND its point
    #: estimate is beyond the allowance: both confidence and a change beyond what is allowed
    ESTIMATE_BEYOND = "estimate-beyond"
    #: the change beyond the allowance is itself significant: fewer FAILs near the
    #: allowance, slower to FAIL, more INCONCLUSIVE
    BEYOND_ALLOWANCE = "beyond-allowance"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class AllowedChange(_Strict):
    """Change tolerated before a significant change counts as a regression. When both are
    given, a change is a regression only when it exceeds both (the larger one applies)."""

    absolute: float | None = Field(
        None, ge=0, description="In the metric's unit (ratio: 0.005 = 0.5 pp)."
    )
    relative: float | None = Field(
        None, ge=0, description="Share of the before value (0.5 = 50 %)."
    )


class MinEvidence(_Strict):
    """Below this much evidence in either window the rule is INCONCLUSIVE, never PASS."""

    requests: int = Field(0, ge=0, description="Requests (denominator / histogram count).")
    points: int = Field(0, ge=0, description="Data points per window (value rules).")


#: How a duration is written in a rule file (as in PromQL: ``30s``, ``10m``, ``1h30m``).
_DURATION_SCHEMA = {
    "type": "string",
    "pattern": r"^(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$",
    "examples": ["60m", "1h"],
}


class Judging(_Strict):
    """How a rule's before/after change is judged."""

    direction: Direction = Direction.INCREASE
    allowed_change: AllowedChange = Field(default_factory=AllowedChange, alias="allowedChange")
    ceiling: float | None = Field(None, description="After value above this fails outright.")
    floor: float | None = Field(None, description="After value below this fails outright.")
    min_evidence: MinEvidence = Field(default_factory=MinEvidence, alias="minEvidence")
    confidence: float = Field(0.99, gt=0.5, lt=1.0, description="Confidence to call a FAIL.")
    pass_confidence: float = Field(
        0.9,
        gt=0.5,
        lt=1.0,
        alias="passConfidence",
        description="Confidence that the change stays within the allowed change, to call PASS; "
        "less certainty is INCONCLUSIVE.",
    )
    quantile: float | None = Field(None, gt=0, lt=1, description="Histogram rules: the quantile.")
    use_controls: bool = Field(
        True,
        alias="useControls",
        description="Judge the change against namespaces not yet upgraded (difference in "
        "differences).",
    )
    before_window: Annotated[Duration, WithJsonSchema(_DURATION_SCHEMA)] | None = Field(
        None,
        alias="beforeWindow",
        description="This rule's own before-window (e.g. 60m), for the canary and its controls "
        "alike; absent: the windows.before setting. Longer before-windows hold more requests "
        "in a tail quantile's tail; extensions lengthen only the after-window.",
    )
    fail_when: FailWhen = Field(
        FailWhen.ESTIMATE_BEYOND,
        alias="failWhen",
        description="estimate-beyond: FAIL when the change is significant against no change "
        "and its estimate is beyond the allowance; beyond-allowance: FAIL only when the change "
        "beyond the allowance is itself significant (stricter, slower, more INCONCLUSIVE).",
    )

    @model_validator(mode="after")
    def _window_positive(self) -> Judging:
        if self.before_window is not None and self.before_window.total_seconds() <= 0:
            raise ValueError("spec.judge.beforeWindow must be longer than zero (e.g. 60m)")
        return self


class AbsentPolicy(StrEnum):
    """What a namespace with no series at all, before and after, means for a rule."""

    #: no data is not evidence of health: INCONCLUSIVE, which holds a critical rule's wave
    INCONCLUSIVE = "inconclusive"
    #: the namespace has none of what the rule measures (e.g. a namespace that makes no
    #: outbound calls, for a client-side rule): the rule does not decide for it
    SKIP = "skip"


class RuleSpec(_Strict):
    """What a rule measures (queries by type) and how to judge it."""

    type: RuleType
    critical: bool = True
    dry_run: bool = Field(False, alias="dryRun")
    when_absent: AbsentPolicy = Field(
        AbsentPolicy.INCONCLUSIVE,
        alias="whenAbsent",
        description="A namespace with no series in either window: inconclusive (default) or "
        "skip (the rule does not decide for it). Data in one window only is always "
        "inconclusive.",
    )
    numerator: str | None = None
    denominator: str | None = None
    buckets: str | None = None
    query: str | None = None
    unit: str = ""
    judge: Judging = Field(default_factory=Judging)

    @model_validator(mode="after")
    def _queries_fit_type(self) -> RuleSpec:
        needed = {
            RuleType.RATIO: ("numerator", "denominator"),
            RuleType.HISTOGRAM: ("buckets",),
            RuleType.VOLUME: ("query",),
            RuleType.VALUE: ("query",),
        }[self.type]
        for name in needed:
            if not getattr(self, name):
                raise ValueError(f"missing query: a {self.type.value} rule needs spec.{name}")
        for name in ("numerator", "denominator", "buckets", "query"):
            if getattr(self, name) and name not in needed:
                raise ValueError(f"spec.{name} does not belong to a {self.type.value} rule")
        if self.type is RuleType.HISTOGRAM and self.judge.quantile is None:
            raise ValueError("missing field: a histogram rule needs spec.judge.quantile")
        return self

    def queries(self) -> dict[str, str]:
        """The rule's query templates by role (e.g. numerator, denominator)."""
        names = ("numerator", "denominator", "buckets", "query")
        return {name: getattr(self, name) for name in names if getattr(self, name)}


class RuleMetadata(_Strict):
    name: Annotated[str, Field(pattern=RULE_NAME.pattern, max_length=63)]
    description: str = ""


class Rule(_Strict):
    """One rule document."""

    api_version: Literal["canary-analyzer/v1"] = Field(alias="apiVersion")
    kind: Literal["Rule"]
    metadata: RuleMetadata
    spec: RuleSpec
    #: how the rule judges a namespace too quiet for it alone (``core.quiet``)
    quiet: QuietPolicy = DEFAULT_QUIET_POLICY

    @property
    def name(self) -> str:
        return self.metadata.name


def longest_before_window(rules: Iterable[Rule], before: timedelta) -> timedelta:
    """How far before a restart any of ``rules`` reads: the longest of their own
    before-windows (``judge.beforeWindow``) and ``before`` (the ``windows.before`` setting).
    A namespace restarted within it is not a clean control for every rule."""
    return max((before, *(r.spec.judge.before_window for r in rules if r.spec.judge.before_window)))


def rule_file_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of one rule document, generated from the models: what
    ``rules schema`` prints and ``rules/rule-file.schema.json`` holds. Editors validate each
    YAML document of a rule file against it as the author types."""
    schema = Rule.model_json_schema(by_alias=True, mode="validation")
    needs = {
        RuleType.RATIO: ["numerator", "denominator"],
        RuleType.HISTOGRAM: ["buckets"],
        RuleType.VOLUME: ["query"],
        RuleType.VALUE: ["query"],
    }
    schema["$defs"]["RuleSpec"]["allOf"] = [
        {
            "if": {"properties": {"type": {"const": kind.value}}, "required": ["type"]},
            "then": {"required": fields},
        }
        for kind, fields in needs.items()
    ]
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "rule-file.schema.json",
        **schema,
        "title": "canary-analyzer rule",
        "description": "One rule document of a canary-analyzer rule file (docs/rules.md).",
    }


@dataclass(frozen=True)
class RuleProblem:
    """One problem found in a rule file, located for a person to fix."""

    source: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.message}"


class RuleFileError(ValueError):
    """Rule files with problems; ``problems`` lists each one with file and line."""

    def __init__(self, problems: Sequence[RuleProblem]):
        self.problems = tuple(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


@dataclass(frozen=True)
class LoadedRule:
    """A validated rule and where it was defined."""

    rule: Rule
    source: str
    line: int


@dataclass(frozen=True)
class RuleSet:
    """The rules in force: validated, uniquely named, in file order."""

    rules: tuple[LoadedRule, ...]

    def __iter__(self):
        return (loaded.rule for loaded in self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def names(self) -> list[str]:
        return [loaded.rule.name for loaded in self.rules]


def _field_names(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _model_at(path: Sequence[Any]) -> type[BaseModel] | None:
    """The model whose fields sit at ``path`` (``spec.judge`` → ``Judging``), if any."""
    model: type[BaseModel] = Rule
    for part in path:
        field = next(
            (info for name, info in model.model_fields.items() if part in (name, info.alias)),
            None,
        )
        inner = getattr(field, "annotation", None) if field else None
        if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
            return None
        model = inner
    return model


def _suggestion(path: Sequence[Any]) -> str:
    """`` (did you mean 'minEvidence'?)`` for a misspelt field, else nothing."""
    model = _model_at(path[:-1])
    if model is None or not path:
        return ""
    close = difflib.get_close_matches(str(path[-1]), _field_names(model), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _shown(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _describe(error: dict[str, Any], rule_name: str | None = None) -> str:
    """One validation error in the product's words: ``rule 'x': field 'y' …``."""
    path = [part for part in error["loc"] if not str(part).startswith("function")]
    location = ".".join(str(part) for part in path)
    kind = error["type"]
    context = error.get("ctx") or {}
    got = error.get("input")
    prefix = f"rule {rule_name!r}: " if rule_name else ""
    field = f"field {location!r}"
    if kind == "extra_forbidden":
        return f"{prefix}unknown field {location!r}{_suggestion(path)}"
    if kind == "missing":
        return f"{prefix}{field} is required"
    if kind in ("enum", "literal_error"):
        expected = str(context.get("expected", "")).replace("'", "")
        return f"{prefix}{field} must be one of {expected} (got {_shown(got)})"
    bounds = {
        "greater_than": "greater than {gt}",
        "greater_than_equal": "at least {ge}",
        "less_than": "less than {lt}",
        "less_than_equal": "at most {le}",
    }
    if kind in bounds:
        limits = {k: f"{v:g}" if isinstance(v, float) else v for k, v in context.items()}
        return f"{prefix}{field} must be {bounds[kind].format(**limits)} (got {_shown(got)})"
    kinds = {
        "float_parsing": "a number",
        "float_type": "a number",
        "int_parsing": "a whole number",
        "int_type": "a whole number",
        "int_from_float": "a whole number",
        "bool_parsing": "true or false",
        "bool_type": "true or false",
        "string_type": "text",
        "dict_type": "a mapping",
        "model_type": "a mapping",
        "model_attributes_type": "a mapping",
    }
    if kind in kinds:
        return f"{prefix}{field} must be {kinds[kind]} (got {_shown(got)})"
    if kind == "string_pattern_mismatch" and path[-1:] == ["name"]:
        return (
            f"{prefix}{field} must be lowercase letters, digits and '-', starting and ending "
            f"with a letter or digit (got {_shown(got)})"
        )
    if kind == "string_too_long":
        return f"{prefix}{field} must be at most {context.get('max_length')} characters"
    message = error["msg"].removeprefix("Value error, ")
    if kind == "value_error" or not location:
        return f"{prefix}{message}"  # our own validators name the fields themselves
    return f"{prefix}{field}: {message}"


def _placeholder_problems(
    source: str, document: CommentedMap, rule: Rule, document_line: int
) -> list[RuleProblem]:
    problems = []
    spec, spec_name = rule.spec, rule.name
    for role, template in spec.queries().items():
        key_line = line_of(document, ("spec", role), document_line)
        for offset, text in enumerate(template.splitlines() or [""]):
            for name in placeholders_in(text):
                if name not in PLACEHOLDERS:
                    known = ", ".join(sorted(PLACEHOLDERS))
                    problems.append(
                        RuleProblem(
                            source,
                            key_line + (offset + 1 if "\n" in template else 0),
                            f"rule {spec_name!r}: field 'spec.{role}': unknown placeholder "
                            f"{{{{ {name} }}}} (known: {known})",
                        )
                    )
    return problems


def parse_rule_text(text: str, source: str) -> tuple[list[LoadedRule], list[RuleProblem]]:
    """Parse and validate every document of one rule file. Returns rules and problems."""
    yaml = YAML(typ="rt")
    try:
        documents = list(yaml.load_all(text))
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        return [], [RuleProblem(source, line, f"invalid YAML: {error.problem or error}")]
    rules: list[LoadedRule] = []
    problems: list[RuleProblem] = []
    for document in documents:
        if document is None:
            continue
        if not isinstance(document, CommentedMap):
            line = document.lc.line + 1 if hasattr(document, "lc") else 1
            problems.append(RuleProblem(source, line, "a rule document must be a mapping"))
            continue
        document_line = document.lc.line + 1
        try:
            rule = Rule.model_validate(document)
        except ValidationError as error:
            metadata = document.get("metadata")
            name = metadata.get("name") if isinstance(metadata, dict) else None
            for item in error.errors():
                path = [p for p in item["loc"] if not str(p).startswith("function")]
                line = line_of(document, path, document_line)
                problems.append(
                    RuleProblem(source, line, _describe(item, name if isinstance(name, str) else None))
                )
            continue
        placeholder_problems = _placeholder_problems(source, document, rule, document_line)
        problems.extend(placeholder_problems)
        if not placeholder_problems:
            rules.append(LoadedRule(rule, source, line_of(document, ("metadata", "name"), 1)))
    return rules, problems


def build_rule_set(files: Iterable[tuple[str, str]]) -> RuleSet:
    """Validate ``(source, text)`` pairs into one rule set; raise ``RuleFileError`` listing
    every problem (including duplicate names across files)."""
    rules: list[LoadedRule] = []
    problems: list[RuleProblem] = []
    seen: dict[str, LoadedRule] = {}
    for source, text in files:
        parsed, found = parse_rule_text(text, source)
        problems.extend(found)
        for loaded in parsed:
            first = seen.get(loaded.rule.name)
            if first:
                problems.append(
                    RuleProblem(
                        loaded.source,
                        loaded.line,
                        f"duplicate rule name {loaded.rule.name!r} "
                        f"(first defined at {first.source}:{first.line})",
                    )
                )
                continue
            seen[loaded.rule.name] = loaded
            rules.append(loaded)
    if problems:
        raise RuleFileError(problems)
    if not rules:
        raise RuleFileError([RuleProblem("<rules>", 0, "no rules found")])
    return RuleSet(tuple(rules))
