"""Alerts delivered through a REAL Alertmanager carry ``runbook_url``, ``cluster`` and the
operator's static labels, added in one enrichment step where they leave the service.

The runbook link points at the alert's own section of docs/oncall.md: every alert the
product sends has a ``### <AlertName>`` heading there, so the anchor resolves.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from analyzer.core.alerts import AlertName
from analyzer.core.alerts import builders as build
from analyzer.core.upgrade import UpgradeIdentity
from analyzer.service.alert_enrichment import notification_sinks, runbook_anchor
from analyzer.service.alerting import AlertDispatcher
from analyzer.settings import NotificationSettings
from tests.fixtures.alertmanager_server import AlertmanagerServer
from tests.fixtures.alerts import AM_PATH, failing_verdict
from tests.fixtures.webhook_receiver import WebhookReceiver

RUNBOOK = "https://git.example/mesh/canary-analyzer/blob/main/docs/oncall.md"
ONCALL = Path(__file__).resolve().parents[2] / "docs" / "oncall.md"


class WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def test_delivered_alerts_carry_runbook_cluster_and_static_labels(
    alertmanager: AlertmanagerServer, receiver: WebhookReceiver, namespace: str
):
    settings = NotificationSettings(
        alertmanager_url=alertmanager.url,
        labels={"team": "mesh", "namespace": "must-not-win"},
        runbook_base_url=RUNBOOK,
    )
    target = type("Target", (), {"cluster": "eu-west-1"})()
    dispatcher = AlertDispatcher(notification_sinks(settings, target), WallClock())
    alert = build.rollback_started(
        failing_verdict(namespace),
        upgrade=UpgradeIdentity(from_revision="1-14-6", to_revision="1-15-4", tag="default"),
        now=datetime.now(UTC),
        moved=(namespace,),
    )
    assert dispatcher.fire(alert).ok

    def ours(post) -> dict | None:
        body = post.body if isinstance(post.body, dict) else {}
        return next(
            (a for a in body.get("alerts", []) if a["labels"].get("namespace") == namespace),
            None,
        )

    post = receiver.wait_for(lambda p: ours(p) is not None, path=AM_PATH, message="rollback")
    delivered = ours(post)
    assert delivered["labels"]["cluster"] == "eu-west-1"
    assert delivered["labels"]["team"] == "mesh"
    assert delivered["labels"]["namespace"] == namespace  # the alert's own label wins
    assert delivered["annotations"]["runbook_url"] == (
        f"{RUNBOOK}#canaryanalyzerrollbackstarted"
    )
    assert alertmanager.alerts(alertname="CanaryAnalyzerRollbackStarted", cluster="eu-west-1")


def test_the_cluster_setting_wins_over_the_kubeconfig_cluster():
    settings = NotificationSettings(webhook_url="http://127.0.0.1:9/hook", cluster="prod-eu")
    (sink,) = notification_sinks(settings, type("Target", (), {"cluster": "kind-kind"})())
    assert sink.enrichment["cluster"] == "prod-eu"
    assert sink.name == "webhook" and sink.repeats is False  # the dispatcher sees the sink


def test_every_alert_has_its_section_in_the_runbook():
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in ONCALL.read_text().splitlines()
        if line.startswith("#")
    }
    for name in AlertName:
        assert runbook_anchor(name.value) in anchors, f"docs/oncall.md has no ### {name.value}"
