"""End to end: a restart planned, paused, then resumed, on the simulated mesh + real Prometheus.

Why: the canary's ``Restart`` is planned (and saved) when the gateway is verified, but it
may be applied much later — the engine's gate holds every action while an operator has
paused the upgrade (the service's pause) or the maintenance window is closed. The stamp
written on the workloads must be the time of the patch (kubectl
``pkg/polymorphichelpers/objectrestarter.go`` stamps ``time.Now()``), and the judged
after-window must start after the real restart *and* after the rollout ended, so it holds
no traffic served by an old proxy. The proof uses the simulator's own per-revision gauge
``canary_sim_serving_pods{proxy_revision=…}`` as scraped by Prometheus, never our engine's
view. Pods are slow to become ready here, so the rollout outlasts ``settle``. The real
adapters and judge run in this process (the engine's gate is the pause); tests wait on
conditions, never on the clock.
"""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from analyzer.adapters.kubernetes import RESTARTED_AT, ConfigMapStateStore, KubernetesCluster
from analyzer.adapters.prometheus import PrometheusSource
from analyzer.commands.common import load_rule_set
from analyzer.core.upgrade import Judge, Judged, Restart, UpgradeState, UpgradeStyle
from analyzer.core.windows import RestartWindows
from analyzer.service.clock import RealClock
from analyzer.service.engine import LogNotifier, UpgradeEngine
from analyzer.service.judging import PrometheusJudging
from analyzer.service.preflight import UpgradeRequest, build_plan, parse_gateway, preflight
from analyzer.settings import Settings
from analyzer.sim.mesh import SimulatedMesh
from analyzer.sim.scenario import load_scenario
from tests.fixtures.polling import wait_until
from tests.fixtures.prometheus_server import start_prometheus
from tests.fixtures.sim_fixtures import api_client_for, event_notes

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
OLD, NEW = "1-14-6", "1-15-4"
PAUSE_SECONDS = 8  # how much later than planned the restart is applied (in Prometheus time)


class RecordingJudging:
    """The production judge, keeping each Judge action it was given."""

    def __init__(self, inner: PrometheusJudging) -> None:
        self.inner = inner
        self.actions: list[Judge] = []

    def judge(self, action: Judge) -> Judged:
        self.actions.append(action)
        return self.inner.judge(action)


@pytest.fixture
def world(tmp_path):
    scenario = load_scenario(REPO / "scenarios" / "healthy.yaml")
    # 40 simulated seconds to ready at 20× = 2 s per pod: accounts-api (3 replicas, surge 1,
    # none unavailable) takes three rounds, longer than settle (5 s)
    scenario = scenario.model_copy(update={"pod_ready_delay": timedelta(seconds=40)})
    mesh = SimulatedMesh(scenario)
    mesh.start()
    target = mesh.metrics_url.removeprefix("http://").removesuffix("/metrics")
    server = start_prometheus(tmp_path, scrape_targets=[target], scrape_interval="1s")
    try:
        wait_until(
            lambda: float(server.query("count_over_time(up[30s])")[0]["value"][1]) >= 24,
            timeout=60, message="Prometheus holding a full before-window of samples",
        )  # fmt: skip
        yield mesh, server
    finally:
        server.stop()
        mesh.stop()


def _last_scrape(server) -> float:
    """Unix time of Prometheus's latest scrape of the mesh."""
    return float(server.query("max(timestamp(up))")[0]["value"][1])


def test_a_restart_applied_after_a_pause_is_stamped_and_judged_from_the_real_rollout(world):
    mesh, server = world
    settings = Settings.model_validate({
        "prometheus": {"url": server.url, "timeout": "10s"},
        "windows": {"before": "20s", "settle": "5s", "after": "20s", "step": "5s"},
        "upgrade": {"waves": [1], "evaluation_delay": "3s", "poll_interval": "500ms",
                    "rollout_timeout": "60s", "max_extensions": 0},
        "kubernetes": {"request_timeout": "10s"},
    })  # fmt: skip
    cluster = KubernetesCluster(api_client_for(mesh), request_timeout=10, backoff=0.05)
    source = PrometheusSource(settings.prometheus)
    # a bare pod beside the canary's workloads: it keeps the old proxy and must not fail it
    cluster.core.create_namespaced_pod("accounts", {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "debug-shell", "labels": {"role": "debug"}},
        "spec": {"containers": [{"name": "shell", "image": "busybox"}]},
    })  # fmt: skip
    try:
        request = UpgradeRequest(
            to_revision=NEW, tag="default", style=UpgradeStyle.TAG,
            gateways=(parse_gateway("istio-ingress/istio-ingressgateway"),),
            namespaces=("accounts", "billing", "catalog"),
        )  # fmt: skip
        checked = preflight(cluster, request)
        plan = build_plan(request, checked, settings, datetime.now(UTC))
        plan = plan.model_copy(update={"waves": (("accounts",), ("billing", "catalog"))})
        judging = RecordingJudging(PrometheusJudging(
            source, load_rule_set(settings), settings.rules.namespace_label, night_budget=0.01
        ))  # fmt: skip
        store = ConfigMapStateStore(cluster, "canary-analyzer-state", "istio-system")
        engine = UpgradeEngine(cluster, store, judging, RealClock(), LogNotifier())
        paused: dict[str, datetime] = {}
        stop = threading.Event()

        def gate(state: UpgradeState) -> None:
            """The operator pauses as the canary's restart comes up, and resumes later."""
            if stop.is_set():
                raise _Stop
            pending = state.pending
            canary = isinstance(pending, Restart) and pending.step_id.endswith("wave-1")
            if canary and "planned" not in paused:
                paused["planned"] = state.updated_at
                planned = state.updated_at.timestamp()
                wait_until(
                    lambda: _last_scrape(server) >= planned + PAUSE_SECONDS,
                    timeout=60, message="the pause lasting a while",
                )  # fmt: skip
                paused["resumed"] = datetime.now(UTC)
            if judging.actions:  # the canary was judged: enough for this test
                stop.set()

        with contextlib.suppress(_Stop):
            engine.run(plan, gate=gate)
        planned, resumed = paused["planned"], paused["resumed"]

        # 1. the stamp on the canary's workloads is the time of the patch, after the pause
        deployments = cluster.apps.list_namespaced_deployment("accounts").items
        stamps = {
            d.metadata.name: d.spec.template.metadata.annotations[RESTARTED_AT]
            for d in deployments
        }
        assert set(stamps) == {"accounts-api", "accounts-worker"}
        for stamp in stamps.values():
            stamped = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            # RFC 3339 to the second, like kubectl: compare at that precision
            assert stamped >= resumed.replace(microsecond=0), (stamp, resumed)
            assert stamped - planned >= timedelta(seconds=PAUSE_SECONDS - 1)

        # 2. the judged windows: before ends at the real restart, after starts settle after
        #    the rollout ended and the proxies were verified
        canary = judging.actions[0]
        assert canary.judged == ("accounts",)
        assert canary.rolled_out_at is not None
        windows = RestartWindows.around(
            canary.restarted_at, canary.before, canary.settle, canary.after, canary.step,
            rolled_out_at=canary.rolled_out_at,
        )  # fmt: skip
        assert canary.restarted_at >= resumed.replace(microsecond=0)
        assert windows.before.end == canary.restarted_at
        assert windows.after.start == canary.rolled_out_at + timedelta(seconds=5)
        assert canary.rolled_out_at - canary.restarted_at > timedelta(seconds=5)  # > settle
        saved = {r["name"]: r for r in store.load()["state"]["namespaces"]}
        assert saved["accounts"]["restarted_at"].startswith(
            canary.restarted_at.strftime("%Y-%m-%dT%H:%M:%S")
        )

        # 3. by the simulator's own account, old proxies served accounts after the restart
        #    (the rollout took a while) and never inside the after-window
        old = f'canary_sim_serving_pods{{namespace="accounts",proxy_revision="{OLD}"}}'
        new = f'canary_sim_serving_pods{{namespace="accounts",proxy_revision="{NEW}"}}'
        step = timedelta(seconds=1)
        during = source.query_range(old, canary.restarted_at, windows.after.start, step)
        serving_old = [t for s in during for t, v in s.points if v > 0]
        assert serving_old, "no old proxy served after the restart: the rollout proves nothing"
        last_old = datetime.fromtimestamp(max(serving_old), UTC)
        assert last_old < windows.after.start
        inside = source.query_range(old, windows.after.start, windows.after.end, step)
        assert not [t for s in inside for t, v in s.points if v > 0], inside
        served_new = source.query_range(new, windows.after.start, windows.after.end, step)
        assert served_new and all(v > 0 for s in served_new for _, v in s.points)

        # 4. the bare pod stayed on the old proxy and was reported, not failed
        reported = event_notes(cluster.core, "accounts", "NotRestarted")
        assert any("accounts/debug-shell (bare pod" in m and OLD in m for m in reported), reported
    finally:
        source.close()
        cluster.close()


class _Stop(Exception):
    """Ends the run once the canary has been judged."""
