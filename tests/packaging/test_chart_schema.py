"""The chart's ``values.schema.json``: generated from the settings, enforced by Helm itself.

``helm lint`` (Helm v4's Go SDK through helm-python-sdk) fails on a value of the wrong type,
a misspelt key or a list written as a string, naming the key; it passes on the documented
values. The README's values table and the schema are generated (``make chart``) and the
committed files equal the generator's output. NOTES.txt shows ``canary-analyzer status``
and warns when nobody would be paged; the PrometheusRule's alerts carry ``runbook_url``
(to their section of docs/oncall.md) and the cluster and static labels.
"""

from __future__ import annotations

import re

import pytest

from analyzer.chart_schema import readme, schema_text
from tests.packaging.chart import CHART, NAMESPACE, REPO, one, render, render_files

DOCUMENTED = {
    # docs/install.md's `helm install` example
    "install-example": {
        "config": {
            "prometheus": {"url": "http://prometheus-operated.monitoring.svc:9090"},
            "notifications": {"alertmanager_url": "http://alertmanager.monitoring.svc:9093"},
            "service": {"window_cron": "0 1 * * *", "timezone": "Europe/Berlin"},
        },
        "controlToken": {"existingSecret": "canary-analyzer-token"},
    },
    "everything": {
        "serviceMonitor": {"enabled": True},
        "prometheusRule": {"enabled": True, "alertLabels": {"team": "mesh"}},
        "controlToken": {"value": "s3cret"},
        "replicaCount": 2,
        "resources": {"limits": {"cpu": 2, "memory": "2Gi", "ephemeral-storage": "1Gi"}},
        "config": {
            "upgrade": {"waves": [1, 3], "style": "namespace-label"},
            "rules": {"night_budget": 0.05},
            "windows": {"after": "1h30m"},
            "notifications": {"cluster": "eu-1", "labels": {"tier": "platform"}},
        },
    },
}

BAD = [
    ({"replicaCount": "two"}, "/replicaCount", "want integer"),
    ({"config": {"prometheus": {"urll": "http://x"}}}, "/config/prometheus", "'urll' not allowed"),
    ({"config": {"upgrade": {"waves": "1,2,4"}}}, "/config/upgrade/waves", "want array"),
    ({"config": {"windows": {"after": "10"}}}, "/config/windows/after", "does not match"),
    ({"config": {"upgrade": {"style": "labels"}}}, "/config/upgrade/style", "must be one of"),
    ({"config": {"rules": {"night_budget": 5}}}, "/config/rules/night_budget", ""),
    ({"config": {"service": {"lissten": ":9"}}}, "/config/service", "'lissten' not allowed"),
    ({"imagee": {"tag": "x"}}, "", "'imagee' not allowed"),
]


def lint(values: dict) -> list[str]:
    import helm_python

    report = helm_python.lint(str(CHART), values=values, strict=True, namespace=NAMESPACE)
    return [m["error"] for m in report["messages"] if m["severity"] >= 2]


def test_committed_schema_is_the_generated_one():
    assert (CHART / "values.schema.json").read_text() == schema_text(), (
        "settings or values changed: run `make chart` and commit"
    )


def test_readme_values_table_is_the_generated_one():
    current = (CHART / "README.md").read_text()
    assert current == readme(current), "values changed: run `make chart` and commit"
    assert "| `config.upgrade.waves` | `[1, 2, 4]` |" in current


@pytest.mark.parametrize("values", [{}, *DOCUMENTED.values()], ids=["defaults", *DOCUMENTED])
def test_helm_lint_passes_on_the_documented_values(values):
    assert lint(values) == []


@pytest.mark.parametrize(("values", "where", "said"), BAD, ids=[w or s for _, w, s in BAD])
def test_helm_lint_fails_naming_the_bad_key(values, where, said):
    errors = "\n".join(lint(values))
    assert f"at '{where}'" in errors and said in errors, errors


def test_notes_show_status_and_warn_when_nobody_is_paged():
    notes = render_files()["canary-analyzer/templates/NOTES.txt"]
    assert "-- canary-analyzer status" in notes
    assert "WARNING: no alert receiver is configured: nobody will be paged" in notes
    paged = render_files({"config": {"notifications": {"webhook_url": "http://hook"}}})
    assert "nobody will be paged" not in paged["canary-analyzer/templates/NOTES.txt"]


def test_prometheus_rule_alerts_carry_runbook_cluster_and_static_labels():
    rule = one(render({
        "prometheusRule": {"enabled": True, "alertLabels": {"team": "mesh"}},
        "config": {"notifications": {"cluster": "eu-1", "labels": {"tier": "platform"},
                                     "runbook_base_url": "https://git.example/oncall.md"}},
    }), "PrometheusRule")  # fmt: skip
    alerts = [r for group in rule["spec"]["groups"] for r in group["rules"] if "alert" in r]
    assert alerts
    for alert in alerts:
        assert alert["labels"]["cluster"] == "eu-1"
        assert alert["labels"]["tier"] == "platform" and alert["labels"]["team"] == "mesh"
        assert alert["annotations"]["runbook_url"] == (
            f"https://git.example/oncall.md#{alert['alert'].lower()}"
        )


def test_every_prometheus_rule_alert_has_its_section_in_the_runbook():
    rule = one(render({"prometheusRule": {"enabled": True}}), "PrometheusRule")
    headings = {
        line.lstrip("#").strip().lower()
        for line in (REPO / "docs" / "oncall.md").read_text().splitlines()
        if re.match(r"^#{2,4} ", line)
    }
    for group in rule["spec"]["groups"]:
        for alert in group["rules"]:
            assert alert["annotations"]["runbook_url"] == f"docs/oncall.md#{alert['alert'].lower()}"
            assert alert["alert"].lower() in headings, f"docs/oncall.md lacks ### {alert['alert']}"
