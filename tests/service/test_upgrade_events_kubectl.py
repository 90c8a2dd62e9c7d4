"""Events of a whole upgrade are accepted by the API server and listed by real kubectl.

Why: Events about a Namespace were created in that namespace, which the API server refuses
(pkg/apis/core/validation/events.go) and the engine swallowed, so operators never saw one.
The simulated API server enforces that rule; a whole upgrade (real adapter and engine,
scripted judging, real clock with second-long windows) runs on the simulated mesh, and
``kubectl get events -n default`` must list its Events about the namespaces it moved. The
rollback also leaves the tag webhook, tag Service and validator equal to the chart's
rendering for the old revision (both layouts).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime

import pytest

from analyzer.adapters.kubernetes import KubernetesCluster
from analyzer.core.upgrade import Outcome, UpgradeStyle
from analyzer.service.clock import RealClock
from analyzer.service.engine import LogNotifier, MemoryStateStore, UpgradeEngine
from analyzer.service.preflight import UpgradeRequest, build_plan, parse_gateway, preflight
from analyzer.settings import Settings
from tests.adapters.test_tag_move_golden import assert_matches_chart, assert_validator
from tests.fixtures.fakes import ScriptedJudging, fail_in
from tests.fixtures.sim_fixtures import api_client_for, fast_scenario, make_mesh  # noqa: F401

KUBECTL = shutil.which("kubectl")
pytestmark = [
    pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed on this machine"),
    pytest.mark.timeout(120),
]

SETTINGS = {
    "windows": {"before": "1s", "settle": "0s", "after": "1s", "step": "1s"},
    "upgrade": {"waves": [1, 2], "evaluation_delay": "0s", "poll_interval": "200ms",
                "rollout_timeout": "30s", "max_extensions": 0},
}  # fmt: skip


@pytest.mark.parametrize("layout", ["current", "legacy"])
def test_upgrade_events_are_listed_by_kubectl(make_mesh, tmp_path, layout):  # noqa: F811
    mesh = make_mesh(fast_scenario(regressions=[], istio_layout=layout))
    settings = Settings.model_validate(SETTINGS)
    cluster = KubernetesCluster(api_client_for(mesh), request_timeout=10, backoff=0.01)
    try:
        request = UpgradeRequest(
            to_revision="1-15-4", tag="default", style=UpgradeStyle.TAG,
            gateways=tuple(parse_gateway(g) for g in settings.upgrade.gateways),
        )  # fmt: skip
        plan = build_plan(request, preflight(cluster, request), settings, datetime.now(UTC))
        state = UpgradeEngine(
            cluster, MemoryStateStore(), ScriptedJudging(script=fail_in({"bar"})), RealClock(),
            LogNotifier(),
        ).run(plan)  # fmt: skip
        assert state.outcome is Outcome.ROLLED_BACK
        # rolled back: tag webhook, tag Service and validator are the chart's old ones again
        assert_matches_chart(cluster, layout, "", "1-14-6")
        assert_validator(cluster, layout, "", "1-14-6")
    finally:
        cluster.close()
    shown = subprocess.run(
        [KUBECTL, "--kubeconfig", str(mesh.kubeconfig_path), "--cache-dir", str(tmp_path),
         "get", "events", "-n", "default", "-o", "json"],
        capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    ours = [e for e in json.loads(shown.stdout)["items"]
            if e.get("reportingComponent") == "canary-analyzer.io/upgrade"]  # fmt: skip
    about = {e["involvedObject"]["name"] for e in ours}
    assert {e["involvedObject"]["kind"] for e in ours} == {"Namespace"}
    assert "bar" in about  # the canary that failed and was rolled back
    assert any(e["type"] == "Warning" for e in ours)
    # nothing was refused: every write of an Event succeeded
    refused = [w for w in mesh.writes() if "/events" in w.path and w.status_code >= 400]
    assert refused == []
