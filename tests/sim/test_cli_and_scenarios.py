"""``canary-analyzer sim`` in a subprocess, and the example scenario files."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from analyzer.sim.scenario import ScenarioError, load_scenario, packaged_scenarios, parse_scenario

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ["healthy", "bad-canary", "bad-second-wave", "night-drift", "never-ready",
            "mixed-workloads", "mixed-workloads-bad", "client-side-regression"]


def read_line(process: subprocess.Popen, timeout: float) -> str:
    """The next stdout line, or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    while time.monotonic() < deadline:
        if selector.select(timeout=max(deadline - time.monotonic(), 0)):
            return process.stdout.readline()
    raise AssertionError(f"no line on stdout within {timeout}s")


def test_sim_prints_ready_line_and_stops_on_sigterm(tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    process = subprocess.Popen(
        [sys.executable, "-m", "analyzer", "sim", "--scenario", "scenarios/healthy.yaml",
         "--kubeconfig-out", str(kubeconfig)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        line = read_line(process, timeout=30)
        assert line.startswith(f"ready kubeconfig={kubeconfig} metrics=http://127.0.0.1:")
        metrics_url = line.strip().split("metrics=", 1)[1]
        assert kubeconfig.is_file()
        assert "istio_requests_total" in httpx.get(metrics_url, timeout=5).text
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_sim_with_unknown_scenario_exits_2():
    result = subprocess.run([sys.executable, "-m", "analyzer", "sim", "--scenario", "nope"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "scenario 'nope' not found" in result.stderr


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_scenarios_match_the_seed_procedure(name):
    scenario = load_scenario(ROOT / "scenarios" / f"{name}.yaml")
    assert [r.name for r in scenario.revisions] == ["1-14-6", "1-15-4"]
    assert [(t.name, t.revision) for t in scenario.tags] == [("default", "1-14-6")]
    assert scenario.gateway.namespace == "istio-ingress"
    assert len(scenario.namespaces) >= 6
    assert all(r.istiod_ready for r in scenario.revisions)
    packaged = Path(__file__).resolve().parents[2] / "analyzer" / "sim" / "scenarios"
    assert (packaged / f"{name}.yaml").read_text() == (ROOT / "scenarios" /
                                                        f"{name}.yaml").read_text()
    assert name in packaged_scenarios()


def test_example_scenarios_say_where_things_go_wrong():
    assert [r.namespace for r in load_scenario("bad-canary").regressions] == ["accounts"]
    assert [r.namespace for r in load_scenario("bad-second-wave").regressions] == ["catalog"]
    assert load_scenario("night-drift").drift is not None
    assert load_scenario("never-ready").faults.never_ready[0].revision == "1-15-4"
    assert not load_scenario("healthy").regressions


def test_scenario_errors_name_file_line_and_field():
    text = "revisions:\n  - name: 1-14-6\ntags:\n  - name: default\n    revision: 9-9-9\n" \
           "namespaces:\n  - name: bar\n    workloads:\n      - name: api\n        replicas: x\n"
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "bad.yaml")
    assert "bad.yaml:10: namespaces.0.workloads.0.replicas" in str(caught.value)
    with pytest.raises(ScenarioError, match="unknown revision '9-9-9'"):
        parse_scenario(text.replace("replicas: x", "replicas: 1"), "bad.yaml")
