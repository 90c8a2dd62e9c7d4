"""Shadow mode end to end on the simulated mesh, through the official client over HTTP:
a ``kubectl rollout restart`` done by someone else is seen, judged once its after-window
has ended (the judging the engine uses, here scripted), recorded in the timeline, the
status and the restart history — and nothing is acted on: the tag stays, no workload is
patched by the service, no alert is sent, every operator verb is refused.

The restart is made as kubectl makes it: a strategic-merge patch of the pod template's
``kubectl.kubernetes.io/restartedAt`` (kubectl ``pkg/polymorphichelpers/objectrestarter.go``).
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from kubernetes import client as kube

from analyzer.core.verdicts import Verdict
from analyzer.service.alerting import AlertDispatcher
from analyzer.service.clock import VirtualClock
from analyzer.service.control import ControlRefusedError, UpgradeRequestBody
from analyzer.service.engine import LogNotifier, MemoryStateStore
from analyzer.service.history import RestartHistory, read_history
from analyzer.service.maintenance import MaintenanceHours
from analyzer.service.rules_reload import RulesWatcher
from analyzer.service.self_metrics import SelfMetrics
from analyzer.service.service import JudgingSetup, ReportShelf, ServiceStores, UpgradeService
from analyzer.settings import Settings
from tests.fixtures.fakes import ScriptedJudging, fail_in
from tests.fixtures.sim_fixtures import api_client_for

START = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)


def kubectl_rollout_restart(apps: kube.AppsV1Api, namespace: str, name: str, at: datetime):
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    body = {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": stamp}}}}}  # fmt: skip
    apps.patch_namespaced_deployment(name, namespace, body)


@pytest.fixture
def shadow(cluster, mesh, tmp_path: Path):
    clock = VirtualClock(START)
    sent: list = []
    judging = ScriptedJudging(fail_in({"bar"}))
    settings = Settings().model_copy(
        update={"service": Settings().service.model_copy(update={"mode": "shadow"})}
    )
    history = RestartHistory(tmp_path / "restarts.jsonl")
    service = UpgradeService(
        settings=settings,
        cluster=cluster,
        stores=ServiceStores(engine=MemoryStateStore(), service=MemoryStateStore()),
        judging=JudgingSetup(lambda _rules, _record: judging, RulesWatcher(Path("rules"))),
        pager=AlertDispatcher([LogNotifier(sent=sent)], clock),
        metrics=SelfMetrics(),
        hours=MaintenanceHours(None, timedelta(hours=4), "UTC"),
        clock=clock,
        interrupt=threading.Event(),
        reports=ReportShelf(tmp_path / "reports"),
        history=history,
        workload_templates=cluster,
    )
    api = api_client_for(mesh)
    yield service, clock, judging, sent, history, kube.AppsV1Api(api)
    api.close()


def test_a_restart_that_happens_anyway_is_judged_recorded_and_nothing_is_acted_on(
    shadow, cluster
):
    service, clock, judging, sent, history, apps = shadow
    windows = service.context.settings.windows
    service.tick()  # the first look learns what is there
    status = service.status()
    assert status["mode"] == "shadow" and status["phase"] == "shadow"
    assert status["shadow"]["acts"] is False and status["shadow"]["pages"] is False
    watched = status["shadow"]["watched"]
    assert {"foo", "bar", "baz"} <= set(watched)
    assert status["shadow"]["pending"] == []

    restarted_at = clock.now()
    kubectl_rollout_restart(apps, "bar", "api", restarted_at)
    clock.advance(timedelta(seconds=5))
    service.tick()
    (pending,) = service.status()["shadow"]["pending"]
    assert pending["namespace"] == "bar" and pending["cause"] == "restartedAt"
    assert pending["workloads"] == ["Deployment/api"]
    assert datetime.fromisoformat(pending["due"]) == restarted_at + windows.settle + windows.after
    assert judging.actions == []  # not before the after-window has ended

    clock.advance(windows.settle + windows.after)
    service.tick()
    (action,) = judging.actions  # the engine's judging, asked once, as an upgrade asks it
    assert action.judged == ("bar",)
    assert "bar" not in action.controls and set(action.controls) == set(watched) - {"bar"}
    assert action.restarted_at == restarted_at
    assert (action.before, action.settle, action.after, action.step) == (
        windows.before, windows.settle, windows.after, windows.step
    )
    status = service.status()
    (verdict,) = status["shadow"]["verdicts"]
    assert verdict["verdict"] == "fail" and "roll back" in verdict["would"]
    assert status["shadow"]["pending"] == []
    reasons = [item.get("reason") for item in status["timeline"]]
    assert "ShadowRestartSeen" in reasons and "ShadowVerdict" in reasons
    records = read_history(history.path)
    assert [(r.event, r.source, r.namespace, r.verdict) for r in records] == [
        ("restarted", "shadow", "bar", None), ("judged", "shadow", "bar", "fail")
    ]
    json.dumps(status)  # the status document stays JSON

    # acted on nothing: the tag, the other workloads, nobody paged
    assert cluster.tags()["default"].revision == "1-14-6"
    web = apps.read_namespaced_deployment("web", "foo")
    assert "kubectl.kubernetes.io/restartedAt" not in (web.spec.template.metadata.annotations or {})
    assert sent == []
    for verb in (service.pause, service.abort, service.approve):
        with pytest.raises(ControlRefusedError, match="shadow mode"):
            verb()
    with pytest.raises(ControlRefusedError, match="shadow mode"):
        service.request_upgrade(UpgradeRequestBody(to_revision="1-15-4"))
    assert service.worker.running() is False


def test_a_pass_verdict_says_an_upgrade_would_have_gone_on(shadow):
    service, clock, judging, _sent, _history, apps = shadow
    judging.script = lambda _name, _number: Verdict.PASS
    windows = service.context.settings.windows
    service.tick()
    kubectl_rollout_restart(apps, "foo", "web", clock.now())
    service.tick()
    clock.advance(windows.settle + windows.after)
    service.tick()
    (verdict,) = service.status()["shadow"]["verdicts"]
    assert (verdict["namespace"], verdict["verdict"]) == ("foo", "pass")
    assert "promote" in verdict["would"]


def test_status_in_words_says_shadow_mode_and_lists_the_verdicts(shadow):
    from analyzer.commands.control import format_status

    service, clock, _judging, _sent, _history, apps = shadow
    windows = service.context.settings.windows
    service.tick()
    kubectl_rollout_restart(apps, "bar", "api", clock.now())
    service.tick()
    assert "waiting: bar restarted" in format_status(service.status())
    clock.advance(windows.settle + windows.after)
    service.tick()
    text = format_status(service.status())
    assert "phase: shadow" in text and "SHADOW MODE" in text
    assert "bar restarted" in text and "FAIL" in text and "roll back" in text
    assert "next: nothing; shadow mode" in text
