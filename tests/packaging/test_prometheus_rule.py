"""The chart's PrometheusRule: valid for Prometheus and firing when it should.

Why: an alert with a typo in its metric name never fires, and no one notices until the
night the service dies. ``promtool`` (Debian's prometheus package, which `make test`
installs) checks the rules and runs them on synthetic series of the service's own metrics.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.packaging.chart import FULLNAME, NAMESPACE, one, render

pytest.importorskip("helm_python", reason="helm-python-sdk (dev extra) renders the chart")

PROMTOOL = shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool missing: apt-get install prometheus (make test does)"
)
SERIES = f'job="{FULLNAME}",namespace="{NAMESPACE}"'


@pytest.fixture
def rule_file(tmp_path):
    rule = one(render({"prometheusRule": {"enabled": True}}), "PrometheusRule")
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    return path


def test_promtool_accepts_the_rules(rule_file):
    done = subprocess.run(
        [PROMTOOL, "check", "rules", str(rule_file)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _alert(name, at, labels):
    return {"eval_time": at, "alertname": name, "exp_alerts": labels}


def test_alerts_fire_on_the_services_own_metrics(rule_file, tmp_path):
    rules = {
        r["alert"]: r for g in yaml.safe_load(rule_file.read_text())["groups"] for r in g["rules"]
    }

    def expect(name, labels=None, **annotations):
        rule = rules[name]
        return [{"exp_labels": {**rule["labels"], **(labels or {})},
                 "exp_annotations": {**rule["annotations"], **annotations}}]  # fmt: skip

    tests = {
        "rule_files": [str(rule_file)],
        "evaluation_interval": "1m",
        "tests": [
            {  # the service disappears after 10 minutes
                "interval": "1m",
                "input_series": [
                    {
                        "series": f"canary_analyzer_heartbeat_timestamp_seconds{{{SERIES}}}",
                        "values": "60+60x9",
                    },
                ],
                "alert_rule_test": [
                    _alert("CanaryAnalyzerAbsent", "12m", []),
                    _alert(
                        "CanaryAnalyzerAbsent",
                        "30m",
                        expect("CanaryAnalyzerAbsent", {"job": FULLNAME, "namespace": NAMESPACE}),
                    ),
                ],
            },
            {  # the process runs but its loop stopped at minute 5
                "interval": "1m",
                "input_series": [
                    {
                        "series": f'canary_analyzer_heartbeat_timestamp_seconds{{{SERIES},pod="a"}}',
                        "values": "0+60x5 300x30",
                    },
                ],
                "alert_rule_test": [
                    _alert("CanaryAnalyzerNoHeartbeat", "8m", []),
                    _alert(
                        "CanaryAnalyzerNoHeartbeat",
                        "15m",
                        expect(
                            "CanaryAnalyzerNoHeartbeat",
                            description=rules["CanaryAnalyzerNoHeartbeat"]["annotations"][
                                "description"
                            ].replace("{{ $value | humanizeDuration }}", "10m 0s"),
                        ),
                    ),
                ],
            },
            {  # an upgrade stays running for 7 hours; failed queries; a rollback
                "interval": "1m",
                "input_series": [
                    {
                        "series": f'canary_analyzer_upgrade_phase{{{SERIES},phase="running"}}',
                        "values": "1x430",
                    },
                    {
                        "series": f"canary_analyzer_prometheus_query_errors_total{{{SERIES}}}",
                        "values": "0x200 3x100",
                    },
                    {
                        "series": f"canary_analyzer_rollbacks_total{{{SERIES}}}",
                        "values": "0x300 1x100",
                    },
                ],
                "alert_rule_test": [
                    _alert("CanaryAnalyzerUpgradeStuck", "5h", []),
                    _alert(
                        "CanaryAnalyzerUpgradeStuck", "7h", expect("CanaryAnalyzerUpgradeStuck")
                    ),
                    _alert("CanaryAnalyzerQueryErrors", "3h10m", []),
                    _alert(
                        "CanaryAnalyzerQueryErrors", "3h30m", expect("CanaryAnalyzerQueryErrors")
                    ),
                    _alert("CanaryAnalyzerQueryErrors", "4h", []),
                    _alert("CanaryAnalyzerRolledBack", "4h50m", []),
                    _alert("CanaryAnalyzerRolledBack", "5h10m", expect("CanaryAnalyzerRolledBack")),
                ],
            },
        ],
    }
    path = tmp_path / "tests.yaml"
    path.write_text(yaml.safe_dump(tests, sort_keys=False))
    done = subprocess.run(
        [PROMTOOL, "test", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
