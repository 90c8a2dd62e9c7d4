"""Unit tests for rules, in the spirit of ``promtool test rules``, judged without Prometheus.

A test file names rule files and holds tests; each test writes, inline, what every rule's
query answers for each namespace at each step, and the verdict it expects per namespace
(and, optionally, per rule)::

    rule_files: [../error-rate.yaml]
    interval: 1m                 # one value per step; the query step
    tests:
      - name: errors from 0.2 % to 4 % fail the canary
        restarted: [catalog]
        controls: [billing]
        input_series:
          - {rule: error-rate, input: denominator, namespace: catalog, values: '1000x21'}
          - {rule: error-rate, input: numerator, namespace: catalog, values: '2x9 _x2 40x9'}
        expect:
          catalog: {verdict: fail, rules: {error-rate: fail}}

The narrow, honest choice: an inline series is the **answer of the rule's query** (for the
shipped rules, the requests, errors or bucket counts per step — ``increase(…[{{ step }}])``),
not the raw counters Prometheus stores. No PromQL is evaluated here: a test checks how a
rule *judges* (allowance, direction, evidence, controls, thresholds), and ``rules lint``
checks its PromQL (parsed, namespace label kept). ``InlineSeries`` answers the rule's
rendered query with those series, so the test runs through the same analysis and judge as
``analyze``.

Values use promtool's expanding notation: ``a+bxn`` is ``a a+b … a+n·b`` (n+1 values),
``a-bxn`` counts down, ``axn`` repeats ``a`` n+1 times, ``_`` is a missing sample and
``_xn`` n missing samples, ``stale`` a missing one too. Value ``i`` (from 0) is the point at
``start + (i + 1) × interval``: the step ``(start + i·interval, start + (i+1)·interval]``.
The restart is at ``restart_at`` after the start (default: the before window's length), so
with the default 10m / 2m / 10m windows at 1m values 0–9 are the before window, 10–11 the
settle and 12–21 the after window. Pure: text in, models and series out.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError

from analyzer.core.durations import DurationError, parse_duration
from analyzer.core.observations import ROLE_LABEL, rule_query
from analyzer.core.ports import MetricsQueryRejectedError, Series
from analyzer.core.rules import RuleProblem, RuleSet, RuleType, _describe
from analyzer.core.templates import TemplateError, validate_namespace
from analyzer.core.yaml_lines import line_of

#: Where an inline series starts: any fixed moment does; this one is easy to read.
SERIES_START = datetime(2000, 1, 1, tzinfo=UTC)

_TERM = re.compile(
    r"^(?P<start>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
    r"(?:(?P<sign>[-+])(?P<delta>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?))?"
    r"x(?P<times>\d+)$"
)
_MISSING = re.compile(r"^_(?:x(?P<times>\d+))?$")

Outcome = Literal["pass", "fail", "inconclusive", "error"]
Input = Literal["numerator", "denominator", "buckets", "query"]


class SeriesNotationError(ValueError):
    """A ``values`` string that is not promtool's expanding notation."""


def expand_values(text: str) -> list[float | None]:
    """promtool's expanding notation into values (``None`` = no sample)."""
    values: list[float | None] = []
    for term in text.split():
        missing = _MISSING.match(term)
        if missing:
            values.extend([None] * int(missing.group("times") or 1))
            continue
        if term == "stale":
            values.append(None)
            continue
        expanding = _TERM.match(term)
        if expanding:
            start = float(expanding.group("start"))
            delta = float(expanding.group("delta") or 0)
            if expanding.group("sign") == "-":
                delta = -delta
            values.extend(start + k * delta for k in range(int(expanding.group("times")) + 1))
            continue
        try:
            values.append(float(term))
        except ValueError:
            raise SeriesNotationError(
                f"{term!r} is not a value: use a number, a+bxn, a-bxn, axn, _, _xn or stale"
            ) from None
    if not values:
        raise SeriesNotationError("no values")
    return values


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: object) -> timedelta:
    try:
        return parse_duration(value)  # type: ignore[arg-type]
    except DurationError as error:
        raise ValueError(str(error)) from None


class InputSeries(_Strict):
    """What one rule's query answers for one namespace (and bucket), step by step."""

    rule: str
    input: Input
    namespace: str
    le: str | None = Field(
        None, description="buckets: the bucket's upper bound, e.g. '250', '+Inf'"
    )
    values: str

    @field_validator("values")
    @classmethod
    def _notation(cls, value: str) -> str:
        try:
            expand_values(value)
        except SeriesNotationError as error:
            raise ValueError(str(error)) from None
        return value


class Expectation(_Strict):
    """The verdict expected for one namespace, and optionally for some of its rules."""

    verdict: Outcome
    rules: dict[str, Outcome] = Field(default_factory=dict)


class WindowLengths(_Strict):
    """The judged windows of every test in the file (defaults: the product's)."""

    before: timedelta = timedelta(minutes=10)
    settle: timedelta = timedelta(minutes=2)
    after: timedelta = timedelta(minutes=10)

    @field_validator("before", "settle", "after", mode="before")
    @classmethod
    def _lengths(cls, value: object) -> timedelta:
        return _duration(value)


class RuleTest(_Strict):
    """One test: which namespaces restarted, their controls, the series, the verdicts."""

    name: str
    restarted: list[str] = Field(min_length=1)
    controls: list[str] = Field(default_factory=list)
    restart_at: timedelta | None = None
    input_series: list[InputSeries] = Field(default_factory=list)
    expect: dict[str, Expectation] = Field(min_length=1)

    @field_validator("restart_at", mode="before")
    @classmethod
    def _restart(cls, value: object) -> timedelta | None:
        return None if value is None else _duration(value)


class RuleTestFile(_Strict):
    """A file of rule tests (``rules test FILE``)."""

    rule_files: list[str] = Field(min_length=1)
    interval: timedelta = timedelta(minutes=1)
    windows: WindowLengths = Field(default_factory=WindowLengths)
    tests: list[RuleTest] = Field(min_length=1)

    @field_validator("interval", mode="before")
    @classmethod
    def _interval(cls, value: object) -> timedelta:
        return _duration(value)


def parse_test_text(
    text: str, source: str
) -> tuple[RuleTestFile | None, list[RuleProblem], CommentedMap | None]:
    """Validate a test file's text: the model, every problem with its line, and the parsed
    YAML (for the lines of tests when they run)."""
    try:
        document = YAML(typ="rt").load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        return (
            None,
            [
                RuleProblem(
                    source, mark.line + 1 if mark else 1, f"invalid YAML: {error.problem or error}"
                )
            ],
            None,
        )
    if not isinstance(document, CommentedMap):
        return None, [RuleProblem(source, 1, "a rule test file must be a mapping")], None
    try:
        model = RuleTestFile.model_validate(document)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            path = [p for p in item["loc"] if not str(p).startswith("function")]
            line = line_of(document, path, 1) or 1
            problems.append(RuleProblem(source, line, _describe(item)))
        return None, problems, document
    return model, [], document


def line_of_test(document: CommentedMap | None, index: int) -> int:
    """Line of the ``index``-th test in the file (1 when unknown)."""
    if document is None:
        return 1
    return line_of(document, ("tests", index), 1) or 1


def check_test(test: RuleTest, rules: RuleSet) -> list[str]:
    """Problems of one test against the rules it names (unknown rule, wrong input, …)."""
    problems = []
    by_name = {rule.name: rule for rule in rules}
    everyone = set(test.restarted) | set(test.controls)
    for namespace in sorted(everyone):
        try:
            validate_namespace(namespace)
        except TemplateError as error:
            problems.append(str(error))
    for series in test.input_series:
        rule = by_name.get(series.rule)
        if rule is None:
            problems.append(
                f"input series for unknown rule {series.rule!r} "
                f"(rules: {', '.join(sorted(by_name))})"
            )
            continue
        inputs = rule.spec.queries()
        if series.input not in inputs:
            problems.append(
                f"rule {series.rule!r} has no input {series.input!r} "
                f"(a {rule.spec.type.value} rule has {', '.join(inputs)})"
            )
        if (series.le is None) != (series.input != "buckets"):
            problems.append(f"rule {series.rule!r}: 'le' goes with buckets series, and only there")
        if series.namespace not in everyone:
            problems.append(
                f"input series for namespace {series.namespace!r}, which is neither "
                "restarted nor a control"
            )
    for namespace, expected in test.expect.items():
        if namespace not in test.restarted:
            problems.append(f"expect: {namespace!r} is not a restarted namespace")
        for name in expected.rules:
            if name not in by_name:
                problems.append(f"expect: {namespace}: unknown rule {name!r}")
    return problems


class InlineSeries:
    """A ``MetricsSource`` that answers each rule's rendered query with a test's inline
    series, cut to the window asked — no PromQL is evaluated."""

    def __init__(self, answers: dict[str, list[Series]]):
        self._answers = answers

    def query_range(
        self, query: str, start: datetime, end: datetime, step: timedelta
    ) -> list[Series]:
        if query not in self._answers:
            raise MetricsQueryRejectedError("no inline series answer this query")
        low, high = start.timestamp(), end.timestamp()
        cut = []
        for series in self._answers[query]:
            points = tuple((t, v) for t, v in series.points if low <= t <= high)
            if points:
                cut.append(Series(series.labels, points))
        return cut


def inline_source(
    test: RuleTest, rules: RuleSet, namespace_label: str, interval: timedelta
) -> InlineSeries:
    """The source answering every rule of ``rules`` with ``test``'s series."""
    everyone = sorted(set(test.restarted) | set(test.controls))
    grouped: dict[str, list[InputSeries]] = defaultdict(list)
    for series in test.input_series:
        grouped[series.rule].append(series)
    answers: dict[str, list[Series]] = {}
    for rule in rules:
        items = []
        for series in grouped.get(rule.name, []):
            labels = {namespace_label: series.namespace}
            if rule.spec.type is RuleType.RATIO:
                labels[ROLE_LABEL] = series.input
            if series.le is not None:
                labels["le"] = series.le
            points = tuple(
                ((SERIES_START + (i + 1) * interval).timestamp(), value)
                for i, value in enumerate(expand_values(series.values))
                if value is not None and not math.isnan(value)
            )
            items.append(Series(labels, points))
        answers[rule_query(rule, namespace_label, everyone, interval)] = items
    return InlineSeries(answers)


def restart_time(test: RuleTest, windows: WindowLengths) -> datetime:
    return SERIES_START + (test.restart_at if test.restart_at is not None else windows.before)


def expectation_diff(
    expected: dict[str, Expectation], got: dict[str, tuple[str, str, dict[str, tuple[str, str]]]]
) -> list[str]:
    """``-`` expected / ``+`` got lines for every namespace or rule whose verdict differs.
    ``got``: namespace → (verdict, reason, {rule: (verdict, reason)})."""
    lines: list[str] = []
    for namespace, expectation in expected.items():
        verdict, reason, rule_verdicts = got[namespace]
        if verdict != expectation.verdict:
            lines += [
                f"-   {namespace}: {expectation.verdict}",
                f"+   {namespace}: {verdict} — {reason}",
            ]
        for rule, wanted in expectation.rules.items():
            actual, why = rule_verdicts.get(rule, ("missing", "the rule was not judged"))
            if actual != wanted:
                lines += [
                    f"-   {namespace} {rule}: {wanted}",
                    f"+   {namespace} {rule}: {actual} — {why}",
                ]
    return lines
