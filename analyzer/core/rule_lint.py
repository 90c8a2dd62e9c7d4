"""What ``rules lint`` checks beyond a valid file: the queries and the judging settings.

Errors: a query that is not PromQL, or whose result drops the namespace label (the judge
splits one answer per namespace by that label, so such a rule sees "no data" for every
namespace, every night), or a histogram query that drops ``le``. The PromQL is parsed with
``promql-parser`` (the Rust parser of GreptimeDB, a maintained port of Prometheus's
grammar) after the placeholders are rendered, and the result's labels are followed through
the tree as Prometheus computes them: aggregations keep their ``by`` labels (or all but
their ``without`` labels), binary operators the labels of their "many" side.

Warnings: settings that are valid but probably not what the author meant (no allowance,
a confidence below 0.9, a pass confidence above the confidence). Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

import promql_parser

from analyzer.core.rules import LoadedRule, RuleSet, RuleType
from analyzer.core.templates import TemplateError, render_query

#: Below this confidence a FAIL (a rollback) is called on weak evidence.
LOW_CONFIDENCE = 0.9

# aggregations that select series and keep each one's labels whatever their grouping
_SELECTING = {"topk", "bottomk", "limitk", "limit_ratio"}
# functions whose result has no labels at all
_LABELLESS = {"vector", "time", "scalar", "absent", "absent_over_time", "pi"}


@dataclass(frozen=True)
class LintFinding:
    """One finding of ``rules lint``: an error (the rule cannot work) or a warning."""

    source: str
    line: int
    rule: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        level = "warning: " if self.warning else ""
        return f"{self.source}:{self.line}: {level}rule {self.rule!r}: {self.message}"


def keeps_label(expr: object, label: str) -> bool:
    """Whether every series ``expr`` returns still carries ``label`` (when its inputs do)."""
    kind = type(expr).__name__
    if kind in ("VectorSelector", "MatrixSelector"):
        return True
    if kind in ("NumberLiteral", "StringLiteral"):
        return False
    if kind in ("ParenExpr", "UnaryExpr", "SubqueryExpr"):
        return keeps_label(expr.expr, label)
    if kind == "AggregateExpr":
        inner = keeps_label(expr.expr, label)
        if str(expr.op) in _SELECTING:
            return inner
        modifier = expr.modifier
        if modifier is None:
            return False
        if modifier.type == promql_parser.AggModifierType.By:
            return label in modifier.labels
        return inner and label not in modifier.labels
    if kind == "Call":
        name = expr.func.name
        if name in _LABELLESS:
            return False
        if name in ("label_replace", "label_join") and len(expr.args) > 1:
            target = expr.args[1]
            if type(target).__name__ == "StringLiteral" and target.val == label:
                return True
        vectors = [
            a for a in expr.args if type(a).__name__ not in ("StringLiteral", "NumberLiteral")
        ]
        return bool(vectors) and keeps_label(vectors[0], label)
    if kind == "BinaryExpr":
        return _binary_keeps(expr, label)
    return False


def _is_scalar(expr: object) -> bool:
    """A number, ``scalar(…)``, ``time()``, or one of those in parentheses or negated."""
    kind = type(expr).__name__
    if kind == "NumberLiteral":
        return True
    if kind in ("ParenExpr", "UnaryExpr"):
        return _is_scalar(expr.expr)
    if kind == "Call":
        return expr.func.return_type == promql_parser.ValueType.Scalar
    if kind == "BinaryExpr":
        return _is_scalar(expr.lhs) and _is_scalar(expr.rhs)
    return False


def _binary_keeps(expr: object, label: str) -> bool:
    lhs, rhs = expr.lhs, expr.rhs
    if _is_scalar(lhs):
        return keeps_label(rhs, label)
    if _is_scalar(rhs):
        return keeps_label(lhs, label)
    op = str(expr.op)
    modifier = expr.modifier
    if op == "or":
        return keeps_label(lhs, label) and keeps_label(rhs, label)
    if op in ("and", "unless"):
        return keeps_label(lhs, label)
    card = modifier.card if modifier is not None else None
    many_to_one = promql_parser.VectorMatchCardinality.ManyToOne
    if card in (promql_parser.VectorMatchCardinality.OneToMany, many_to_one):
        many, one = (lhs, rhs) if card == many_to_one else (rhs, lhs)
        # the "many" side's labels; a label named in group_x(…) comes from the "one" side
        return keeps_label(one if label in modifier.group_labels else many, label)
    matching = modifier.matching if modifier is not None else None
    if matching is not None and matching.type == promql_parser.LabelModifierType.Include:
        # one-to-one "on (…)": the result carries only the matched labels
        return label in matching.labels and keeps_label(lhs, label)
    if matching is not None and label in matching.labels:  # ignoring (…, label)
        return False
    return keeps_label(lhs, label)


def query_findings(loaded: LoadedRule, namespace_label: str, step: timedelta) -> list[LintFinding]:
    """Errors in one rule's queries: not PromQL, or the namespace label (or ``le``) lost."""
    findings = []
    spec = loaded.rule.spec
    for role, template in spec.queries().items():
        where = f"field 'spec.{role}'"
        try:
            rendered = render_query(
                template, namespace_label=namespace_label, namespaces=["example"], step=step
            )
            tree = promql_parser.parse(rendered)
        except (TemplateError, ValueError) as error:
            findings.append(_error(loaded, f"{where} is not valid PromQL: {error}"))
            continue
        needed = [namespace_label] + (["le"] if spec.type is RuleType.HISTOGRAM else [])
        for label in needed:
            if not keeps_label(tree, label):
                findings.append(
                    _error(
                        loaded,
                        f"{where} drops the label {label!r} from its "
                        f"result: group by it, e.g. sum by ({', '.join(needed)}) "
                        f"(…); the judge reads one series per namespace"
                        f"{' and bucket' if label == 'le' else ''} "
                        f"(query: {' '.join(rendered.split())})",
                    )
                )
    return findings


def setting_warnings(loaded: LoadedRule) -> list[LintFinding]:
    """Valid settings that are probably not what the author meant."""
    judge = loaded.rule.spec.judge
    found = []
    allowed = judge.allowed_change
    if allowed.absolute is None and allowed.relative is None:
        found.append(
            _warning(
                loaded,
                "no judge.allowedChange: any significant change fails, "
                "however small; say what change is tolerated",
            )
        )
    if judge.confidence < LOW_CONFIDENCE:
        found.append(
            _warning(
                loaded,
                f"judge.confidence {judge.confidence} is below "
                f"{LOW_CONFIDENCE}: more than {1 - judge.confidence:.0%} "
                "of healthy restarts may roll back on this rule alone",
            )
        )
    if judge.pass_confidence > judge.confidence:
        found.append(
            _warning(
                loaded,
                f"judge.passConfidence {judge.pass_confidence} is above "
                f"judge.confidence {judge.confidence}: a PASS needs more "
                "certainty than a rollback",
            )
        )
    return found


def lint_rules(
    rules: RuleSet | Iterable[LoadedRule], namespace_label: str, step: timedelta
) -> list[LintFinding]:
    """Every error and warning of every rule, in file order (errors of a rule first)."""
    loaded_rules = rules.rules if isinstance(rules, RuleSet) else tuple(rules)
    found: list[LintFinding] = []
    for loaded in loaded_rules:
        found.extend(query_findings(loaded, namespace_label, step))
        found.extend(setting_warnings(loaded))
    return found


def _error(loaded: LoadedRule, message: str) -> LintFinding:
    return LintFinding(loaded.source, loaded.line, loaded.rule.name, message)


def _warning(loaded: LoadedRule, message: str) -> LintFinding:
    return LintFinding(loaded.source, loaded.line, loaded.rule.name, message, warning=True)
