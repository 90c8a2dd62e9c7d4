"""``rules lint`` beyond the format: the PromQL parses and keeps the namespace label (and
``le`` for histograms), and valid but suspicious settings are warnings (exit 0, or 2 with
``--strict``)."""

from __future__ import annotations

import textwrap

import promql_parser
import pytest

from analyzer.cli import main
from analyzer.core.rule_lint import keeps_label

RULE = textwrap.dedent(
    """\
    apiVersion: canary-analyzer/v1
    kind: Rule
    metadata:
      name: errors
    spec:
      type: ratio
      numerator: NUMERATOR
      denominator: sum by ({{ namespace_label }}) (increase(x_total[{{ step }}]))
      judge:
        allowedChange: {absolute: 0.005}
        minEvidence: {requests: 100}
    """
)
GOOD_NUMERATOR = 'sum by ({{ namespace_label }}) (increase(x_total{code=~"5.."}[{{ step }}]))'


# Binary operators follow Prometheus's promql/engine.go resultMetric: one-to-one "on (…)"
# keeps only the matched labels, "ignoring (…)" drops those; group_left/right keep the many
# side's labels, a label named in group_x(…) taken from the one side.
@pytest.mark.parametrize(
    ("query", "kept"),
    [
        ("sum by (ns) (rate(x[5m]))", True),
        ("sum by (pod) (rate(x[5m]))", False),
        ("sum(rate(x[5m]))", False),
        ("sum without (pod) (rate(x[5m]))", True),
        ("sum without (ns, pod) (rate(x[5m]))", False),
        ("rate(x[5m])", True),
        ("topk(3, x)", True),
        ("sum by (ns) (a) / sum by (ns) (b)", True),
        ("sum by (ns) (a) / on () group_left sum(b)", True),
        ("sum by (ns) (a) / on (ns) sum by (ns) (b)", True),
        ("sum by (ns, pod) (a) / on (pod) sum by (pod) (b)", False),
        ("sum(a) * on () group_right sum by (ns) (b)", True),
        ("sum by (pod) (a) * on (pod) group_left (ns) sum by (pod, ns) (b)", True),
        ("sum by (pod, ns) (a) * on (pod) group_left (ns) sum by (pod) (b)", False),
        ("sum by (ns, pod) (a) / ignoring (pod) sum by (ns) (b)", True),
        ("sum by (ns, pod) (a) / ignoring (ns) sum by (pod) (b)", False),
        ("sum by (ns) (a) or sum(b)", False),
        ("sum by (ns) (a) > 0", True),
        ("2 * sum by (ns) (a)", True),
        ("scalar(sum(b)) * sum by (ns) (a)", True),
        ("sum by (ns) (a) / (time() - 5)", True),
        ('label_replace(sum by (src) (x), "ns", "$1", "src", "(.*)")', True),
        ('label_replace(sum by (src) (x), "other", "$1", "src", "(.*)")', False),
        ("vector(1)", False),
        ("histogram_quantile(0.9, sum by (ns, le) (rate(h_bucket[5m])))", True),
        ("max_over_time(sum by (ns) (x)[30m:1m])", True),
    ],
)
def test_the_namespace_label_is_followed_through_the_tree(query, kept):
    assert keeps_label(promql_parser.parse(query), "ns") is kept


def _lint(tmp_path, text: str, *flags: str) -> int:
    rule = tmp_path / "rule.yaml"
    rule.write_text(text)
    return main(["rules", "lint", *flags, str(rule)])


def test_a_query_that_drops_the_namespace_label_is_an_error_naming_rule_and_field(
    tmp_path, capsys
):
    numerator = 'sum(increase(x_total{code=~"5.."}[{{ step }}]))'
    assert _lint(tmp_path, RULE.replace("NUMERATOR", numerator)) == 2
    err = capsys.readouterr().err
    assert "rule.yaml:4: rule 'errors': field 'spec.numerator' drops the label " in err
    assert "'destination_workload_namespace'" in err
    assert "1 problem(s) found" in err


def test_a_query_that_is_not_promql_is_an_error(tmp_path, capsys):
    broken = "sum by ({{ namespace_label }}) (increase(x_total[{{ step }}])"
    assert _lint(tmp_path, RULE.replace("NUMERATOR", broken)) == 2
    err = capsys.readouterr().err
    assert "rule 'errors': field 'spec.numerator' is not valid PromQL" in err


def test_the_configured_namespace_label_is_the_one_checked(tmp_path, monkeypatch, capsys):
    numerator = 'sum by (destination_workload_namespace) (increase(x_total[{{ step }}]))'
    text = RULE.replace("NUMERATOR", numerator)
    assert _lint(tmp_path, text) == 0
    monkeypatch.setenv("CANARY_RULES__NAMESPACE_LABEL", "namespace")
    assert _lint(tmp_path, text) == 2
    assert "field 'spec.numerator' drops the label 'namespace'" in capsys.readouterr().err


def test_a_histogram_must_keep_le(tmp_path, capsys):
    text = textwrap.dedent(
        """\
        apiVersion: canary-analyzer/v1
        kind: Rule
        metadata: {name: p99}
        spec:
          type: histogram
          buckets: sum by ({{ namespace_label }}) (increase(h_bucket[{{ step }}]))
          judge: {quantile: 0.99, allowedChange: {relative: 0.2}}
        """
    )
    assert _lint(tmp_path, text) == 2
    assert "field 'spec.buckets' drops the label 'le'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("judge", "warning"),
    [
        ("judge: {minEvidence: {requests: 100}}", "no judge.allowedChange"),
        (
            "judge: {allowedChange: {absolute: 0.005}, confidence: 0.8, passConfidence: 0.7}",
            "judge.confidence 0.8 is below 0.9",
        ),
        (
            "judge: {allowedChange: {absolute: 0.005}, confidence: 0.95, passConfidence: 0.97}",
            "judge.passConfidence 0.97 is above judge.confidence 0.95",
        ),
    ],
)
def test_suspicious_settings_warn_and_fail_only_with_strict(tmp_path, capsys, judge, warning):
    text = RULE.replace("NUMERATOR", GOOD_NUMERATOR)
    text = text[: text.index("  judge:")] + f"  {judge}\n"
    assert _lint(tmp_path, text) == 0
    captured = capsys.readouterr()
    assert f"rule.yaml:4: warning: rule 'errors': {warning}" in captured.err
    assert "1 warning(s)" in captured.out
    assert _lint(tmp_path, text, "--strict") == 2
    assert "(--strict: warnings count)" in capsys.readouterr().err


def test_the_shipped_rules_have_no_finding_even_when_strict(capsys):
    assert main(["rules", "lint", "--strict", "rules/"]) == 0
    assert capsys.readouterr().err == ""
