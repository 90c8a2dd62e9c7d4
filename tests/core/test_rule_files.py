"""Rule files: valid files load; every kind of mistake is reported with file and line."""

from __future__ import annotations

import textwrap

import pytest

from analyzer.cli import main
from analyzer.core.rules import RuleFileError, build_rule_set, parse_rule_text

VALID = textwrap.dedent(
    """\
    apiVersion: canary-analyzer/v1
    kind: Rule
    metadata:
      name: error-rate
    spec:
      type: ratio
      numerator: |
        sum by ({{ namespace_label }}) (increase(x_total{code=~"5..",
          {{ namespace_label }}=~"{{ namespaces }}"}[{{ step }}]))
      denominator: sum by ({{ namespace_label }}) (increase(x_total[{{ step }}]))
      judge:
        allowedChange: {absolute: 0.005}
        minEvidence: {requests: 100}
    """
)


def problems_of(text: str, source: str = "r.yaml") -> list[str]:
    _, problems = parse_rule_text(text, source)
    return [str(p) for p in problems]


def test_valid_rule_loads_with_its_line():
    rules, problems = parse_rule_text(VALID, "r.yaml")
    assert problems == []
    assert rules[0].rule.name == "error-rate" and rules[0].line == 4
    assert rules[0].rule.spec.judge.allowed_change.absolute == 0.005


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        (
            VALID.replace("  judge:\n", "  judge:\n    maxIncrese: 3\n"),
            "r.yaml:12: rule 'error-rate': unknown field 'spec.judge.maxIncrese'",
        ),
        (
            VALID.replace("  denominator: sum", "  denominatr: sum"),
            "r.yaml:10: rule 'error-rate': unknown field 'spec.denominatr' (did you mean "
            "'denominator'?)",
        ),
        (
            VALID.replace(
                "    minEvidence: {requests: 100}\n", "    minEvidence: {requests: many}\n"
            ),
            "r.yaml:13: rule 'error-rate': field 'spec.judge.minEvidence.requests' must be a "
            "whole number (got 'many')",
        ),
        (
            VALID.replace("{{ step }}]))\n", "{{ stepp }}]))\n", 1),
            "r.yaml:9: rule 'error-rate': field 'spec.numerator': unknown placeholder {{ stepp }}",
        ),
        (
            VALID.replace("type: ratio", "type: ratios"),
            "r.yaml:6: rule 'error-rate': field 'spec.type' must be one of ratio, histogram, "
            "volume or value (got 'ratios')",
        ),
        (
            VALID.replace("name: error-rate", "name: Error_Rate"),
            "r.yaml:4: rule 'Error_Rate': field 'metadata.name' must be lowercase letters",
        ),
        (
            VALID.replace("apiVersion: canary-analyzer/v1", "apiVersion: v2"),
            "r.yaml:1: rule 'error-rate': field 'apiVersion' must be one of canary-analyzer/v1",
        ),
    ],
)
def test_each_problem_names_file_line_rule_and_field_in_the_products_words(broken, expected):
    found = problems_of(broken)
    assert any(p.startswith(expected) for p in found), found


def test_missing_query_is_named():
    text = "\n".join(line for line in VALID.splitlines() if "denominator" not in line) + "\n"
    found = problems_of(text)
    assert found and "missing query" in found[0] and "spec.denominator" in found[0]


def test_bad_yaml_names_the_line():
    found = problems_of("apiVersion: canary-analyzer/v1\nkind: Rule\nmetadata: [unclosed\n")
    assert found and found[0].startswith("r.yaml:") and "invalid YAML" in found[0]


def test_duplicate_names_across_files_point_at_both():
    with pytest.raises(RuleFileError) as caught:
        build_rule_set([("a.yaml", VALID), ("b.yaml", VALID)])
    (problem,) = caught.value.problems
    assert str(problem) == "b.yaml:4: duplicate rule name 'error-rate' (first defined at a.yaml:4)"


def test_histogram_without_quantile_is_refused():
    text = textwrap.dedent(
        """\
        apiVersion: canary-analyzer/v1
        kind: Rule
        metadata: {name: p99}
        spec:
          type: histogram
          buckets: sum by (le) (increase(h_bucket[{{ step }}]))
        """
    )
    assert any("quantile" in p for p in problems_of(text))


def test_shipped_rules_lint_clean(capsys):
    assert main(["rules", "lint", "rules/"]) == 0
    assert "error-rate" in capsys.readouterr().out


def test_lint_exits_2_with_file_and_line(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(VALID.replace("type: ratio", "type: ratio\n  bogus: 1"))
    assert main(["rules", "lint", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:7: rule 'error-rate': unknown field 'spec.bogus'" in err


def test_lint_of_missing_path_exits_2(tmp_path, capsys):
    assert main(["rules", "lint", str(tmp_path / "nope")]) == 2
    assert "no such file or directory" in capsys.readouterr().err


def test_lint_warns_when_a_range_window_is_shorter_than_four_scrapes(monkeypatch, capsys):
    # the shipped rules use [{{ step }}]: at a 1m step that is 4 scrapes of 15s but 2 of 30s;
    # the defaults (15s scrapes, 1m step) fit them without a warning
    monkeypatch.delenv("CANARY_RULES__SCRAPE_INTERVAL", raising=False)
    monkeypatch.delenv("CANARY_WINDOWS__STEP", raising=False)
    assert main(["rules", "lint", "rules/"]) == 0
    assert "warning" not in capsys.readouterr().err
    monkeypatch.setenv("CANARY_RULES__SCRAPE_INTERVAL", "15s")
    assert main(["rules", "lint", "rules/"]) == 0
    assert "warning" not in capsys.readouterr().err
    monkeypatch.setenv("CANARY_RULES__SCRAPE_INTERVAL", "30s")
    assert main(["rules", "lint", "rules/"]) == 0  # a warning, not a problem
    err = capsys.readouterr().err
    assert "rules/client-error-rate.yaml:" in err
    assert "[{{ step }} = 1m], shorter than 4× the scrape interval 30s (2m)" in err
    monkeypatch.setenv("CANARY_WINDOWS__STEP", "2m")
    assert main(["rules", "lint", "rules/"]) == 0
    assert "warning" not in capsys.readouterr().err


def test_lint_judges_literal_windows_too(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CANARY_RULES__SCRAPE_INTERVAL", "60s")
    rule = tmp_path / "literal.yaml"
    rule.write_text(VALID.replace("[{{ step }}]", "[3m]", 1))
    assert main(["rules", "lint", str(rule)]) == 0
    err = capsys.readouterr().err
    assert "[3m], shorter than 4× the scrape interval 1m (4m)" in err


@pytest.mark.parametrize("value", ["estimate-beyond", "beyond-allowance"])
def test_lint_accepts_every_fail_when(tmp_path, capsys, value):
    good = tmp_path / "good.yaml"
    good.write_text(VALID.replace("minEvidence:", f"failWhen: {value}\n    minEvidence:"))
    assert main(["rules", "lint", str(good)]) == 0
    rules, problems = parse_rule_text(good.read_text(), str(good))
    assert not problems
    assert rules[0].rule.spec.judge.fail_when.value == value


def test_fail_when_defaults_to_estimate_beyond():
    rules, _ = parse_rule_text(VALID, "r.yaml")
    assert rules[0].rule.spec.judge.fail_when.value == "estimate-beyond"


def test_lint_rejects_an_unknown_fail_when(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(VALID.replace("minEvidence:", "failWhen: certain\n    minEvidence:"))
    assert main(["rules", "lint", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:" in err and "spec.judge.failWhen" in err


def test_no_message_speaks_the_validation_librarys_words():
    broken = VALID.replace("allowedChange: {absolute: 0.005}", "allowedChange: {absolute: -1}")
    broken = broken.replace("minEvidence: {requests: 100}", "minEvidence: {requests: 1.5}")
    found = problems_of(broken)
    assert found == [
        "r.yaml:12: rule 'error-rate': field 'spec.judge.allowedChange.absolute' must be at "
        "least 0 (got -1)",
        "r.yaml:13: rule 'error-rate': field 'spec.judge.minEvidence.requests' must be a whole "
        "number (got 1.5)",
    ]
    assert not any("Input should" in p or "pydantic" in p for p in found)
