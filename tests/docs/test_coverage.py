"""The guides cover what users meet: every alert the product sends has its section in the
on-call runbook, every HTTP endpoint is in the operator's guide, every example scenario is
named for rule authors, and the runnable-block harness really fails on a broken block."""

from __future__ import annotations

import os
import re

import pytest

from analyzer.core.alerts import AlertName, Severity
from analyzer.views.http_api import create_app
from tests.docs.blocks import ROOT, Block, parse_blocks
from tests.docs.lab import BIN, run_block

ONCALL = ROOT / "docs" / "oncall.md"
OPERATOR = ROOT / "docs" / "operator.md"


@pytest.mark.parametrize("alert", list(AlertName), ids=lambda a: a.value)
def test_every_alert_has_a_runbook_section(alert: AlertName) -> None:
    text = ONCALL.read_text()
    heading = re.search(rf"^### {alert.value}\n(?P<body>.*?)(?=^#)", text, re.M | re.S)
    assert heading, f"docs/oncall.md has no '### {alert.value}' section"
    body = heading.group("body")
    severities = {s.value for s in Severity}
    named = re.search(r"\*\*(?:Severity )?(\w+)\.?\*\*", body)
    assert named and named.group(1).lower() in severities, (
        f"{alert.value}: the section must open with its severity in bold"
    )


def test_alert_table_lists_each_alert_once() -> None:
    rows = re.findall(r"^\| \[(CanaryAnalyzer\w+)\]", ONCALL.read_text(), re.M)
    assert sorted(rows) == sorted(a.value for a in AlertName)


def test_every_endpoint_is_in_the_operator_guide() -> None:
    class _Nothing:
        def __getattr__(self, name):
            raise AssertionError(name)

    app = create_app(_Nothing(), _Nothing(), _Nothing())
    paths = {route.path for route in app.routes if route.path.startswith("/api/")}
    text = OPERATOR.read_text()
    missing = sorted(p for p in paths if p not in text)
    assert not missing, f"docs/operator.md does not mention {missing}"


def test_every_scenario_is_named_for_rule_authors() -> None:
    text = (ROOT / "docs" / "rules.md").read_text()
    for scenario in sorted((ROOT / "scenarios").glob("*.yaml")):
        assert f"`{scenario.stem}`" in text, f"docs/rules.md does not name {scenario.stem}"


def test_harness_fails_a_block_whose_exit_code_differs(tmp_path) -> None:
    (tmp_path / "doc.md").write_text(
        "```sh runnable\ncanary-analyzer rules lint no-such-directory/\n```\n"
    )
    [block] = parse_blocks(tmp_path / "doc.md")
    assert isinstance(block, Block) and block.runnable and block.expected_exit == 0
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = run_block(block, env, tmp_path)
    assert result.code == 2, result.stderr
