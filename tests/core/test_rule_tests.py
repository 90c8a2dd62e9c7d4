"""``rules test``: rule unit tests on inline series, without Prometheus.

The shipped example passes; changing one expected verdict fails it with a diff and exit 1;
a broken test file is exit 2 naming file, line and field."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from analyzer.cli import main
from analyzer.core.rule_tests import SeriesNotationError, expand_values

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "rules" / "tests" / "shipped-rules.test.yaml"


@pytest.mark.parametrize(
    ("notation", "values"),
    [
        # promtool's own examples of its expanding notation
        ("-2+4x3", [-2, 2, 6, 10]),
        ("1-2x4", [1, -1, -3, -5, -7]),
        ("1x4", [1, 1, 1, 1, 1]),
        ("1 _x3 stale", [1, None, None, None, None]),
        ("0+10x3 _ 5", [0, 10, 20, 30, None, 5]),
        ("1e3x1 0.5", [1000, 1000, 0.5]),
    ],
)
def test_promtools_expanding_notation(notation, values):
    assert expand_values(notation) == values


@pytest.mark.parametrize("notation", ["", "1+x3", "ten", "1x"])
def test_anything_else_is_refused(notation):
    with pytest.raises(SeriesNotationError):
        expand_values(notation)


def test_the_shipped_example_passes(capsys):
    assert main(["rules", "test", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert out.count("ok   ") == 5 and out.rstrip().endswith("5 passed, 0 failed")


def _copy_example(tmp_path: Path) -> Path:
    for rule in ("error-rate", "request-volume", "latency-p99"):
        shutil.copy(REPO / "rules" / f"{rule}.yaml", tmp_path / f"{rule}.yaml")
    tests = tmp_path / "tests"
    tests.mkdir()
    copy = tests / EXAMPLE.name
    copy.write_text(EXAMPLE.read_text())
    return copy


def test_a_changed_expected_verdict_fails_with_a_diff_and_exit_1(tmp_path, capsys):
    copy = _copy_example(tmp_path)
    text = copy.read_text()
    steady = "catalog: {verdict: pass, rules: {error-rate: pass,"
    assert steady in text
    copy.write_text(
        text.replace(steady, "catalog: {verdict: fail, rules: {error-rate: fail,", 1)
    )
    assert main(["rules", "test", str(copy)]) == 1
    out = capsys.readouterr().out
    assert f"FAIL {copy}:25: a steady namespace passes every rule" in out
    assert "-   catalog: fail\n" in out
    assert "+   catalog: pass — all 3 deciding rules passed" in out
    assert "-   catalog error-rate: fail\n" in out
    assert "+   catalog error-rate: pass — within allowed change: 0.20% → 0.20%" in out
    assert out.rstrip().endswith("4 passed, 1 failed")


def test_a_changed_series_fails_the_expectation_too(tmp_path, capsys):
    copy = _copy_example(tmp_path)
    text = copy.read_text()
    copy.write_text(text.replace("values: '1000x9 _x2 500x9'", "values: '1000x9 _x2 900x9'"))
    assert main(["rules", "test", str(copy)]) == 1
    out = capsys.readouterr().out
    assert "+   catalog request-volume: pass" in out


def test_a_broken_test_file_names_file_line_and_field(tmp_path, capsys):
    copy = _copy_example(tmp_path)
    text = copy.read_text().replace("input: query, namespace: catalog, values: '1000x9 _x2",
                                    "input: qurey, namespace: catalog, values: '1000x9 _x2")
    copy.write_text(text)
    assert main(["rules", "test", str(copy)]) == 2
    err = capsys.readouterr().err
    assert f"{copy}:47: field 'tests.2.input_series.0.input' must be one of numerator" in err


@pytest.mark.parametrize(
    ("series", "message"),
    [
        ("{rule: errror-rate, input: query, namespace: a, values: '1x21'}",
         "input series for unknown rule 'errror-rate'"),
        ("{rule: error-rate, input: query, namespace: a, values: '1x21'}",
         "rule 'error-rate' has no input 'query' (a ratio rule has numerator, denominator)"),
        ("{rule: error-rate, input: numerator, namespace: b, values: '1x21'}",
         "input series for namespace 'b', which is neither restarted nor a control"),
        ("{rule: error-rate, input: numerator, namespace: a, values: '1+x21'}",
         "'1+x21' is not a value"),
    ],
)
def test_a_test_that_cannot_mean_anything_is_refused(tmp_path, capsys, series, message):
    shutil.copy(REPO / "rules" / "error-rate.yaml", tmp_path / "error-rate.yaml")
    test = tmp_path / "t.yaml"
    test.write_text(textwrap.dedent(f"""\
        rule_files: [error-rate.yaml]
        tests:
          - name: one
            restarted: [a]
            input_series:
              - {series}
            expect:
              a: {{verdict: pass}}
        """))
    assert main(["rules", "test", str(test)]) == 2
    assert message in capsys.readouterr().err
