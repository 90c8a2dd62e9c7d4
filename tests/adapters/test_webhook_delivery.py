"""The Slack-compatible webhook as the receiving end sees it: text, colour, explained verdict,
labels as fields, then the resolve in green; alongside a real Alertmanager."""

from __future__ import annotations

from datetime import UTC, datetime

from analyzer.adapters.alertmanager import AlertmanagerNotifier
from analyzer.adapters.webhook import COLORS, RESOLVED_COLOR, WebhookNotifier, slack_payload
from analyzer.core.alerts import Severity
from analyzer.core.alerts import builders as build
from analyzer.core.upgrade import UpgradeIdentity
from analyzer.service.alerting import AlertDispatcher
from tests.fixtures.alertmanager_server import AlertmanagerServer
from tests.fixtures.alerts import AM_PATH, NOW, failing_verdict
from tests.fixtures.webhook_receiver import WebhookReceiver


class WallClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


def test_slack_payload_reaches_the_receiver_then_the_resolve(
    alertmanager: AlertmanagerServer, receiver: WebhookReceiver, namespace: str
):
    slack_path = "/services/T000/B000/token-in-path"
    chat = WebhookNotifier(receiver.url + slack_path, timeout=5)
    dispatcher = AlertDispatcher(
        [chat, AlertmanagerNotifier(alertmanager.url, timeout=5)], WallClock()
    )
    alert = build.rollback_started(
        failing_verdict(namespace),
        upgrade=UpgradeIdentity(
            "1-14-6", "1-15-4", "default", link="http://canary-analyzer.example/report/u-9"
        ),
        now=datetime.now(UTC),
    )
    assert dispatcher.fire(alert).ok

    def ours(status: str):
        return lambda post: f"[{status}" in post.body["text"] and namespace in post.body["text"]

    firing = receiver.wait_for(ours("FIRING"), path=slack_path, message="slack firing").body
    assert firing["text"].startswith("[FIRING:critical] Rolling back default 1-15-4 → 1-14-6")
    (attachment,) = firing["attachments"]
    assert attachment["color"] == COLORS[Severity.CRITICAL]
    assert attachment["title_link"] == "http://canary-analyzer.example/report/u-9"
    assert "before 0.01 → after 0.05" in attachment["text"]
    assert "controls: cart, search" in attachment["text"]
    fields = {f["title"]: f["value"] for f in attachment["fields"]}
    assert fields["severity"] == "critical" and fields["namespace"] == namespace
    assert fields["rule"] == "error-rate" and fields["revision"] == "1-15-4"
    # the same alert reached Alertmanager's receiver too
    receiver.wait_for(
        lambda post: any(a["labels"].get("namespace") == namespace for a in post.body["alerts"]),
        path=AM_PATH,
        message="alertmanager notification",
    )

    assert dispatcher.resolve(alert).ok
    resolved = receiver.wait_for(ours("RESOLVED"), path=slack_path, message="slack resolved")
    assert resolved.body["attachments"][0]["color"] == RESOLVED_COLOR
    assert "token-in-path" not in repr(chat)


def test_several_alerts_make_one_message_with_one_attachment_each():
    held = build.upgrade_held(
        [], upgrade=UpgradeIdentity("a", "b", "default"), cause="data-source-errors", now=NOW
    )
    beat = build.heartbeat(now=NOW)
    body = slack_payload([held, beat], NOW)
    assert body["text"] == "canary-analyzer: 2 alerts (warning, none firing)"
    assert [a["color"] for a in body["attachments"]] == [
        COLORS[Severity.WARNING],
        COLORS[Severity.NONE],
    ]
