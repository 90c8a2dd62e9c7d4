"""The rule files' JSON Schema: generated from the models, committed for editors, and
meaning what the loader means (shipped rules valid; a misspelt field or a missing query
invalid)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from analyzer.cli import main
from analyzer.core.rules import rule_file_schema

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "rules" / "rule-file.schema.json"


def test_the_committed_schema_is_the_generated_one(capsys):
    assert json.loads(COMMITTED.read_text()) == rule_file_schema(), (
        "rules/rule-file.schema.json is stale: canary-analyzer rules schema > "
        "rules/rule-file.schema.json"
    )
    assert main(["rules", "schema"]) == 0
    assert json.loads(capsys.readouterr().out) == rule_file_schema()


def _documents():
    for path in sorted((REPO / "rules").glob("*.yaml")):
        yield from (doc for doc in YAML(typ="safe").load_all(path.read_text()) if doc)


def test_editors_see_the_loaders_verdicts():
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(rule_file_schema())
    documents = list(_documents())
    assert len(documents) == 6
    for document in documents:
        assert not list(validator.iter_errors(document)), document["metadata"]["name"]
    misspelt = json.loads(json.dumps(documents[0]))
    misspelt["spec"]["judge"]["minEvidnce"] = misspelt["spec"]["judge"].pop("minEvidence")
    assert any("minEvidnce" in e.message for e in validator.iter_errors(misspelt))
    no_denominator = json.loads(json.dumps(documents[0]))
    assert no_denominator["spec"]["type"] == "ratio"
    del no_denominator["spec"]["denominator"]
    assert any("denominator" in e.message for e in validator.iter_errors(no_denominator))
